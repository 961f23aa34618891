//! The plan as Markdown, for a merge-request note (GitLab Flavored
//! Markdown, which GitHub renders the same way).
//!
//! Reviewers see the summary first, then destructive actions in a table of
//! their own, then a table of counts per kind, then each changed resource
//! in a collapsed `<details>` block whose body is a `diff` code block: the
//! text plan's lines with their sign in the first column, so the forge
//! colours additions and removals, and long text shows as a line diff.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::text::{resource_text, summary_line};
use super::{Action, Plan, ResourceChange};
use crate::printer::Printer;

/// Escapes text for HTML (inside `<summary>`) and Markdown table cells.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "&#124;")
}

/// A code fence longer than any run of backticks in `body`.
fn fence(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// Moves each line's leading `+`, `-` or `~` to the first column, where a
/// `diff` block looks for it, keeping every line's text where it was.
fn diff_lines(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        let signed = ["+ ", "- ", "~ "].iter().any(|p| body.starts_with(p)) || matches!(body, "+" | "-" | "~");
        // The line with its sign blanked, then one column given up to the
        // sign in front.
        let (sign, rest) = if signed { body.split_at(1) } else { (" ", body) };
        // `~` (a change) is not a diff sign: shown as `!`, which
        // highlighters colour as a change.
        let sign = if sign == "~" { "!" } else { sign };
        let blanked = format!("{}{}{rest}", " ".repeat(indent), if signed { " " } else { "" });
        let _ = writeln!(out, "{sign}{}", blanked.strip_prefix(' ').unwrap_or(&blanked));
    }
    out
}

fn verb(r: &ResourceChange) -> &'static str {
    match r.action {
        Action::Create => "create",
        Action::Update if r.moved_from.is_some() => "move",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "destroy",
        Action::NoOp => "no-op",
    }
}

/// The first line of every plan in Markdown: an HTML comment (hidden
/// where the Markdown is rendered) naming the stack and environment, by
/// which `converge mr-note` finds the note it posted before and edits it.
pub fn marker(stack: &str, env: &str) -> String {
    // A comment ends at the first `--`: names are kept out of it.
    let name = |s: &str| s.replace("--", "-\u{2010}").replace('>', "&gt;");
    format!("{MARKER_START}{} / {}{MARKER_END}", name(stack), name(env))
}

const MARKER_START: &str = "<!-- converge plan: ";
const MARKER_END: &str = " -->";

/// Whether `line` is a [`marker`] (the first line of a plan in Markdown).
pub fn is_marker(line: &str) -> bool {
    line.starts_with(MARKER_START) && line.ends_with(MARKER_END)
}

/// The plan as Markdown.
pub fn render(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}", marker(&plan.stack, &plan.env));
    let _ = writeln!(
        s,
        "### converge plan: `{}` / `{}` ({})\n",
        escape(&plan.stack),
        escape(&plan.env),
        escape(&plan.region)
    );
    if !plan.has_changes() {
        s.push_str("**No changes.** AWS matches the spec.\n");
        return s;
    }
    let _ = writeln!(s, "**{}**\n", summary_line(&plan.summary()));
    if !plan.read.is_empty() {
        s.push_str("Read before planning:\n\n| Value | From | Gave |\n|---|---|---|\n");
        for r in &plan.read {
            let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let gave: Vec<String> =
                r.values.iter().map(|(k, v)| format!("{k} = `{}`", escape(&text(v).replace('`', "'")))).collect();
            let _ = writeln!(s, "| `{}` | {} | {} |", escape(&r.name), escape(&r.from), gave.join(", "));
        }
        s.push('\n');
    }
    let changed: Vec<&ResourceChange> = plan.resources.iter().filter(|r| r.action != Action::NoOp).collect();
    let destructive: Vec<&&ResourceChange> =
        changed.iter().filter(|r| matches!(r.action, Action::Delete | Action::Replace)).collect();
    if !destructive.is_empty() {
        let _ = writeln!(
            s,
            ":warning: **{} resource(s) will be destroyed or replaced.** Data in them does not carry over.\n",
            destructive.len()
        );
        s.push_str("| Action | Resource | Kind | Why |\n|---|---|---|---|\n");
        for r in &destructive {
            let why = match r.action {
                Action::Replace => {
                    let by: Vec<String> = r
                        .changes
                        .iter()
                        .filter(|c| c.forces_replacement)
                        .map(|c| format!("`{}`", escape(&c.attr)))
                        .collect();
                    format!("{} forces replacement", by.join(", "))
                }
                _ => escape(r.reason.as_deref().unwrap_or("")),
            };
            let protected = if r.protected { " :no_entry: **protected: apply refuses without opt-in**" } else { "" };
            let _ = writeln!(
                s,
                "| **{}** | `{}` | {} | {why}{protected} |",
                verb(r).to_uppercase(),
                escape(&r.name),
                r.kind
            );
        }
        s.push('\n');
    }
    // Counts per kind.
    let mut per_kind: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    for r in &changed {
        let slot = per_kind.entry(r.kind).or_default();
        match r.action {
            Action::Create => slot[0] += 1,
            Action::Update => slot[1] += 1,
            Action::Replace => slot[2] += 1,
            Action::Delete => slot[3] += 1,
            Action::NoOp => {}
        }
    }
    s.push_str("| Kind | Create | Update | Replace | Destroy |\n|---|--:|--:|--:|--:|\n");
    for (kind, [c, u, r, d]) in &per_kind {
        let cell = |n: &usize| if *n == 0 { String::new() } else { n.to_string() };
        let _ = writeln!(s, "| {kind} | {} | {} | {} | {} |", cell(c), cell(u), cell(r), cell(d));
    }
    s.push('\n');
    // Details: destructive first.
    let mut ordered: Vec<&ResourceChange> = changed.iter().copied().filter(|r| r.action == Action::Delete).collect();
    ordered.extend(changed.iter().copied().filter(|r| r.action == Action::Replace));
    ordered.extend(changed.iter().copied().filter(|r| matches!(r.action, Action::Create | Action::Update)));
    let plain = Printer::plain();
    for r in ordered {
        let text = resource_text(r, &plain);
        let mut lines = text.lines();
        let head = lines.next().unwrap_or_default().trim().to_string();
        let body = diff_lines(&lines.collect::<Vec<_>>().join("\n"));
        if body.trim().is_empty() {
            // Nothing to unfold (a delete): the line says it all.
            let _ = writeln!(s, "<code>{}</code>\n", escape(&head));
            continue;
        }
        let _ = writeln!(s, "<details><summary><code>{}</code></summary>\n", escape(&head));
        let f = fence(&body);
        let _ = write!(s, "{f}diff\n{body}{f}\n");
        s.push_str("\n</details>\n\n");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn fences_outgrow_backticks_and_signs_move_to_the_first_column() {
        assert_eq!(super::fence("a ``` b"), "````");
        assert_eq!(super::fence("plain"), "```");
        // Every line's text stays in its column; the sign moves to the first.
        assert_eq!(
            super::diff_lines("      + a = 1\n          - x\n            y\n      ~ b\n  note"),
            "+       a = 1\n-           x\n            y\n!       b\n  note\n"
        );
        assert_eq!(super::escape("<a|b>"), "&lt;a&#124;b&gt;");
    }
}
