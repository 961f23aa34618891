//! `converge status [PATH…]`: every stack × environment at a glance: its
//! last run, that run's commit, result and age, from each stack's state
//! home. Text, JSON, or one self-contained HTML page laid out like a CI
//! dashboard (a row per stack, a column per environment).

use std::path::PathBuf;

use serde::Serialize;

use super::StatusArgs;
use crate::printer::{Printer, Style};
use crate::state::lock::{human, now, short, utc};
use crate::state::runs::{self, Run, RunResult};

pub const VERSION: u32 = 1;

/// `--format` of `converge status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
    Html,
}

#[derive(Debug, Serialize)]
struct StatusDoc {
    format: &'static str,
    format_version: u32,
    generated_unix: u64,
    stacks: Vec<StackStatus>,
}

#[derive(Debug, Serialize)]
struct StackStatus {
    file: String,
    stack: String,
    envs: Vec<EnvStatus>,
}

#[derive(Debug, Serialize)]
struct EnvStatus {
    env: String,
    /// The newest run; `None`: never applied (or its home holds no record).
    last_run: Option<Run>,
    /// Why this environment could not be read (its stack does not load,
    /// its state home cannot be read); the others are still shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With `--drift`: whether AWS still matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<DriftCell>,
}

/// What `--drift` found in one environment: the counts of `converge
/// drift`, or why AWS could not be read.
#[derive(Debug, Default, Serialize)]
struct DriftCell {
    differences: usize,
    drift: usize,
    pending: usize,
    missing: usize,
    unmanaged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl DriftCell {
    fn text(&self) -> String {
        match (&self.error, self.differences) {
            (Some(e), _) => format!("drift unknown: {e}"),
            (None, 0) => "in sync".into(),
            (None, n) => format!("{n} difference(s)"),
        }
    }
}

/// Reads AWS for one environment and classifies the differences, with
/// the variables of its last apply.
async fn drift_of(
    a: &crate::run::StackRef,
    stack: crate::spec::Stack,
    aws: &crate::aws::Aws,
    store: &crate::state::Store,
) -> anyhow::Result<DriftCell> {
    let applied = crate::state::applied::read(aws, store, &stack.name, &stack.env).await?;
    let stack = crate::run::load::with_inputs(a, stack, false, aws, store).await?;
    let stack = crate::run::load::as_applied(a, stack, applied.as_ref(), false)?;
    let live = crate::live::read(aws, &stack).await?;
    let plan = crate::plan::plan(&stack, &live, None)?;
    let known = crate::plan::known_outputs(&stack, &live);
    let report = crate::plan::drift::classify(&stack, &plan, &known, applied.as_ref());
    let c = crate::plan::drift::DriftDoc::new(&stack.name, vec![report]).counts;
    Ok(DriftCell {
        differences: c.total(),
        drift: c.drift,
        pending: c.pending,
        missing: c.missing,
        unmanaged: c.unmanaged,
        error: None,
    })
}

pub async fn run(args: StatusArgs, printer: &Printer) -> anyhow::Result<u8> {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("stacks")] } else { args.paths.clone() };
    let files = stack_files(&paths)?;
    if files.is_empty() {
        anyhow::bail!("no stack files (*.yaml, *.yml) in {}", list(&paths));
    }
    let mut doc =
        StatusDoc { format: "converge-status", format_version: VERSION, generated_unix: now(), stacks: Vec::new() };
    for file in files {
        let names = crate::spec::environment_names(&file)?;
        let envs: Vec<Option<String>> =
            if names.is_empty() { vec![None] } else { names.into_iter().map(Some).collect() };
        let mut s = StackStatus { file: file.display().to_string(), stack: String::new(), envs: Vec::new() };
        for env in envs {
            let a = crate::run::StackRef { file: file.clone(), env: env.clone(), region: None, vars: Vec::new() };
            let read = async {
                let stack = crate::run::load::load(&a, false)?;
                let aws = crate::run::session::connect(&stack, &args.aws.to_run()).await;
                let store = crate::run::session::store(&stack, args.state_dir.as_deref());
                let last = runs::list(&aws, &store, &stack.name, &stack.env, 1).await?.into_iter().next();
                let (name, env) = (stack.name.clone(), stack.env.clone());
                let drift = match args.drift {
                    false => None,
                    true => Some(
                        drift_of(&a, stack, &aws, &store)
                            .await
                            .unwrap_or_else(|e| DriftCell { error: Some(first_line(&e)), ..DriftCell::default() }),
                    ),
                };
                anyhow::Ok((name, env, last, drift))
            };
            match read.await {
                Ok((name, env, last_run, drift)) => {
                    s.stack = name;
                    s.envs.push(EnvStatus { env, last_run, error: None, drift });
                }
                Err(e) => s.envs.push(EnvStatus {
                    env: env.unwrap_or_else(|| "default".into()),
                    last_run: None,
                    error: Some(first_line(&e)),
                    drift: None,
                }),
            }
        }
        if s.stack.is_empty() {
            s.stack = file.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        }
        doc.stacks.push(s);
    }
    let rendered = match args.format {
        StatusFormat::Json => serde_json::to_string_pretty(&doc)?,
        StatusFormat::Html => html(&doc),
        StatusFormat::Text => text(&doc, printer),
    };
    match &args.out {
        Some(path) => {
            crate::run::session::write_file(path, rendered.as_bytes())?;
            printer.err(&format!("Wrote {}.", path.display()));
        }
        None => printer.out(rendered.trim_end()),
    }
    Ok(0)
}

/// The stack files a path names: itself, or the `*.yaml`/`*.yml` files
/// directly in it (hidden ones skipped), sorted.
fn stack_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.is_file() && matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .filter(|f| !f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or_default().to_string()
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

fn age(run: &Run, at: u64) -> String {
    format!("{} ago", human(at.saturating_sub(run.ended_unix)))
}

fn text(doc: &StatusDoc, printer: &Printer) -> String {
    let with_drift = doc.stacks.iter().flat_map(|s| &s.envs).any(|e| e.drift.is_some());
    let mut rows = vec![["STACK", "ENV", "LAST RUN", "RESULT", "COMMIT", "AGE"].map(String::from).to_vec()];
    if with_drift {
        rows[0].push("DRIFT".into());
    }
    let mut styles = vec![Style::Bold];
    for s in &doc.stacks {
        for e in &s.envs {
            let row = match &e.last_run {
                Some(r) => vec![
                    s.stack.clone(),
                    e.env.clone(),
                    format!("{} {}", r.command, utc(r.started_unix)),
                    r.result.as_str().to_string(),
                    r.commit.as_deref().map_or("-".into(), |c| short(c).to_string()),
                    age(r, doc.generated_unix),
                ],
                None => match &e.error {
                    Some(err) => vec![
                        s.stack.clone(),
                        e.env.clone(),
                        format!("unreadable: {err}"),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                    ],
                    None => vec![s.stack.clone(), e.env.clone(), "never".into(), "-".into(), "-".into(), "-".into()],
                },
            };
            let mut row = row;
            if with_drift {
                row.push(e.drift.as_ref().map_or("-".into(), DriftCell::text));
            }
            rows.push(row);
            styles.push(match e.last_run.as_ref().map(|r| r.result) {
                Some(RunResult::Failed | RunResult::Interrupted) => Style::Error,
                Some(RunResult::Succeeded) => Style::Add,
                _ => Style::Plain,
            });
        }
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    rows.iter()
        .zip(styles)
        .map(|(row, style)| {
            let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            printer.paint(style, line.join("  ").trim_end())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A link when `url` is an http(s) URL, else the text.
fn link(text: &str, url: Option<&str>) -> String {
    match url.filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
        Some(u) => format!("<a href=\"{}\">{}</a>", esc(u), esc(text)),
        None => esc(text),
    }
}

/// One self-contained page: inline CSS, no script, no external asset.
fn html(doc: &StatusDoc) -> String {
    let mut envs: Vec<&str> = Vec::new();
    for s in &doc.stacks {
        for e in &s.envs {
            if !envs.contains(&e.env.as_str()) {
                envs.push(&e.env);
            }
        }
    }
    let mut body = String::new();
    body.push_str("<table>\n<thead><tr><th>stack</th>");
    for e in &envs {
        body.push_str(&format!("<th>{}</th>", esc(e)));
    }
    body.push_str("</tr></thead>\n<tbody>\n");
    for s in &doc.stacks {
        body.push_str(&format!(
            "<tr><th scope=\"row\">{}<div class=\"file\">{}</div></th>",
            esc(&s.stack),
            esc(&s.file)
        ));
        for env in &envs {
            let cell = match s.envs.iter().find(|e| e.env == *env) {
                None => "<td class=\"none\">—</td>".to_string(),
                Some(EnvStatus { last_run: None, error: Some(err), .. }) => {
                    format!("<td class=\"never\" data-env=\"{}\">unreadable: {}</td>", esc(env), esc(err))
                }
                Some(EnvStatus { last_run: None, .. }) => {
                    format!("<td class=\"never\" data-env=\"{}\">never applied</td>", esc(env))
                }
                Some(EnvStatus { last_run: Some(r), drift, .. }) => {
                    let drift = drift.as_ref().map_or(String::new(), |d| {
                        let class = match (&d.error, d.differences) {
                            (None, 0) => "in-sync",
                            _ => "drifted",
                        };
                        format!("<div class=\"drift {class}\">{}</div>", esc(&d.text()))
                    });
                    let class = match r.result {
                        RunResult::Succeeded => "succeeded",
                        RunResult::NoChanges => "unchanged",
                        RunResult::Failed => "failed",
                        RunResult::Interrupted => "interrupted",
                    };
                    let commit = r.commit.as_deref().map_or("no commit".to_string(), |c| short(c).to_string());
                    let run = link(
                        &format!("{} {}", r.command, r.result.as_str()),
                        r.job_url.as_deref().or(r.pipeline_url.as_deref()),
                    );
                    format!(
                        "<td class=\"{class}\" data-env=\"{}\" data-result=\"{}\"><div class=\"result\">{run}</div><div class=\"commit\">{}</div><div class=\"age\" title=\"{}\">{} · {}</div>{drift}</td>",
                        esc(env),
                        r.result.as_str(),
                        link(&commit, r.commit_url.as_deref()),
                        esc(&utc(r.started_unix)),
                        esc(&age(r, doc.generated_unix)),
                        esc(&r.who),
                    )
                }
            };
            body.push_str(&cell);
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody>\n</table>\n");
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>converge status</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2328; background: #fff; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
p.generated {{ color: #59636e; margin: 0 0 16px; }}
table {{ border-collapse: separate; border-spacing: 6px; }}
th {{ text-align: left; padding: 6px 10px; }}
th .file {{ font-weight: normal; color: #59636e; font-size: 12px; }}
td {{ min-width: 170px; padding: 8px 10px; border-radius: 6px; vertical-align: top; }}
td .result {{ font-weight: 600; }}
td .commit {{ font-family: ui-monospace, monospace; }}
td .age {{ font-size: 12px; }}
td a {{ color: inherit; }}
td.succeeded {{ background: #1a7f37; color: #fff; }}
td.unchanged {{ background: #d1f0d9; color: #0b3d17; }}
td.failed, td.interrupted {{ background: #cf222e; color: #fff; }}
td.never {{ background: #eaeef2; color: #59636e; }}
td.none {{ color: #8c959f; }}
td .drift {{ font-size: 12px; margin-top: 4px; }}
td .drift.drifted {{ font-weight: 600; text-decoration: underline wavy; }}
</style>
</head>
<body>
<h1>converge status</h1>
<p class="generated">{} · generated {}</p>
{body}</body>
</html>
"#,
        if doc.stacks.len() == 1 { "1 stack".to_string() } else { format!("{} stacks", doc.stacks.len()) },
        esc(&utc(doc.generated_unix)),
    )
}
