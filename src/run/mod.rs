//! The workflow under the commands that plan and change AWS: load →
//! connect → lock → read and plan → execute → record → verify or roll back
//! → unlock. It takes plain option structs (this module's), never clap's:
//! `cli/` parses the command line into them and calls one function here.
//!
//! The walk of `converge apply STACK --verify CMD`, each step calling down:
//!
//! ```text
//! cli::main → cli::apply (ApplyArgs → apply::Options) → run::apply::run
//!   load::load                    the spec, offline: every problem, no AWS call
//!   session::connect              one SdkConfig, one client per service
//!   load::with_inputs             lookups, other stacks' outputs
//!   session::lock                 the stack/env's leased lock
//!   alarms::before                the gate's alarms as they are before any change
//!   live::read, plan::plan        under session::before_changes (a signal stops it)
//!   execute::execute_plan         session::check_protected, session::confirm,
//!                                 apply::execute, record::record_applied
//!   verify::verify                verify::check, alarms::watch; known good, or verify::roll_back
//!                                 (→ execute::execute_plan of the known good)
//!   session::unlock_after
//! ```
//!
//! `apply PLANFILE` takes the same path after checking the saved plan
//! against the spec, what the stack reads and AWS ([`apply`]); `rollback`,
//! `destroy` and `import` are the same steps with another plan.

use std::path::PathBuf;
use std::time::Duration;

pub mod alarms;
pub mod apply;
pub mod destroy;
pub mod execute;
pub mod import;
pub mod load;
pub mod record;
pub mod rollback;
pub mod session;
pub mod show;
pub mod verify;

/// Which stack a run loads, and how: `converge … STACK --env --region
/// --var`.
#[derive(Debug, Clone)]
pub struct StackRef {
    /// The stack file.
    pub file: PathBuf,
    /// The environment (required when the stack defines environments).
    pub env: Option<String>,
    /// Overrides the stack's region.
    pub region: Option<String>,
    /// Variables given on the command line (after `CONVERGE_VAR_*`).
    pub vars: Vec<(String, String)>,
}

/// Where AWS requests go and as whom (besides the SDK's own chain).
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
}

/// How a changing run takes the stack/env's lock, and what it may delete.
#[derive(Debug, Clone)]
pub struct Locking {
    /// How long to wait for a lock another run holds (zero: fail at once).
    pub lock_timeout: Duration,
    /// The lease, renewed every third of it while the run lives.
    pub lock_lease: Duration,
    /// Protected resources this run may delete or replace (`*`: every one
    /// the spec marks `protect: false`).
    pub allow_destroy: Vec<String>,
    /// The state home when the stack names no `state: { bucket }`.
    pub state_dir: Option<PathBuf>,
}
