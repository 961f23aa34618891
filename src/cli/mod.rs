//! The command line: one file per command, all output through [`Printer`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::printer::{Printer, Style};
use crate::spec::SpecError;

mod apply;
mod destroy;
mod drift;
mod graph;
mod history;
mod import;
mod mr_note;
mod output;
mod plan;
mod rollback;
mod schema;
mod status;
mod unlock;
mod validate;

#[derive(Debug, Parser)]
#[command(name = "converge", version, about = "Declarative AWS infrastructure: plan, apply, drift.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// No colour (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// Log AWS calls and decisions to stderr (RUST_LOG takes precedence).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a stack offline: no AWS call, no credentials needed.
    Validate(StackArgs),
    /// Show what apply would change.
    Plan(PlanArgs),
    /// Plan, confirm, and change AWS to match the spec.
    Apply(ApplyArgs),
    /// Delete every resource tagged for the stack and environment.
    Destroy(DestroyArgs),
    /// Print the dependency graph.
    Graph(GraphArgs),
    /// Print the JSON Schema of stack files (for yaml-language-server), or
    /// of plan or drift documents.
    Schema(SchemaArgs),
    /// Compare AWS with the spec and with what converge last applied: each
    /// difference is drift, pending, missing or unmanaged.
    Drift(DriftArgs),
    /// Remove a stack/env's lock left by a run that is gone.
    Unlock(UnlockArgs),
    /// Take over an existing object no stack owns as one of the spec's
    /// resources: by its name, or by its id for EC2 kinds.
    Import(ImportArgs),
    /// A stack/env's runs, newest first: commit, result, what changed.
    History(HistoryArgs),
    /// Every stack and environment at a glance: last run, commit, result,
    /// age (text, JSON, or one HTML page).
    Status(StatusArgs),
    /// Apply the last known good again (the inputs of the newest apply
    /// that passed --verify), or that of `--to RUN`.
    Rollback(RollbackArgs),
    /// Post a plan in Markdown on the merge request (GitLab CI), as one
    /// note per stack and environment, edited in place by every pipeline.
    MrNote(MrNoteArgs),
    /// Print the stack's outputs as the last apply left them (no plan, no
    /// change): all of them, or one (raw, for scripts).
    Output(OutputArgs),
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Only this output: its value alone (a string without quotes).
    pub name: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: output::OutputFormat,
    /// Show sensitive outputs too: read again from AWS and the environment
    /// (they are never kept in the state home).
    #[arg(long)]
    pub show_sensitive: bool,
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MrNoteArgs {
    /// The plan in Markdown (`converge plan … --format markdown > FILE`).
    pub file: PathBuf,
    /// GitLab's REST API. The token is read from CONVERGE_GITLAB_TOKEN only.
    #[arg(long, env = "CI_API_V4_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// The project: its id, or its path (`group/project`).
    #[arg(long, env = "CI_PROJECT_ID", value_name = "ID")]
    pub project: Option<String>,
    /// The merge request's number in the project (`!N`).
    #[arg(long, env = "CI_MERGE_REQUEST_IID", value_name = "N")]
    pub merge_request: Option<u64>,
    /// The pipeline posting: a note from a newer one is not overwritten.
    #[arg(long, env = "CI_PIPELINE_ID", value_name = "ID")]
    pub pipeline: Option<u64>,
    /// Where the whole plan is, named when it is too long for a note.
    #[arg(long, env = "CI_JOB_URL", value_name = "URL")]
    pub job_url: Option<String>,
    /// CA certificates (PEM) for a GitLab whose certificate comes from a CA
    /// of its own, besides the system's.
    #[arg(long, env = "CI_SERVER_TLS_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The verified run to go back to (its id, or a unique prefix of it, as
    /// `converge history` prints it); default: the newest.
    #[arg(long, value_name = "RUN")]
    pub to: Option<String>,
    /// Operations at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Stack files, or folders of them (default: stacks/).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: status::StatusFormat,
    /// Write to FILE instead of standard output (e.g. public/index.html).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Also read AWS and say whether each environment still matches what
    /// was last applied (as `converge drift` does, with the variables that
    /// apply was given).
    #[arg(long)]
    pub drift: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: history::HistoryFormat,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The schema of `converge plan --format json` instead.
    #[arg(long, conflicts_with = "drift")]
    pub plan: bool,
    /// The schema of `converge drift --format json` instead.
    #[arg(long, conflicts_with = "markdown")]
    pub drift: bool,
    /// The reference of every resource kind as Markdown (docs/kinds.md)
    /// instead.
    #[arg(long, conflicts_with = "plan")]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Every environment the stack defines, one after another.
    #[arg(long, conflicts_with = "env")]
    pub all_envs: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Where the record of the last apply lives when the stack names no
    /// `state: { bucket }` (default: `.converge/` beside the stack file).
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print AWS calls by action and the time of each phase (stderr; with
    /// `--format json`, also its `stats` field).
    #[arg(long)]
    pub stats: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The resource in the spec the object becomes.
    pub resource: String,
    /// The object's id (EC2 kinds: `vpc-…`, `sg-…`; kinds found by name:
    /// optional, the spec's physical name).
    pub id: Option<String>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// How apply and destroy take the stack/env's lock.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// Wait this long for a lock another run holds (`30s`, `10m`; default:
    /// fail at once, naming the holder).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_wait)]
    pub lock_timeout: std::time::Duration,
    /// The lock's lease, renewed every third of it while this run lives; a
    /// run that dies leaves a lock others take over once it runs out.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_wait)]
    pub lock_lease: std::time::Duration,
    /// Allow deleting or replacing this protected resource (repeatable; `*`:
    /// every one the spec marks `protect: false`). Its spec must also say
    /// `protect: false`.
    #[arg(long = "allow-destroy", value_name = "NAME")]
    pub allow_destroy: Vec<String>,
    /// Where locks live when the stack names no `state: { bucket }`
    /// (default: `.converge/` beside the stack file).
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(std::time::Duration::ZERO);
    }
    crate::spec::parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration; write e.g. `30s`, `10m` or `1h`"))
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The lock's id, as the error that named the holder printed it.
    pub lock_id: String,
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct StackArgs {
    /// The stack file, e.g. stacks/gitlab-ha.yaml.
    pub stack: PathBuf,
    /// The environment (required when the stack defines environments).
    #[arg(long, short)]
    pub env: Option<String>,
    /// AWS region; overrides the stack's `region:`.
    #[arg(long)]
    pub region: Option<String>,
    /// Override a stack variable: `--var app_min=3` (repeatable). Also
    /// `CONVERGE_VAR_app_min=3` in the environment.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

impl StackArgs {
    /// What the workflow layer takes.
    pub fn to_run(&self) -> crate::run::StackRef {
        crate::run::StackRef {
            file: self.stack.clone(),
            env: self.env.clone(),
            region: self.region.clone(),
            vars: self.vars.clone(),
        }
    }
}

impl AwsArgs {
    pub fn to_run(&self) -> crate::run::Endpoint {
        crate::run::Endpoint { endpoint_url: self.endpoint_url.clone(), profile: self.profile.clone() }
    }
}

impl LockArgs {
    pub fn to_run(&self) -> crate::run::Locking {
        crate::run::Locking {
            lock_timeout: self.lock_timeout,
            lock_lease: self.lock_lease,
            allow_destroy: self.allow_destroy.clone(),
            state_dir: self.state_dir.clone(),
        }
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

#[derive(Debug, Args)]
pub struct AwsArgs {
    /// Send AWS requests here (an emulator, a VPC endpoint).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Named profile from ~/.aws/config.
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    /// The documented JSON format (`converge schema --plan`).
    Json,
    /// For a merge-request note.
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Plan only this resource and what it depends on (repeatable).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Exit 0 with no changes, 2 with changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[arg(long, value_enum, default_value = "text")]
    pub format: PlanFormat,
    /// Also save the plan to FILE; `converge apply FILE` applies exactly
    /// it, or refuses if anything changed since. Holds no secret.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write the counts GitLab's merge-request widget reads
    /// (`artifacts:reports:terraform`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub gitlab_report: Option<PathBuf>,
    /// Print AWS calls by action and the time of each phase (stderr; with
    /// `--format json`, also its `stats` field).
    #[arg(long)]
    pub stats: bool,
    /// Where other stacks' records are read (`${stack.NAME.outputs.X}`)
    /// when the stack names no `state: { bucket }` (default: `.converge/`
    /// beside the stack file).
    #[arg(long, env = "CONVERGE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Do not ask for confirmation (CI).
    #[arg(long)]
    pub auto_approve: bool,
    /// Operations at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub lock: LockArgs,
    /// Print AWS calls by action and the time of each phase (stderr).
    #[arg(long)]
    pub stats: bool,
    /// Write each operation's start and end to FILE (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// After the apply, run CMD (`sh -c`; CONVERGE_STACK and CONVERGE_ENV
    /// set): exit 0 makes this apply's inputs the last known good; any
    /// other exit, or a failed apply, rolls back to the last known good
    /// and exits 1.
    #[arg(long, value_name = "CMD")]
    pub verify: Option<String>,
    /// How long CMD may run before it counts as failed.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration_arg)]
    pub verify_timeout: std::time::Duration,
    /// After the apply (and --verify), watch these CloudWatch alarms for
    /// --verify-window, besides the stack's `verify: { alarms }`: one that
    /// goes to ALARM rolls back to the last known good and exits 1; one
    /// already in ALARM before the apply is reported, not blamed.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub verify_alarms: Vec<String>,
    /// How long to watch the alarms (default: the stack's `verify: {
    /// window }`, else 10m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub verify_window: Option<std::time::Duration>,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::spec::parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration (e.g. 90s, 10m)"))
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[arg(long)]
    pub auto_approve: bool,
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    #[arg(long, value_enum, default_value = "text")]
    pub format: GraphFormat,
}

/// Parses the command line, runs the command, maps the result to an exit
/// code: 0 success, 1 error, 2 (`plan --detailed-exitcode`) changes.
pub fn main() -> ExitCode {
    crate::run::record::STARTED.get_or_init(crate::state::runs::now_ms);
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let printer = Printer::new(cli.no_color);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            printer.err(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Validate(a) => validate::run(a, &printer),
            Command::Plan(a) => plan::run(a, &printer).await,
            Command::Apply(a) => apply::run(a, &printer).await,
            Command::Destroy(a) => destroy::run(a, &printer).await,
            Command::Graph(a) => graph::run(a, &printer),
            Command::Schema(a) => schema::run(&a, &printer),
            Command::Drift(a) => drift::run(a, &printer).await,
            Command::Unlock(a) => unlock::run(a, &printer).await,
            Command::Import(a) => import::run(a, &printer).await,
            Command::History(a) => history::run(a, &printer).await,
            Command::Status(a) => status::run(a, &printer).await,
            Command::Rollback(a) => rollback::run(a, &printer).await,
            Command::MrNote(a) => mr_note::run(a, &printer).await,
            Command::Output(a) => output::run(a, &printer).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // Spec diagnostics carry their own `file:line:col: error:` prefix.
        Err(e) if matches!(e.downcast_ref(), Some(SpecError::Invalid { .. })) => {
            printer.err(&format!("{e}"));
            ExitCode::FAILURE
        }
        Err(e) if e.downcast_ref::<crate::run::session::Interrupted>().is_some() => {
            printer.err(&printer.paint(Style::Error, &format!("{e}")));
            ExitCode::from(e.downcast_ref::<crate::run::session::Interrupted>().map_or(1, |i| i.0.exit_code()))
        }
        Err(e) => {
            printer.err(&printer.paint(Style::Error, &format!("error: {e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if verbose { "converge=debug,aws_smithy_runtime=debug" } else { "warn" })
    });
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
