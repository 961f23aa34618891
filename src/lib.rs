//! converge: a declarative AWS infrastructure provisioner.
//!
//! The module tree reads as the pipeline: [`spec`] (YAML → validated model)
//! → [`graph`] → [`live`] (read AWS) → [`plan`] (diff, render) → [`apply`]
//! (execute along the graph). [`kinds`] holds one module per resource kind,
//! [`aws`] the SDK clients and error mapping, [`cli`] one file per command.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod apply;
pub mod aws;
pub mod cli;
pub mod digest;
pub mod graph;
pub mod kinds;
pub mod live;
pub mod plan;
pub mod printer;
pub mod progress;
pub mod render;
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
