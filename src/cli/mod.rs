//! The command line: one file per command, all output through [`Printer`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::{Aws, AwsOptions};
use crate::printer::{Printer, Style};
use crate::spec::{LoadOptions, SpecError, Stack};

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
    STARTED.get_or_init(crate::state::runs::now_ms);
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
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            printer.err(&printer.paint(Style::Error, &format!("{e}")));
            ExitCode::from(e.downcast_ref::<Interrupted>().map_or(1, |i| i.0.exit_code()))
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

/// Loads and validates the stack: every problem, and no AWS call. Other
/// stacks' outputs it reads are unknown until [`with_inputs`].
pub fn load(args: &StackArgs, require_secrets: bool) -> anyhow::Result<Stack> {
    load_with(args, require_secrets, None, None)
}

fn load_with(
    args: &StackArgs,
    require_secrets: bool,
    stack_outputs: Option<crate::spec::StackOutputs>,
    lookups: Option<BTreeMap<String, crate::lookup::Found>>,
) -> anyhow::Result<Stack> {
    let opts = LoadOptions {
        env: args.env.clone(),
        region: args.region.clone(),
        require_secrets,
        vars: args.vars.clone(),
        stack_outputs,
        lookups,
    };
    Ok(crate::spec::load(&args.stack, &opts)?)
}

/// `stack` loaded again with the lookups and other stacks' outputs a known
/// good kept (what it was applied with), when it kept them all; else with
/// them read now ([`with_inputs`]).
pub async fn with_pinned_inputs(
    args: &StackArgs,
    stack: Stack,
    good: &crate::state::known_good::KnownGood,
    aws: &Aws,
    store: &crate::state::Store,
) -> anyhow::Result<Stack> {
    if stack.inputs.is_empty() && stack.lookups.is_empty() {
        return Ok(stack);
    }
    if !good.pins(&stack) {
        return with_inputs(args, stack, true, aws, store).await;
    }
    load_pinned(args, &good.found, &good.inputs)
}

/// The stack loaded with the lookup results and other stacks' outputs
/// given (a saved plan's): no AWS call.
pub fn load_pinned(
    args: &StackArgs,
    found: &BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    inputs: &[(String, String, serde_json::Value)],
) -> anyhow::Result<Stack> {
    let outputs = inputs.iter().map(|(s, o, v)| ((s.clone(), o.clone()), Ok(v.clone()))).collect();
    let found = found.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect();
    load_with(args, true, Some(outputs), Some(found))
}

/// What a loaded stack's lookups found, to load it again with (`None`:
/// they were not made).
fn found_of(stack: &Stack) -> Option<BTreeMap<String, crate::lookup::Found>> {
    (!stack.lookups.is_empty() && stack.found.len() == stack.lookups.len())
        .then(|| stack.found.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect())
}

/// `stack` with the values of the other stacks' outputs it reads
/// (`${stack.NAME.outputs.OUTPUT}`): each such stack's record of its last
/// apply in this environment, read from `store` (one read a stack, no
/// change), and the stack loaded again with them. A stack that reads none
/// is returned as it is.
///
/// # Errors
/// A record cannot be read; an output is missing, sensitive or not known
/// (placed where the stack uses it).
pub async fn with_inputs(
    args: &StackArgs,
    stack: Stack,
    require_secrets: bool,
    aws: &Aws,
    store: &crate::state::Store,
) -> anyhow::Result<Stack> {
    use crate::state::applied;
    if stack.inputs.is_empty() && stack.lookups.is_empty() {
        return Ok(stack);
    }
    let lookups =
        if stack.lookups.is_empty() { None } else { Some(crate::lookup::perform(aws, &stack.lookups).await?) };
    let env = &stack.env;
    let others: BTreeSet<&String> = stack.inputs.keys().map(|(s, _)| s).collect();
    let mut records = BTreeMap::new();
    for other in others {
        records.insert(other.clone(), applied::read(aws, store, other, env).await?);
    }
    let values = stack
        .inputs
        .keys()
        .map(|(other, output)| {
            let value = match &records[other] {
                None => Err(format!(
                    "stack `{other}` has no apply recorded for environment `{env}` in {}: apply it first",
                    store.describe(&applied::key(other, env))
                )),
                Some(rec) => match rec.outputs.get(output) {
                    None => Err(format!(
                        "stack `{other}`'s last apply in `{env}` recorded no output `{output}` (it recorded: {})",
                        if rec.outputs.is_empty() {
                            "none".to_string()
                        } else {
                            rec.outputs.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                        }
                    )),
                    Some(o) if o.sensitive => Err(format!(
                        "stack `{other}`'s output `{output}` is sensitive: it is never kept, so no other stack can read it"
                    )),
                    Some(o) => o.value.clone().ok_or_else(|| {
                        format!("stack `{other}`'s output `{output}` is not known: a resource it uses was not applied in `{env}`")
                    }),
                },
            };
            ((other.clone(), output.clone()), value)
        })
        .collect();
    load_with(args, require_secrets, Some(values), lookups)
}

/// `stack` as it was last applied: the variables that apply was given
/// from outside the file ([`crate::state::applied::Applied::vars`]) for
/// each one this command does not give. What drift compares with: a
/// scheduled job does not know the commit the last deploy passed as
/// `--var image_tag=…`.
///
/// # Errors
/// The stack does not load with them (a value its variable's type no
/// longer takes).
pub fn as_applied(
    args: &StackArgs,
    stack: Stack,
    applied: Option<&crate::state::applied::Applied>,
    require_secrets: bool,
) -> anyhow::Result<Stack> {
    let missing: Vec<(String, String)> = applied
        .map(|a| {
            a.vars
                .iter()
                // Still declared (a variable since removed is not), and not
                // given by this command.
                .filter(|(k, _)| stack.vars.contains_key(*k) && !stack.overrides.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    if missing.is_empty() {
        return Ok(stack);
    }
    let mut with = args.clone();
    with.vars.extend(missing);
    // The other stacks' outputs as already read (unknown if not).
    let read =
        (!stack.inputs.is_empty()).then(|| stack.inputs.iter().map(|(k, v)| (k.clone(), Ok(v.clone()))).collect());
    load_with(&with, require_secrets, read, found_of(&stack))
}

pub async fn connect(stack: &Stack, args: &AwsArgs) -> Aws {
    Aws::connect(&AwsOptions {
        region: stack.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        profile: args.profile.clone(),
    })
    .await
}

/// The stack's state home: its bucket, else `--state-dir`, else
/// `.converge/` beside the stack file.
pub fn store(stack: &Stack, state_dir: Option<&std::path::Path>) -> crate::state::Store {
    match (&stack.state, state_dir) {
        (Some(s), _) => crate::state::Store::S3 { bucket: s.bucket.clone(), prefix: s.prefix.clone() },
        (None, Some(dir)) => crate::state::Store::Dir(dir.to_path_buf()),
        (None, None) => crate::state::Store::Dir(
            stack.file.parent().map(std::path::Path::to_path_buf).unwrap_or_default().join(".converge"),
        ),
    }
}

/// Takes the stack/env's lock for `operation`, saying so.
pub async fn lock(
    aws: &Aws,
    stack: &Stack,
    args: &LockArgs,
    operation: &str,
    printer: &Printer,
) -> anyhow::Result<crate::state::lock::HeldLock> {
    let store = store(stack, args.state_dir.as_deref());
    let opts = crate::state::lock::LockOptions {
        timeout: args.lock_timeout,
        lease: args.lock_lease,
        operation: operation.into(),
        file: stack.file.display().to_string(),
        env: stack.env.clone(),
    };
    let held = crate::state::lock::acquire(aws, &store, &stack.name, &stack.env, &opts).await?;
    if let Some(old) = &held.took_over {
        printer.out(&format!(
            "Took over the lock of a run whose lease ran out ({}): lock {}",
            old.holder(),
            held.location()
        ));
    }
    tracing::info!(lock = %held.location(), id = %held.info.id, "lock acquired");
    Ok(held)
}

/// Releases the lock at the end of a run, and says if it had been lost.
pub async fn unlock_after(held: crate::state::lock::HeldLock, printer: &Printer) -> anyhow::Result<()> {
    let location = held.location();
    if !held.release().await? {
        printer.err(&printer.paint(
            Style::Error,
            &format!(
                "error: this run's lock {location} was taken over by another run while it ran: check what both did"
            ),
        ));
        anyhow::bail!("the lock was lost during the run");
    }
    Ok(())
}

/// Refuses, before any change, a plan that deletes or replaces protected
/// resources without both opt-ins, naming each and what to do.
pub fn check_protected(plan: &crate::plan::Plan, stack: &Stack, allow: &[String]) -> anyhow::Result<()> {
    let refused = crate::plan::refused(plan, stack, allow);
    if refused.is_empty() {
        return Ok(());
    }
    let mut msg = String::from("refusing to delete or replace resources that hold data; nothing was changed:");
    for rc in &refused {
        let what = if rc.action == crate::plan::Action::Replace { "replaced" } else { "deleted" };
        let name = &rc.name;
        let how = match stack.resources.get(name) {
            Some(r) if r.protect => format!("set `protect: false` on it in the spec and pass --allow-destroy {name}"),
            Some(_) => format!("pass --allow-destroy {name}"),
            None => format!(
                "it left the spec: put it back with `protect: false`, apply, then remove it and pass --allow-destroy {name}"
            ),
        };
        msg.push_str(&format!("\n  {name} ({}) would be {what}: {how}", rc.kind));
    }
    anyhow::bail!(msg)
}

/// Prints the summary of an executed plan and gives the exit status: 0
/// done, 1 failed, 128 + the signal when interrupted (130, 143).
pub fn exit_status(what: &str, report: &crate::apply::Report, printer: &Printer) -> u8 {
    let ok = crate::apply::summarize(what, report, printer);
    match report.interrupted {
        Some(r) => r.exit_code(),
        None if ok => 0,
        None => 1,
    }
}

/// A finished (or planned-only) run, as [`record_applied`] records it.
pub struct Ran<'a> {
    /// `apply`, `destroy`, `import` or `rollback`, for the run record.
    pub command: &'static str,
    /// The commit it applied (for a rollback: the known good's).
    pub commit: Option<String>,
    /// When it started (ms since the epoch), if not when the process did.
    pub started_ms: Option<u128>,
    pub live: &'a crate::live::LiveState,
    pub plan: &'a crate::plan::Plan,
    /// None: nothing was executed (the plan had no changes).
    pub report: Option<&'a crate::apply::Report>,
    /// A destroy: every deleted resource leaves the record.
    pub destroy: bool,
}

/// When this process started (ms since the epoch): a run record's start,
/// unless the run says otherwise (a rollback after a failed verification).
pub static STARTED: std::sync::OnceLock<u128> = std::sync::OnceLock::new();

/// Records what the run left in the stack's state home (see
/// [`crate::state::applied`]), and the run in the stack/env's history
/// ([`crate::state::runs`]). A failure to write either is reported, not
/// fatal: the objects' own tags still say what was applied and by which
/// commit.
pub async fn record_applied(aws: &Aws, store: &crate::state::Store, stack: &Stack, ran: Ran<'_>, printer: &Printer) {
    let run = run_record(stack, &ran);
    if let Err(e) = crate::state::runs::write(aws, store, &run).await {
        printer.err(&printer.paint(
            Style::Error,
            &format!(
                "warning: could not record this run in {}: {e}",
                store.describe(&crate::state::runs::prefix(&stack.name, &stack.env))
            ),
        ));
    }
    use crate::state::applied;
    let known = crate::plan::known_outputs(stack, ran.live);
    let kept = stack
        .resources
        .values()
        .filter_map(|r| crate::plan::applied_digest(r, &known).map(|d| (r.name.clone(), d)))
        .collect();
    // The resources' outputs after the run: the report's, or (nothing
    // ran) what was read.
    let after = |name: &str, attr: &str| match ran.report {
        Some(r) => r.known.get(name)?.get(attr).cloned(),
        None => known.get(name)?.get(attr).cloned(),
    };
    let outputs = if ran.destroy { Default::default() } else { applied::outputs_of(stack, &after) };
    if !ran.destroy {
        output::show_after_apply(&outputs, printer);
    }
    let written = async {
        let previous = applied::read(aws, store, &stack.name, &stack.env).await?;
        let mut record = crate::apply::record::after(previous, stack, ran.plan, ran.report, &kept, ran.destroy);
        record.outputs = outputs;
        applied::write(aws, store, &record).await
    };
    if let Err(e) = written.await {
        printer.err(&printer.paint(
            Style::Error,
            &format!(
                "warning: could not record this run in {}: {e} (drift can still classify tagged objects by their tags)",
                store.describe(&crate::state::applied::key(&stack.name, &stack.env))
            ),
        ));
    }
}

/// The history record of a run that ends now.
fn run_record(stack: &Stack, ran: &Ran<'_>) -> crate::state::runs::Run {
    use crate::apply::Outcome;
    use crate::state::lock;
    use crate::state::runs::{Planned, RunResult};
    let started = ran.started_ms.unwrap_or_else(|| *STARTED.get_or_init(crate::state::runs::now_ms));
    let s = ran.plan.summary();
    let address = |op: &crate::apply::Op| format!("{}.{}", op.kind.type_name(), op.name);
    let (mut changed, mut failed) = (Vec::new(), Vec::new());
    for (op, outcome) in ran.report.map(|r| r.results.as_slice()).unwrap_or_default() {
        match outcome {
            Outcome::Done { .. } => changed.push(address(op)),
            Outcome::Failed(e) => failed.push(format!("{}: {e}", address(op))),
            _ => {}
        }
    }
    // A replace is two operations of one address, not always adjacent.
    let mut seen = std::collections::BTreeSet::new();
    changed.retain(|a| seen.insert(a.clone()));
    let result = match ran.report {
        None => RunResult::NoChanges,
        Some(r) if r.interrupted.is_some() => RunResult::Interrupted,
        // Failed, skipped for a failure, or in doubt: not all of it was made.
        Some(r) if r.results.iter().any(|(_, o)| !matches!(o, Outcome::Done { .. })) => RunResult::Failed,
        Some(_) => RunResult::Succeeded,
    };
    crate::state::runs::Run {
        format_version: crate::state::runs::VERSION,
        id: crate::state::runs::new_id(started),
        stack: stack.name.clone(),
        env: stack.env.clone(),
        command: ran.command.into(),
        commit_url: ran
            .commit
            .clone()
            .zip(std::env::var("CI_PROJECT_URL").ok())
            .map(|(c, p)| format!("{p}/-/commit/{c}")),
        commit: ran.commit.clone(),
        pipeline_url: std::env::var("CI_PIPELINE_URL").ok(),
        job_url: std::env::var("CI_JOB_URL").ok(),
        who: lock::who(),
        host: lock::host(),
        started_unix: (started / 1000) as u64,
        ended_unix: lock::now(),
        planned: Planned { add: s.add, change: s.change, replace: s.replace, destroy: s.destroy },
        result,
        changed,
        failed,
        verified: None,
        rolled_back_to: None,
    }
}

/// `--stats`: the wall time of each phase of a run, and (from the AWS
/// clients' counter) its calls.
pub struct Timer {
    phases: Vec<(&'static str, std::time::Duration)>,
    last: std::time::Instant,
}

impl Timer {
    pub fn start() -> Timer {
        Timer { phases: Vec::new(), last: std::time::Instant::now() }
    }

    /// Ends phase `name` now (a repeated name adds up).
    pub fn lap(&mut self, name: &'static str) {
        let d = self.last.elapsed();
        self.last = std::time::Instant::now();
        match self.phases.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += d,
            None => self.phases.push((name, d)),
        }
    }

    pub fn doc(&self, calls: &crate::aws::stats::CallCounter) -> crate::plan::json::StatsDoc {
        let by = calls.snapshot();
        crate::plan::json::StatsDoc {
            calls: by.values().sum(),
            by_action: by.into_iter().map(|((s, o), n)| (format!("{s}:{o}"), n)).collect(),
            phases: self
                .phases
                .iter()
                .map(|(n, d)| crate::plan::json::PhaseDoc { name: (*n).to_string(), ms: d.as_secs_f64() * 1000.0 })
                .collect(),
        }
    }
}

/// Prints `--stats` on stderr (stdout stays the plan or document).
pub fn print_stats(doc: &crate::plan::json::StatsDoc, printer: &Printer) {
    let total: f64 = doc.phases.iter().map(|p| p.ms).sum();
    let mut s = format!("converge stats: {} AWS calls, {:.0} ms\n", doc.calls, total);
    for p in &doc.phases {
        s.push_str(&format!("  {:<8} {:>9.1} ms\n", p.name, p.ms));
    }
    let width = doc.by_action.keys().map(String::len).max().unwrap_or(0);
    for (action, n) in &doc.by_action {
        s.push_str(&format!("  {action:<width$} {n:>5}\n"));
    }
    printer.err(s.trim_end());
}

/// Writes a file converge produces (a plan, a report) whole: to a
/// temporary file beside it, then renamed over it.
pub fn write_file(path: &std::path::Path, body: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension("converge-tmp");
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Checks `--target` names against the stack.
pub fn targets(stack: &Stack, names: &[String]) -> anyhow::Result<Option<BTreeSet<String>>> {
    if names.is_empty() {
        return Ok(None);
    }
    for n in names {
        if !stack.resources.contains_key(n) {
            let help = crate::spec::help_for(n, stack.resources.keys().map(String::as_str)).unwrap_or_default();
            anyhow::bail!("--target {n}: no such resource in {}; {help}", stack.file.display());
        }
    }
    Ok(Some(names.iter().cloned().collect()))
}

/// A run stopped by a signal before it changed anything.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {} before any change; nothing was changed", .0.name())]
pub struct Interrupted(pub crate::apply::stop::Requests);

/// Runs `work` (reading, planning, asking: nothing that changes AWS, so
/// safe to drop midway) unless a signal comes first.
pub async fn before_changes<T>(
    stop: &crate::apply::Stop,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let mut s = stop.clone();
    if s.requested() {
        return Err(Interrupted(s.requests()).into());
    }
    tokio::select! {
        biased;
        r = s.first() => Err(Interrupted(r).into()),
        v = work => v,
    }
}

/// Asks for `yes` on a terminal; refuses without one unless auto-approved.
/// A signal at the prompt cancels (see [`before_changes`]).
pub async fn confirm(auto_approve: bool, what: &str, printer: &Printer) -> anyhow::Result<bool> {
    use std::io::IsTerminal;
    if auto_approve {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to {what} without confirmation: stdin is not a terminal. Review the plan and pass --auto-approve (as CI does)."
        );
    }
    printer.prompt(&format!("Do you want to {what}? Only 'yes' will be accepted: "));
    // Read on a thread of its own, so that a signal is not held up by it.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut answer = String::new();
        let _ = tx.send(std::io::stdin().read_line(&mut answer).map(|_| answer));
    });
    let answer = rx.await.map_err(|_| anyhow::anyhow!("reading the answer failed"))??;
    Ok(answer.trim() == "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_takes_the_last_applies_variables_unless_given() {
        let dir = std::env::temp_dir().join(format!("converge-as-applied-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app.yaml");
        std::fs::write(
            &file,
            "stack: app\nregion: eu-west-1\nvariables:\n  image_tag: unset\n  replicas: 1\nresources:\n  repo:\n    type: ecr.repository\n",
        )
        .unwrap();
        let args = StackArgs { stack: file, env: None, region: None, vars: Vec::new() };
        let applied = crate::state::applied::Applied {
            vars: [("image_tag", "abc123"), ("gone", "x")].map(|(k, v)| (k.to_string(), v.to_string())).into(),
            ..Default::default()
        };
        // Not given: the last apply's; a variable the stack no longer has is
        // left out.
        let stack = as_applied(&args, load(&args, false).unwrap(), Some(&applied), false).unwrap();
        assert_eq!(stack.vars["image_tag"], "abc123");
        // Given by this command: its own.
        let given = StackArgs { vars: vec![("image_tag".into(), "def456".into())], ..args.clone() };
        let stack = as_applied(&given, load(&given, false).unwrap(), Some(&applied), false).unwrap();
        assert_eq!(stack.vars["image_tag"], "def456");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
