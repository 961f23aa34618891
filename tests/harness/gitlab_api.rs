//! A stand-in for GitLab's merge request notes API, on loopback, strict
//! about what GitLab's REST API documents (`doc/api/notes.md`):
//!
//! - `GET /api/v4/projects/:id/merge_requests/:iid/notes` (`sort`,
//!   `order_by`, `per_page` ≤ 100, `page`; `x-next-page` header, empty on
//!   the last page) → the notes as a JSON array;
//! - `POST …/notes` with a JSON object `{"body": "…"}` (non-empty) → 201
//!   and the note;
//! - `PUT …/notes/:note_id` with the same → 200 and the note; a system
//!   note cannot be edited;
//! - every request authenticated by its `PRIVATE-TOKEN` header → else 401
//!   `{"message":"401 Unauthorized"}`; `:id` is the project's number or
//!   its URL-encoded path.
//!
//! Anything else is answered 400 or 404 and recorded as a violation, which
//! tests assert is empty. [`Mode`] makes it answer 403 or 502 instead. It
//! speaks HTTP/1.1, plain or over TLS ([`FakeGitLab::start_tls`], with a
//! certificate the test makes, as a GitLab with a CA of its own has).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// How the server answers authenticated requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// 403, as for a token whose role may not write notes.
    Forbidden,
    /// 502 to everything, as a GitLab behind a failing proxy.
    BadGateway,
}

/// A note as the API returns it (the fields converge reads, and a few more).
#[derive(Debug, Clone)]
pub struct Note {
    pub id: u64,
    pub body: String,
    pub system: bool,
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub private_token: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// Status, extra headers, body.
type Answer = (u16, Vec<(String, String)>, String);

#[derive(Default)]
struct State {
    notes: Vec<Note>,
    next_id: u64,
    requests: Vec<Request>,
    violations: Vec<String>,
    mode: Option<Mode>,
}

pub struct FakeGitLab {
    pub url: String,
    state: Arc<Mutex<State>>,
    /// The project (`:id`, as its number) and merge request (`:iid`).
    pub project: u64,
    pub project_path: &'static str,
    pub iid: u64,
    pub token: &'static str,
}

impl FakeGitLab {
    /// A server whose merge request already has `seeded` notes by people
    /// and one system note.
    pub fn start(seeded: usize) -> FakeGitLab {
        FakeGitLab::start_with(seeded, None)
    }

    /// The same over HTTPS, with `tls`'s certificate, at
    /// `https://localhost:PORT/api/v4`.
    pub fn start_tls(seeded: usize, tls: Arc<rustls::ServerConfig>) -> FakeGitLab {
        FakeGitLab::start_with(seeded, Some(tls))
    }

    fn start_with(seeded: usize, tls: Option<Arc<rustls::ServerConfig>>) -> FakeGitLab {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/api/v4"),
            None => format!("http://127.0.0.1:{port}/api/v4"),
        };
        let mut notes: Vec<Note> = (1..=seeded as u64)
            .map(|id| Note { id, body: format!("Looks good to me ({id})"), system: false })
            .collect();
        notes.push(Note { id: seeded as u64 + 1, body: "added 1 commit".into(), system: true });
        let state = Arc::new(Mutex::new(State {
            next_id: seeded as u64 + 2,
            notes,
            mode: Some(Mode::Normal),
            ..State::default()
        }));
        let server = FakeGitLab {
            url,
            state: state.clone(),
            project: 42,
            project_path: "acme/infra",
            iid: 7,
            token: "glpat-test-0123456789",
        };
        let (project, path, iid, token) = (server.project, server.project_path, server.iid, server.token);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let state = state.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                        serve(rustls::StreamOwned::new(conn, stream), &state, project, path, iid, token);
                    }
                    None => serve(stream, &state, project, path, iid, token),
                });
            }
        });
        server
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    pub fn notes(&self) -> Vec<Note> {
        self.state.lock().unwrap().notes.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// The notes whose first line is `marker`.
    pub fn notes_marked(&self, marker: &str) -> Vec<Note> {
        self.notes().into_iter().filter(|n| n.body.lines().next() == Some(marker)).collect()
    }
}

fn serve<S: Read + Write>(stream: S, state: &Mutex<State>, project: u64, path: &str, iid: u64, token: &str) {
    let mut reader = BufReader::new(stream);
    // One request a connection is enough for a client; keep-alive too.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method,
            target,
            private_token: header("private-token"),
            content_type: header("content-type"),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let (status, extra, payload) = answer(&req, state, project, path, iid, token);
        state.lock().unwrap().requests.push(req);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "Bad Gateway",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        );
        for (k, v) in extra {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let stream = reader.get_mut();
        if stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(payload.as_bytes()))
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

fn note_json(n: &Note) -> serde_json::Value {
    serde_json::json!({
        "id": n.id, "type": null, "body": n.body, "system": n.system,
        "noteable_type": "MergeRequest", "resolvable": false, "author": {"id": 1, "username": "project_42_bot"}
    })
}

fn answer(req: &Request, state: &Mutex<State>, project: u64, path: &str, iid: u64, token: &str) -> Answer {
    let mut s = state.lock().unwrap();
    let violation = |s: &mut State, why: String| {
        s.violations.push(format!("{} {}: {why}", req.method, req.target));
        (400, vec![], serde_json::json!({"error": why}).to_string())
    };
    if req.private_token.as_deref() != Some(token) {
        return (401, vec![], r#"{"message":"401 Unauthorized"}"#.into());
    }
    match s.mode {
        Some(Mode::Forbidden) => return (403, vec![], r#"{"message":"403 Forbidden"}"#.into()),
        Some(Mode::BadGateway) => return (502, vec![], "<html>502 Bad Gateway</html>".into()),
        _ => {}
    }
    let (route, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let encoded_path = path.replace('/', "%2F");
    let prefix = [
        format!("/api/v4/projects/{project}/merge_requests/{iid}/notes"),
        format!("/api/v4/projects/{encoded_path}/merge_requests/{iid}/notes"),
    ]
    .into_iter()
    .find(|p| route == p || route.starts_with(&format!("{p}/")));
    let Some(prefix) = prefix else {
        return (404, vec![], r#"{"message":"404 Not found"}"#.into());
    };
    let rest = &route[prefix.len()..];
    let params: Vec<(&str, &str)> =
        query.split('&').filter(|q| !q.is_empty()).filter_map(|q| q.split_once('=')).collect();
    let param = |k: &str| params.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let body_of = |s: &mut State| -> Result<String, Answer> {
        if !req.content_type.as_deref().unwrap_or("").starts_with("application/json") {
            return Err(violation(s, format!("Content-Type {:?}, not JSON", req.content_type)));
        }
        let v: serde_json::Value = serde_json::from_str(&req.body).map_err(|e| violation(s, format!("body: {e}")))?;
        match v.get("body").and_then(|b| b.as_str()) {
            Some(b) if !b.trim().is_empty() => Ok(b.to_string()),
            _ => Err(violation(s, "`body` is required and must not be empty".into())),
        }
    };
    match (req.method.as_str(), rest) {
        ("GET", "") => {
            for (k, allowed) in [("sort", &["asc", "desc"][..]), ("order_by", &["created_at", "updated_at"][..])] {
                if let Some(v) = param(k)
                    && !allowed.contains(&v)
                {
                    return violation(&mut s, format!("{k}={v}"));
                }
            }
            let per_page: usize = param("per_page").and_then(|v| v.parse().ok()).unwrap_or(20);
            if per_page == 0 || per_page > 100 {
                return violation(&mut s, format!("per_page={per_page}: 1 to 100"));
            }
            let page: usize = param("page").and_then(|v| v.parse().ok()).unwrap_or(1).max(1);
            let mut notes = s.notes.clone();
            if param("sort") != Some("asc") {
                notes.reverse();
            }
            let chunk: Vec<serde_json::Value> =
                notes.iter().skip((page - 1) * per_page).take(per_page).map(note_json).collect();
            let next = if page * per_page < notes.len() { (page + 1).to_string() } else { String::new() };
            (
                200,
                vec![("x-next-page".into(), next), ("x-total".into(), notes.len().to_string())],
                serde_json::Value::from(chunk).to_string(),
            )
        }
        ("POST", "") => match body_of(&mut s) {
            Ok(body) => {
                let id = s.next_id;
                s.next_id += 1;
                let n = Note { id, body, system: false };
                s.notes.push(n.clone());
                (201, vec![], note_json(&n).to_string())
            }
            Err(e) => e,
        },
        ("PUT", id) => {
            let Some(id) = id.strip_prefix('/').and_then(|i| i.parse::<u64>().ok()) else {
                return (404, vec![], r#"{"message":"404 Not found"}"#.into());
            };
            let body = match body_of(&mut s) {
                Ok(b) => b,
                Err(e) => return e,
            };
            match s.notes.iter_mut().find(|n| n.id == id) {
                Some(n) if n.system => (403, vec![], r#"{"message":"403 Forbidden"}"#.into()),
                Some(n) => {
                    n.body = body;
                    let n = n.clone();
                    (200, vec![], note_json(&n).to_string())
                }
                None => (404, vec![], r#"{"message":"404 Note Not Found"}"#.into()),
            }
        }
        _ => violation(&mut s, "no such route in the notes API".into()),
    }
}
