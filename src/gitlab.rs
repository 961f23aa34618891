//! GitLab's REST API, as far as converge uses it: the notes of a merge
//! request, where `converge mr-note` keeps one plan per stack and
//! environment (`/projects/:id/merge_requests/:iid/notes`).
//!
//! # Guarantees
//! - One note per marker: [`Api::upsert_note`] edits (`PUT`) the note
//!   whose body starts with the marker line, and creates one (`POST`) only
//!   when no note of the merge request starts with it. A note written by a
//!   newer pipeline than the caller's is left as it is.
//! - The token travels only in the `PRIVATE-TOKEN` header, to the API URL
//!   given; no error or log line carries it (they name the method, the
//!   path, the status and GitLab's own message).
//! - Bounded: each request has 30 seconds, a server error (5xx, 429) or a
//!   failed connection is tried 3 times in all, and at most 100 pages of
//!   notes are read. 401, 403 and 404 fail at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_json::{Value, json};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at a request that failed on GitLab's side or the network's.
const ATTEMPTS: u32 = 3;
/// Pages of 100 notes read at the most while looking for the marker.
const MAX_PAGES: u32 = 100;

/// The longest note GitLab stores (`Note` validates its body at 1,000,000
/// characters).
pub const MAX_NOTE_CHARS: usize = 1_000_000;

/// What went wrong, said so that the next step is clear.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "GitLab refused the token (401 Unauthorized{}): CONVERGE_GITLAB_TOKEN must be a project access token with the api scope that has not expired or been revoked",
        msg(.0)
    )]
    Unauthorized(String),
    #[error(
        "GitLab forbade {0} (403 Forbidden{m}): the token needs the api scope and at least the Reporter role in the project",
        m = msg(.1)
    )]
    Forbidden(String, String),
    #[error(
        "GitLab found nothing at {0} (404 Not Found{m}): check CI_PROJECT_ID and CI_MERGE_REQUEST_IID, and that the token belongs to this project",
        m = msg(.1)
    )]
    NotFound(String, String),
    #[error("GitLab answered {1} to {0} ({ATTEMPTS} attempts{m}): GitLab is having trouble; re-run the job", m = msg(.2))]
    Server(String, StatusCode, String),
    #[error("GitLab refused {0}: {1}{m}", m = msg(.2))]
    Refused(String, StatusCode, String),
    #[error("cannot reach GitLab for {0} ({ATTEMPTS} attempts): {1}")]
    Transport(String, String),
    #[error("GitLab's answer to {0} is not what its API documents: {1}")]
    Unexpected(String, String),
    #[error("{0}")]
    Setup(String),
}

fn msg(m: &str) -> String {
    if m.is_empty() { String::new() } else { format!(": {m}") }
}

/// What [`Api::upsert_note`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Created {
        id: u64,
    },
    Updated {
        id: u64,
    },
    /// The note was written by a newer pipeline than this one.
    Newer {
        id: u64,
        pipeline: u64,
    },
}

/// A merge request: its project (numeric id or `group/project` path) and
/// its number within it.
#[derive(Debug, Clone)]
pub struct MergeRequest {
    pub project: String,
    pub iid: u64,
}

#[derive(Debug, Deserialize)]
struct Note {
    id: u64,
    #[serde(default)]
    body: String,
    #[serde(default)]
    system: bool,
}

/// The REST API of one GitLab, with one token.
pub struct Api {
    base: String,
    token: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// The hidden line that says which pipeline wrote a note.
fn pipeline_line(pipeline: u64) -> String {
    format!("<!-- converge: pipeline {pipeline} -->")
}

/// The pipeline a note's body says it was written by.
fn pipeline_of(body: &str) -> Option<u64> {
    body.lines().rev().find_map(|l| l.strip_prefix("<!-- converge: pipeline ")?.strip_suffix(" -->")?.parse().ok())
}

impl Api {
    /// `base` is the API's root, as GitLab CI gives it in `CI_API_V4_URL`
    /// (`https://gitlab.example.com/api/v4`). GitLab's certificate is
    /// checked against the system's CA certificates and, for a GitLab whose
    /// certificate comes from a CA of its own, those in `ca_file` (PEM; in
    /// GitLab CI, `CI_SERVER_TLS_CA_FILE`).
    ///
    /// # Errors
    /// A URL that is not http(s), a CA file that cannot be read, or no CA
    /// certificate at all.
    pub fn new(base: &str, token: String, ca_file: Option<&Path>) -> Result<Api, Error> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::Setup(format!("{base}: GitLab's API URL must start with https:// (CI_API_V4_URL)")));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let roots = {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (mut added, _) = roots.add_parsable_certificates(found.certs);
            if let Some(file) = ca_file {
                let unreadable =
                    |e: String| Error::Setup(format!("{}: not a PEM file of CA certificates ({e})", file.display()));
                let certs = CertificateDer::pem_file_iter(file)
                    .map_err(|e| unreadable(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| unreadable(e.to_string()))?;
                let (ok, _) = roots.add_parsable_certificates(certs);
                if ok == 0 {
                    return Err(unreadable("no certificate in it".into()));
                }
                added += ok;
            }
            if added == 0 && base.starts_with("https://") {
                return Err(Error::Setup(
                    "no CA certificates on this machine to check GitLab's with (install ca-certificates)".into(),
                ));
            }
            roots
        };
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Setup(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Api { base, token, client })
    }

    fn notes_path(mr: &MergeRequest) -> String {
        let project = percent_encoding::utf8_percent_encode(&mr.project, percent_encoding::NON_ALPHANUMERIC);
        format!("/projects/{project}/merge_requests/{}/notes", mr.iid)
    }

    /// Puts `body` on the merge request as the note that starts with
    /// `marker` (its first line): edits that note, or creates it. With
    /// `pipeline`, the body ends with a hidden line naming it, and a note
    /// a newer pipeline wrote is not overwritten.
    ///
    /// # Errors
    /// GitLab refused or could not be reached; see [`Error`].
    pub async fn upsert_note(
        &self,
        mr: &MergeRequest,
        marker: &str,
        body: &str,
        pipeline: Option<u64>,
    ) -> Result<Posted, Error> {
        let path = Self::notes_path(mr);
        let mut found = None;
        'pages: for page in 1..=MAX_PAGES {
            let query = format!("{path}?sort=asc&order_by=created_at&per_page=100&page={page}");
            let (headers, bytes) = self.send(Method::GET, &query, None).await?;
            let notes: Vec<Note> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Unexpected(format!("GET {path}"), format!("not a list of notes ({e})")))?;
            for n in notes {
                if !n.system && n.body.lines().next() == Some(marker) {
                    found = Some(n);
                    break 'pages;
                }
            }
            let next = headers.get("x-next-page").and_then(|v| v.to_str().ok()).unwrap_or("").trim();
            if next.is_empty() {
                break;
            }
        }
        let full = match pipeline {
            Some(p) => format!("{}\n\n{}\n", body.trim_end(), pipeline_line(p)),
            None => body.to_string(),
        };
        let payload = json!({ "body": full });
        match found {
            Some(n) => {
                if let (Some(ours), Some(theirs)) = (pipeline, pipeline_of(&n.body))
                    && theirs > ours
                {
                    return Ok(Posted::Newer { id: n.id, pipeline: theirs });
                }
                self.send(Method::PUT, &format!("{path}/{}", n.id), Some(&payload)).await?;
                Ok(Posted::Updated { id: n.id })
            }
            None => {
                let (_, bytes) = self.send(Method::POST, &path, Some(&payload)).await?;
                let id = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| v["id"].as_u64())
                    .ok_or_else(|| Error::Unexpected(format!("POST {path}"), "the created note has no id".into()))?;
                Ok(Posted::Created { id })
            }
        }
    }

    /// One request, tried again on a server error or a failed connection.
    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(HeaderMap, Bytes), Error> {
        // Named without its query string.
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(300 * u64::from(attempt - 1))).await;
            }
            let mut req = Request::builder()
                .method(method.clone())
                .uri(format!("{}{path}", self.base))
                .header("PRIVATE-TOKEN", &self.token)
                .header("Accept", "application/json")
                .header("User-Agent", concat!("converge/", env!("CARGO_PKG_VERSION")));
            let bytes = match body {
                Some(b) => {
                    req = req.header("Content-Type", "application/json");
                    Bytes::from(b.to_string())
                }
                None => Bytes::new(),
            };
            let req = req.body(Full::new(bytes)).map_err(|e| Error::Setup(format!("{what}: {e}")))?;
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, async {
                let resp = self.client.request(req).await.map_err(|e| chain(&e))?;
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await.map_err(|e| chain(&e))?.to_bytes();
                Ok::<_, String>((parts.status, parts.headers, bytes))
            })
            .await;
            let (status, headers, bytes) = match answer {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    last = Some(Error::Transport(what.clone(), e));
                    continue;
                }
                Err(_) => {
                    last = Some(Error::Transport(what.clone(), format!("no answer in {}s", REQUEST_TIMEOUT.as_secs())));
                    continue;
                }
            };
            if status.is_success() {
                return Ok((headers, bytes));
            }
            let message = gitlab_message(&bytes);
            match status {
                StatusCode::UNAUTHORIZED => return Err(Error::Unauthorized(message)),
                StatusCode::FORBIDDEN => return Err(Error::Forbidden(what, message)),
                StatusCode::NOT_FOUND => return Err(Error::NotFound(what, message)),
                s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                    last = Some(Error::Server(what.clone(), s, message));
                }
                s => return Err(Error::Refused(what, s, message)),
            }
        }
        Err(last.unwrap_or_else(|| Error::Transport(what, "no attempt".into())))
    }
}

/// An error and its causes, as one line (hyper's own says only "client
/// error (Connect)"; the cause says which: refused, DNS, a certificate).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// GitLab's `message` (or `error`) from an error answer, on one line and
/// short.
fn gitlab_message(bytes: &[u8]) -> String {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let m = match v.get("message").or_else(|| v.get("error")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let one: String = m.split_whitespace().collect::<Vec<_>>().join(" ");
    one.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pipeline_line_reads_back_and_messages_stay_short() {
        let body = format!("<!-- m -->\nplan\n\n{}\n", super::pipeline_line(1234));
        assert_eq!(super::pipeline_of(&body), Some(1234));
        assert_eq!(super::pipeline_of("<!-- m -->\nplan"), None);
        assert_eq!(super::gitlab_message(br#"{"message":"401 Unauthorized"}"#), "401 Unauthorized");
        assert_eq!(super::gitlab_message(br#"{"message":{"body":["is too long"]}}"#), r#"{"body":["is too long"]}"#);
        assert_eq!(super::gitlab_message(b"<html>bad gateway</html>"), "");
        assert_eq!(super::gitlab_message(format!(r#"{{"error":"{}"}}"#, "x".repeat(500)).as_bytes()).len(), 200);
    }
}
