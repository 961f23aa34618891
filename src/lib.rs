//! converge: a declarative AWS infrastructure provisioner.
//!
//! The module tree reads as the pipeline: [`spec`] (YAML → validated model)
//! → [`graph`] → [`live`] (read AWS) → [`plan`] (diff, render) → [`apply`]
//! (execute along the graph), with [`run`] the workflow around them (lock,
//! record, verify, roll back) and [`cli`] one file per command calling it.
//! [`kinds`] holds the resource kinds, a folder per AWS service; [`aws`] is
//! the transport under them (the SDK clients, retries, error mapping), and
//! [`tags`] the identity rule both use.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod apply;
pub mod aws;
pub mod cli;
pub mod digest;
pub mod gitlab;
pub mod graph;
pub mod kinds;
pub mod limits;
pub mod live;
pub mod lookup;
pub mod par;
pub mod plan;
pub mod printer;
pub mod progress;
pub mod render;
pub mod run;
pub mod spec;
pub mod state;
pub mod tags;
pub mod value;

/// mimalloc instead of the system allocator, in the binary, the tests and
/// the benchmarks alike. The engine builds and drops many small values
/// (YAML and JSON trees, names, paths); glibc's malloc spent 40 % of a
/// 10,000-resource plan in `malloc`/`free` and their consolidation
/// (`perf record` on `cargo bench --bench engine`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the 16th option
/// of `include/mimalloc.h`, in the v2 and v3 sources libmimalloc-sys
/// 0.1.49 builds alike).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// Makes the allocator keep the memory it frees for the rest of the
/// process instead of handing it back to the OS a second later. converge is a
/// short-lived command: memory freed while a spec loads (the YAML events) is
/// used again by the plan, and returning it meant faulting it back in,
/// zeroed, 2 MiB at a time: 0.2 s of kernel time in a 10,000-resource
/// plan (`perf stat`: 220 ms of system time, 20 ms without purging). Call
/// first thing in `main`.
pub fn keep_freed_memory() {
    // SAFETY: mimalloc's documented option setter, with a documented
    // option and value (-1: never purge); options are atomics.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// The allocator's purge delay in milliseconds (-1: never).
pub fn freed_memory_purge_delay() -> i64 {
    // SAFETY: mimalloc's documented option getter.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn freed_memory_is_kept() {
        // mimalloc's (v3) default purge delay is 1000 ms: the slot is that
        // option.
        let before = super::freed_memory_purge_delay();
        assert!(before == 1000 || before == -1, "{before}");
        super::keep_freed_memory();
        assert_eq!(super::freed_memory_purge_delay(), -1);
    }
}
