//! The command line: one file per command, all output through [`Printer`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::{Aws, AwsOptions};
use crate::printer::{Printer, Style};
use crate::spec::{LoadOptions, SpecError, Stack};

mod apply;
mod destroy;
mod graph;
mod plan;
mod schema;
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
    /// Print the JSON Schema of stack files (for yaml-language-server).
    Schema,
}

#[derive(Debug, Args)]
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
    Json,
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
            Command::Schema => schema::run(&printer),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // Spec diagnostics carry their own `file:line:col: error:` prefix.
        Err(e) if matches!(e.downcast_ref(), Some(SpecError::Invalid { .. })) => {
            printer.err(&format!("{e}"));
            ExitCode::FAILURE
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

/// Loads and validates the stack: every problem, and no AWS call.
pub fn load(args: &StackArgs, require_secrets: bool) -> anyhow::Result<Stack> {
    let opts =
        LoadOptions { env: args.env.clone(), region: args.region.clone(), require_secrets, vars: args.vars.clone() };
    Ok(crate::spec::load(&args.stack, &opts)?)
}

pub async fn connect(stack: &Stack, args: &AwsArgs) -> Aws {
    Aws::connect(&AwsOptions {
        region: stack.region.clone(),
        endpoint_url: args.endpoint_url.clone(),
        profile: args.profile.clone(),
    })
    .await
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

/// Asks for `yes` on a terminal; refuses without one unless auto-approved.
pub fn confirm(auto_approve: bool, what: &str, printer: &Printer) -> anyhow::Result<bool> {
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
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
