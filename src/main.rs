fn main() -> std::process::ExitCode {
    converge::keep_freed_memory();
    converge::cli::main()
}
