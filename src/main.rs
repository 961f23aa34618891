fn main() -> std::process::ExitCode {
    converge::cli::main()
}
