//! `converge mr-note PLAN.md`: the plan on the merge request, as one note
//! per stack and environment that every new pipeline edits in place.
//!
//! Reads GitLab CI's own variables (`CI_API_V4_URL`, `CI_PROJECT_ID`,
//! `CI_MERGE_REQUEST_IID`, `CI_PIPELINE_ID`, `CI_JOB_URL`,
//! `CI_SERVER_TLS_CA_FILE`) and the token
//! from `CONVERGE_GITLAB_TOKEN` only (a flag would show it in the process
//! list). Without a token it says how to set one and exits 0: the note is
//! a copy of the plan, which the job log and artifacts already hold.

use super::MrNoteArgs;
use crate::gitlab::{Api, MAX_NOTE_CHARS, MergeRequest, Posted};
use crate::printer::Printer;

/// The variable the token is read from.
pub const TOKEN_VAR: &str = "CONVERGE_GITLAB_TOKEN";

pub async fn run(args: MrNoteArgs, printer: &Printer) -> anyhow::Result<u8> {
    let text = crate::spec::read_limited(&args.file, crate::plan::saved::MAX_BYTES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let marker = text.lines().next().unwrap_or_default();
    if !crate::plan::markdown::is_marker(marker) {
        anyhow::bail!(
            "{}: not a plan in Markdown (its first line is not converge's marker); make it with `converge plan STACK --env ENV --format markdown > {}`",
            args.file.display(),
            args.file.display()
        );
    }
    let token = std::env::var(TOKEN_VAR).unwrap_or_default();
    if token.trim().is_empty() {
        printer.out(&format!(
            "Not posting the plan on the merge request: {TOKEN_VAR} is not set. To post it, add a project access token with the api scope and the Reporter role as the masked CI/CD variable {TOKEN_VAR}."
        ));
        return Ok(0);
    }
    let missing = |var: &str, flag: &str| {
        anyhow::anyhow!("{var} is not set: run this in a merge request pipeline, or give {flag}")
    };
    let api_url = args.api_url.ok_or_else(|| missing("CI_API_V4_URL", "--api-url"))?;
    let project = args.project.ok_or_else(|| missing("CI_PROJECT_ID", "--project"))?;
    let iid = args.merge_request.ok_or_else(|| missing("CI_MERGE_REQUEST_IID", "--merge-request"))?;
    let body = fit(&text, args.job_url.as_deref());
    let api = Api::new(&api_url, token.trim().to_string(), args.ca_file.as_deref())?;
    let mr = MergeRequest { project, iid };
    let posted = api.upsert_note(&mr, marker, &body, args.pipeline).await;
    match posted {
        Ok(Posted::Created { id }) => printer.out(&format!("Posted the plan on merge request !{iid} (note {id}).")),
        Ok(Posted::Updated { id }) => {
            printer.out(&format!("Updated the plan on merge request !{iid} (note {id}, edited in place)."))
        }
        Ok(Posted::Newer { id, pipeline }) => printer.out(&format!(
            "Left the plan on merge request !{iid} as it is: note {id} is from a newer pipeline ({pipeline})."
        )),
        Err(e) => anyhow::bail!("the plan was not posted on merge request !{iid}: {e}"),
    }
    Ok(0)
}

/// The note's body: the whole plan, or, past what a note holds, its head
/// up to the last whole resource that fits and a line saying where the
/// rest is.
fn fit(text: &str, job_url: Option<&str>) -> String {
    let text = text.trim_end();
    if text.chars().count() <= MAX_NOTE_CHARS {
        return text.to_string();
    }
    let tail = format!(
        "\n\n**The plan is longer than a merge-request note holds.** The whole plan is in the job's log and artifacts{}.",
        job_url.map(|u| format!(": {u}")).unwrap_or_default()
    );
    // Room for the tail and the pipeline line the API adds.
    let room = MAX_NOTE_CHARS - tail.chars().count() - 200;
    let cut = text.char_indices().nth(room).map_or(text.len(), |(i, _)| i);
    let head = &text[..cut];
    // End after the last closed resource, never inside a code block.
    let end = head.rfind("</details>\n").map_or_else(|| head.rfind('\n').unwrap_or(0), |i| i + "</details>".len());
    format!("{}{tail}", &head[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_plans_are_cut_after_a_whole_resource() {
        let block = "<details><summary>r</summary>\n\n```diff\n+ a\n```\n\n</details>\n\n";
        let text = format!("<!-- converge plan: s / e -->\n### head\n\n{}", block.repeat(30_000));
        let body = super::fit(&text, Some("https://gitlab.example.com/a/b/-/jobs/7"));
        assert!(body.chars().count() <= super::MAX_NOTE_CHARS - 100, "{}", body.len());
        assert!(body.starts_with("<!-- converge plan: s / e -->\n"));
        let (kept, tail) = body.split_once("\n\n**The plan is longer").unwrap();
        assert!(kept.ends_with("</details>"), "cut inside a resource");
        assert!(tail.ends_with("artifacts: https://gitlab.example.com/a/b/-/jobs/7."));
        assert_eq!(super::fit("short\n", None), "short");
    }
}
