//! Test harness: a moto server per test (real HTTP, real AWS SDK), the real
//! `converge` binary, and independent SDK clients to check AWS.
//!
//! moto runs from `tests/harness/moto_server.py`, which logs every request
//! so tests can count converge's AWS calls without trusting converge.
#![allow(dead_code)]

pub mod gitlab_api;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const REGION: &str = "eu-west-1";

/// The stack's database password (`${env.GITLAB_DB_PASSWORD}`) in tests: a
/// value tests search every output for.
pub const DB_PASSWORD: &str = "test-only-Db-Pa55word";

/// The checkout under test: `cargo test` says where at run time; the
/// compile-time path is stale when a build cache is shared between clones.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("CONVERGE_TEST_PYTHON") {
        return p.into();
    }
    let venv = repo().join(".venv/bin/python");
    assert!(venv.exists(), "no {}: run scripts/test, which installs moto into .venv", venv.display());
    venv
}

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "converge-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// A scratch directory one level below the repository, like `stacks/`,
    /// so stack variants written there resolve `../templates/` as the real
    /// stack does.
    pub fn beside_stacks(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = repo().join(format!(".test-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes a file and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).expect("write scratch file");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One request moto received.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub mutating: bool,
    /// When moto received it (seconds since the epoch).
    #[serde(default)]
    pub t: f64,
    /// The Auto Scaling group it names, for Auto Scaling calls.
    #[serde(default)]
    pub group: Option<String>,
    /// The fault the server injected (`--faults`), if any.
    #[serde(default)]
    pub fault: Option<String>,
}

/// One method per service: a client of that SDK crate pointed at the
/// server, with test credentials.
macro_rules! clients {
    ($($name:ident: $sdk:ident),* $(,)?) => {
        $(
            pub fn $name(&self) -> $sdk::Client {
                $sdk::Client::from_conf(
                    $sdk::Config::builder()
                        .behavior_version($sdk::config::BehaviorVersion::latest())
                        .region($sdk::config::Region::new(REGION))
                        .endpoint_url(&self.endpoint)
                        .credentials_provider($sdk::config::Credentials::new("testing", "testing", None, None, "test"))
                        .build(),
                )
            }
        )*
    };
}

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub dir: Scratch,
    /// A certificate in moto's ACM, for the HTTPS listener.
    pub certificate_arn: String,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Moto {
        let dir = Scratch::new("moto");
        let port_file = dir.path("port");
        let log = std::fs::File::create(dir.path("moto.out")).expect("moto log");
        let child = Command::new(python())
            .arg(repo().join("tests/harness/moto_server.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(dir.path("requests.jsonl"))
            .arg("--watch-stdin")
            .arg("--acm-certificate-file")
            .arg(dir.path("certificate-arn"))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start moto server");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "moto did not start: {}",
                std::fs::read_to_string(dir.path("moto.out")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let certificate_arn =
            std::fs::read_to_string(dir.path("certificate-arn")).expect("moto made an ACM certificate");
        Moto { child, endpoint: format!("http://127.0.0.1:{port}"), dir, certificate_arn }
    }

    /// Every request so far.
    pub fn calls(&self) -> Vec<Call> {
        let text = std::fs::read_to_string(self.dir.path("requests.jsonl")).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("request log line")).collect()
    }

    pub fn mutating_since(&self, mark: usize) -> Vec<Call> {
        self.calls().into_iter().skip(mark).filter(|c| c.mutating).collect()
    }

    /// The `converge` binary, pointed at this server.
    pub fn converge(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_converge"));
        c.current_dir(repo())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_SESSION_TOKEN", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            // Tests run in converge's own GitLab pipeline too: what
            // converge says in a pipeline is tested where one is made.
            .env_remove("GITLAB_CI")
            .env("NO_COLOR", "1")
            .env("GITLAB_DB_PASSWORD", DB_PASSWORD)
            .env("CONVERGE_VAR_certificate_arn", &self.certificate_arn)
            // The shipped stacks watch production's alarms for 10 minutes
            // after each apply; a test that is about that window sets its
            // own (--verify-window).
            .env("CONVERGE_VAR_verify_window", "1s")
            // Locks of this server's stacks, apart from other tests'.
            .env("CONVERGE_STATE_DIR", self.dir.path("state"))
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.converge().args(args).output().expect("run converge"))
    }

    // Independent SDK clients for checks.
    clients! {
        ec2: aws_sdk_ec2,
        rds: aws_sdk_rds,
        elasticache: aws_sdk_elasticache,
        efs: aws_sdk_efs,
        elbv2: aws_sdk_elasticloadbalancingv2,
        autoscaling: aws_sdk_autoscaling,
        iam: aws_sdk_iam,
        secretsmanager: aws_sdk_secretsmanager,
        ecs: aws_sdk_ecs,
        ecr: aws_sdk_ecr,
        logs: aws_sdk_cloudwatchlogs,
        ssm: aws_sdk_ssm,
        acm: aws_sdk_acm,
        route53: aws_sdk_route53,
        backup: aws_sdk_backup,
        cloudwatch: aws_sdk_cloudwatch,
        sns: aws_sdk_sns,
        tagging: aws_sdk_resourcegroupstagging,
    }

    /// How the one-off tasks (RunTask) of a task definition family end
    /// from now on: their container exits `code` (`None`: 0, as unset),
    /// with `reason` (the harness's POST /moto-api/converge/task-exit).
    pub fn set_task_exit(&self, family: &str, code: Option<i32>, reason: &str) {
        let body = serde_json::json!({"family": family, "exit_code": code, "reason": reason}).to_string();
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to moto");
        use std::io::{Read, Write};
        write!(
            stream,
            "POST /moto-api/converge/task-exit HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("reply");
        assert!(reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200"), "{reply}");
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new(REGION))
                .endpoint_url(&self.endpoint)
                .force_path_style(true)
                .credentials_provider(aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"))
                .build(),
        )
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished converge run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Reads lines of a child's stdout until `pred` has matched `n` lines.
pub fn wait_for_lines(child: &mut Child, n: usize, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let out = child.stdout.take().expect("piped stdout");
    let mut seen = Vec::new();
    let mut hits = 0;
    for line in BufReader::new(out).lines() {
        let line = line.expect("stdout line");
        if pred(&line) {
            hits += 1;
        }
        seen.push(line);
        if hits >= n {
            break;
        }
    }
    seen
}

/// A copy of `stacks/gitlab-ha.yaml` with `edits` applied, in `dir`.
pub fn stack_variant(dir: &Scratch, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let mut s = std::fs::read_to_string(repo().join("stacks/gitlab-ha.yaml")).expect("stack");
    for (from, to) in edits {
        assert!(s.contains(from), "edit target not in stack: {from}");
        s = s.replacen(from, to, 1);
    }
    dir.write(name, &s)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A copy of the repository's `stacks/`, `templates/` and `cloud-init/` in
/// `dir`, so a test may edit a template; returns the stack's path.
pub fn stack_tree(dir: &Scratch) -> PathBuf {
    for sub in ["stacks", "templates", "cloud-init"] {
        let to = dir.path(sub);
        std::fs::create_dir_all(&to).expect("mkdir");
        for e in std::fs::read_dir(repo().join(sub)).expect("read repo dir").flatten() {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
            }
        }
    }
    dir.path("stacks/gitlab-ha.yaml")
}

/// Validates `json` (a file) against `schema` (a file) with
/// check-jsonschema from the test venv.
#[track_caller]
pub fn check_json_schema(schema: &Path, json: &Path) {
    let checker = repo().join(".venv/bin/check-jsonschema");
    assert!(checker.exists(), "no {}: run scripts/test", checker.display());
    let r = Run::from(
        Command::new(&checker).arg("--schemafile").arg(schema).arg(json).output().expect("run check-jsonschema"),
    );
    assert_eq!(r.code, 0, "{} does not match {}:\n{}{}", json.display(), schema.display(), r.stdout, r.stderr);
}

impl Moto {
    /// Runs converge on a pseudo-terminal (Python's `pty`, from the test
    /// venv): what it prints there, escape codes and all.
    pub fn run_on_a_terminal(&self, args: &[&str]) -> Run {
        let converge = self.converge();
        let mut c = Command::new(python());
        c.arg("-c")
            .arg("import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))")
            .arg(env!("CARGO_BIN_EXE_converge"))
            .args(args)
            .current_dir(repo())
            .stdin(Stdio::null());
        for (k, v) in converge.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        Run::from(c.output().expect("run converge on a pty"))
    }
}

/// A scratch GitLab project for gitlab-ci-local: a copy of the stacks,
/// templates and cloud-init in a git repository whose remote is
/// `gitlab.example.com/acme/infra`, committed once; and a folder on
/// `PATH` where `converge` is this build's binary, as a job image has it.
pub struct GitLabProject {
    pub dir: Scratch,
    bin: Scratch,
    /// gitlab-ci-local, as scripts/test installs it.
    gcl: PathBuf,
}

impl GitLabProject {
    pub fn new(tag: &str) -> GitLabProject {
        let gcl = repo().join(".tools/gitlab-ci-local/node_modules/.bin/gitlab-ci-local");
        assert!(gcl.exists(), "no {}: run scripts/test, which installs it", gcl.display());
        let dir = Scratch::new(tag);
        stack_tree(&dir);
        let bin = Scratch::new(&format!("{tag}-bin"));
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_converge"), bin.path("converge")).expect("link converge");
        let project = GitLabProject { dir, bin, gcl };
        project.git(&["init", "-q", "-b", "main"]);
        project.git(&["remote", "add", "origin", "https://gitlab.example.com/acme/infra.git"]);
        project.git(&["add", "-A"]);
        project.git(&["commit", "-qm", "stacks"]);
        project
    }

    /// Runs git in the project; its output, trimmed.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.email=ci@example.com", "-c", "user.name=CI"])
            .args(args)
            .current_dir(&self.dir.0)
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// gitlab-ci-local in the project, shell executor, `converge` on PATH
    /// (Node.js 20 given the Set methods it needs).
    pub fn gitlab_ci_local(&self) -> Command {
        let mut c = Command::new(&self.gcl);
        let path = format!("{}:{}", self.bin.0.display(), std::env::var("PATH").unwrap_or_default());
        c.current_dir(&self.dir.0)
            .env("PATH", path)
            .env("NODE_OPTIONS", format!("--require {}", repo().join("tests/harness/set-methods.cjs").display()))
            .arg("--force-shell-executor");
        c
    }
}
