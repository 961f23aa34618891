//! AWS access: one `SdkConfig`, one client per service, retries, and the
//! mapping of SDK errors to [`AwsError`].

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_types::region::Region;

pub mod cloudwatch;
pub mod owned;
pub mod shared;
pub mod stats;

/// How to reach AWS, from the command line and the stack.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    pub region: String,
    /// `--endpoint-url` / `AWS_ENDPOINT_URL`: an emulator or a VPC endpoint.
    pub endpoint_url: Option<String>,
    /// `--profile` / `AWS_PROFILE`.
    pub profile: Option<String>,
}

/// The AWS clients converge uses, built from one shared configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub s3: aws_sdk_s3::Client,
    pub rds: aws_sdk_rds::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub efs: aws_sdk_efs::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub iam: aws_sdk_iam::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub backup: aws_sdk_backup::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sns: aws_sdk_sns::Client,
    /// Lookups only: SSM parameters, ACM certificates, Route 53 zones.
    pub ssm: aws_sdk_ssm::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    /// The Resource Groups Tagging API: the ownership index ([`owned`]).
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub region: String,
    /// Every call the clients made (`--stats`).
    pub calls: stats::CallCounter,
}

/// Attempts for read and idempotent calls: throttling and 5xx are retried
/// with exponential backoff and full jitter (the SDK's standard mode). Not
/// adaptive mode: its client-side rate limiter, once throttled, holds every
/// later request of the client back for seconds, which stalls a whole
/// apply for one throttled call.
const MAX_ATTEMPTS: u32 = 8;
/// Bound on opening a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one attempt of one call, response included (waits for an
/// object to settle are polls of many short calls, bounded apart).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

impl Aws {
    /// Loads credentials through the standard chain (environment, profiles,
    /// SSO, web identity, instance/container roles).
    pub async fn connect(opts: &AwsOptions) -> Aws {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(opts.region.clone()))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(
                // Every call is bounded: a connection that hangs is a lost
                // response, retried (or, for a create, looked up) like any.
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(ATTEMPT_TIMEOUT * MAX_ATTEMPTS)
                    .build(),
            );
        if let Some(profile) = &opts.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let conf = loader.load().await;
        // Emulators and custom endpoints serve S3 on one host: path-style.
        let path_style = opts.endpoint_url.is_some() || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let calls = stats::CallCounter::default();
        // One client per service, each counting its calls.
        macro_rules! client {
            ($sdk:ident $(, $extra:ident($arg:expr))*) => {
                $sdk::Client::from_conf(
                    $sdk::config::Builder::from(&conf).interceptor(calls.clone())$(.$extra($arg))*.build(),
                )
            };
        }
        Aws {
            ec2: client!(aws_sdk_ec2),
            ecs: client!(aws_sdk_ecs),
            ecr: client!(aws_sdk_ecr),
            s3: client!(aws_sdk_s3, force_path_style(path_style)),
            rds: client!(aws_sdk_rds),
            elasticache: client!(aws_sdk_elasticache),
            efs: client!(aws_sdk_efs),
            elbv2: client!(aws_sdk_elasticloadbalancingv2),
            autoscaling: client!(aws_sdk_autoscaling),
            iam: client!(aws_sdk_iam),
            secretsmanager: client!(aws_sdk_secretsmanager),
            logs: client!(aws_sdk_cloudwatchlogs),
            backup: client!(aws_sdk_backup),
            cloudwatch: client!(aws_sdk_cloudwatch),
            sns: client!(aws_sdk_sns),
            ssm: client!(aws_sdk_ssm),
            acm: client!(aws_sdk_acm),
            route53: client!(aws_sdk_route53),
            tagging: client!(aws_sdk_resourcegroupstagging),
            calls: calls.clone(),
            region: opts.region.clone(),
        }
    }
}

/// A failed AWS call: which operation, the service's error code and message,
/// on one line: `ec2:CreateVpc: VpcLimitExceeded: The maximum number …`,
/// or, when the service sent no error code it could parse, the HTTP status:
/// `HTTP 500 from elasticache:ModifyCacheSubnetGroup, body not XML`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.line())]
pub struct AwsError {
    /// `service:Operation`, e.g. `ec2:CreateVpc`.
    pub operation: &'static str,
    /// The service's error code; empty when it sent none (then `message`
    /// names the HTTP status).
    pub code: String,
    pub message: String,
    /// The request may or may not have been carried out (timeout, lost
    /// connection, 5xx): safe only to re-read, not to blindly repeat.
    pub transient: bool,
}

/// Error codes meaning "try again later": throttling and the services'
/// own internal failures.
const RETRYABLE_CODES: [&str; 7] = [
    "RequestLimitExceeded",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
];

/// An SDK error of the call `operation` as an [`AwsError`], for
/// `.map_err(sdk("ec2:CreateVpc"))`.
pub fn sdk<E>(operation: &'static str) -> impl FnOnce(SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    move |err| AwsError::from_sdk(operation, err)
}

impl AwsError {
    fn line(&self) -> String {
        let message = self.message.replace(['\n', '\r'], " ");
        if self.code.is_empty() { message } else { format!("{}: {}: {message}", self.operation, self.code) }
    }

    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().filter(|c| !c.is_empty()).map(str::to_string);
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(_) => {
                let c = code.as_deref().unwrap_or_default();
                c.contains("Throttl") || RETRYABLE_CODES.contains(&c) || status.is_some_and(|s| s >= 500)
            }
            _ => false,
        };
        if let Some(code) = code {
            let message = match err.message() {
                Some(m) => m.to_string(),
                None => status.map_or_else(|| "no message".to_string(), |s| format!("HTTP {s}, no message")),
            };
            return AwsError { operation, code, message, transient };
        }
        let message = match (&err, status) {
            (SdkError::TimeoutError(_), _) => format!("{operation}: no response in time (the request may have run)"),
            (SdkError::DispatchFailure(_), _) => {
                format!("{operation}: could not send the request: {}", source_chain(&err))
            }
            (SdkError::ConstructionFailure(_), _) => {
                format!("{operation}: could not build the request: {}", source_chain(&err))
            }
            (_, Some(s)) => {
                let body = err.raw_response().and_then(|r| r.body().bytes()).unwrap_or_default();
                tracing::debug!(operation, status = s, body = %String::from_utf8_lossy(&body[..body.len().min(512)]), "unparsed error response");
                format!("HTTP {s} from {operation}, {}", describe_body(body))
            }
            (_, None) => format!("{operation}: {}", source_chain(&err)),
        };
        AwsError { operation, code: String::new(), message, transient }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }

    pub fn other(operation: &'static str, message: impl Into<String>) -> AwsError {
        AwsError { operation, code: "ConvergeError".into(), message: message.into(), transient: false }
    }
}

/// An error's causes on one line, innermost last, without the SDK's debug
/// dumps of requests and responses.
fn source_chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        next = s.source();
    }
    parts.join(": ")
}

/// What an error response's body was, when the SDK could not read an error
/// code from it.
fn describe_body(body: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(body);
    let start = text.trim_start().to_ascii_lowercase();
    match start.chars().next() {
        None => "empty body",
        Some('<') if start.starts_with("<html") || start.starts_with("<!doctype") => "body HTML, not XML",
        Some('<') => "body XML without an error code",
        Some('{') => "body JSON without an error code",
        Some(_) => "body not XML",
    }
}

/// A waiter's failure as an [`AwsError`], for
/// `.wait(timeout).await.map_err(waited("ec2:DescribeVpcs (wait available)"))`.
pub fn waited<E: StdError + 'static>(operation: &'static str) -> impl FnOnce(E) -> AwsError {
    move |e| AwsError::other(operation, source_chain(&e))
}

/// Every item of every page of a paginated request, or its first error as
/// the [`AwsError`] of `action`:
/// `all_items!(aws.ec2.describe_vpcs().set_filters(f), "ec2:DescribeVpcs")?`.
/// A macro because each operation's paginator is a type of its own, with
/// no trait in common to be generic over.
macro_rules! all_items {
    ($request:expr, $action:expr) => {
        $request.into_paginator().items().send().try_collect().await.map_err($crate::aws::sdk($action))
    };
}
pub(crate) use all_items;

/// The naming rule RDS and ElastiCache share for identifiers: 1 to `max`
/// lower-case letters, digits and hyphens, starting with a letter, with no
/// `--` and no trailing `-`. `what` names the identifier in the message.
pub fn check_lowercase_id(name: &str, max: usize, what: &str) -> Result<(), String> {
    let ok = (1..=max).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.contains("--")
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} is 1-{max} lower-case letters, digits and hyphens, starts with a letter, and has no `--` or trailing `-`"
        ))
    }
}

/// Maps a "not found" error code to `None`.
pub fn not_found<T>(res: Result<T, AwsError>, codes: &[&str]) -> Result<Option<T>, AwsError> {
    match res {
        Ok(v) => Ok(Some(v)),
        Err(e) if codes.contains(&e.code.as_str()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Runs a create call that the API does not make idempotent.
///
/// # Guarantees
/// Never creates two objects for one call of this function: `create` must be
/// sent with SDK retries disabled, and when an attempt fails in a way that
/// leaves its outcome unknown (timeout, lost connection, 5xx), `find` looks
/// for the object by the tags the create call sets before anything is sent
/// again. An object found is adopted.
///
/// # Errors
/// The first non-transient error, or the last transient one after
/// `attempts` tries.
pub async fn create_or_adopt<T, C, CF, F, FF>(attempts: u32, mut create: C, mut find: F) -> Result<T, AwsError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, AwsError>>,
    F: FnMut() -> FF,
    FF: Future<Output = Result<Option<T>, AwsError>>,
{
    let mut delay = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match create().await {
            Ok(v) => return Ok(v),
            Err(e) if e.transient && attempt < attempts => {
                tracing::warn!(error = %e, attempt, "create outcome unknown; looking for the object before retrying");
                tokio::time::sleep(delay).await;
                if let Some(found) = find().await? {
                    return Ok(found);
                }
                delay = (delay * 2).min(Duration::from_secs(10));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Retries a delete that AWS refuses with `DependencyViolation` for a while:
/// right after a dependent is deleted, EC2 may still see it (eventual
/// consistency). A dependency that does not go away is reported.
pub async fn retry_dependency_violation<T, C, CF>(call: C) -> Result<T, AwsError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, AwsError>>,
{
    retry_while_in_use(&["DependencyViolation"], call).await
}

/// Retries, for up to 90 seconds, a delete that AWS refuses with one of
/// `codes`: the service's way of saying a user of the object still holds it
/// (EC2's `DependencyViolation`, `VolumeInUse`, `InvalidIPAddress.InUse`;
/// ELBv2's `ResourceInUse`; EFS's `FileSystemInUse`). Users deleted in the
/// same run let go a little later than their delete returns. The last
/// error, with AWS's own code, is reported.
pub async fn retry_while_in_use<T, C, CF>(codes: &[&str], mut call: C) -> Result<T, AwsError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, AwsError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut delay = Duration::from_secs(1);
    loop {
        match call().await {
            Err(e) if codes.contains(&e.code.as_str()) && tokio::time::Instant::now() + delay < deadline => {
                tracing::info!(error = %e, "still in use; retrying delete");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(15));
            }
            other => return other,
        }
    }
}

/// One look at an object being waited for.
pub enum Polled<T> {
    /// It is there: the wait is over.
    Ready(T),
    /// Not yet; its status as AWS gives it (`modifying`).
    Waiting(String),
}

/// Polls `check` until it is ready, at most `timeout`, backing off from 1 s
/// to 15 s. While it waits, the operation's progress line says `waiting for
/// {what} ({status})` (see [`crate::progress::note`]). `check` returns an
/// error for statuses that never end well (`failed`).
///
/// # Errors
/// `check`'s error, or the status still not ready at `timeout`.
pub async fn poll_until<T, C, CF>(
    operation: &'static str,
    what: &str,
    timeout: Duration,
    mut check: C,
) -> Result<T, AwsError>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<Polled<T>, AwsError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = Duration::from_secs(1);
    loop {
        match check().await {
            Ok(Polled::Ready(v)) => {
                crate::progress::note(None);
                return Ok(v);
            }
            Ok(Polled::Waiting(status)) => {
                crate::progress::note(Some(format!("waiting for {what} ({status})")));
                if tokio::time::Instant::now() + delay > deadline {
                    crate::progress::note(None);
                    return Err(AwsError::other(
                        operation,
                        format!("still {status}, not {what}, after {}s (wait_timeout)", timeout.as_secs()),
                    ));
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(15));
            }
            Err(e) => {
                crate::progress::note(None);
                return Err(e);
            }
        }
    }
}

/// A fresh idempotency token (`ClientToken`, `ClientRequestToken`) for one
/// create call: the SDK resends the same request, token included, on
/// throttling or a lost response, and AWS then returns the object the first
/// attempt made instead of making a second one. Fresh per call, not derived
/// from the resource: a token AWS still remembers from an object deleted
/// since would hand that dead object back.
pub fn client_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Attempts of [`create_or_adopt`].
pub const CREATE_ATTEMPTS: u32 = 5;

/// Upper bound on waiting for a resource to become available.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> AwsError {
        AwsError { operation: "ec2:CreateVpc", code: "RequestTimeout".into(), message: "lost".into(), transient: true }
    }

    #[tokio::test]
    async fn lost_response_adopts_instead_of_creating_twice() {
        let creates = AtomicU32::new(0);
        let got = create_or_adopt(
            5,
            || async {
                creates.fetch_add(1, Ordering::SeqCst);
                Err::<&str, _>(transient())
            },
            || async { Ok(Some("vpc-found")) },
        )
        .await
        .unwrap();
        assert_eq!(got, "vpc-found");
        assert_eq!(creates.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn retries_when_nothing_was_created_and_stops_on_hard_errors() {
        let creates = AtomicU32::new(0);
        let got = create_or_adopt(
            5,
            || async { if creates.fetch_add(1, Ordering::SeqCst) == 0 { Err(transient()) } else { Ok("vpc-new") } },
            || async { Ok(None) },
        )
        .await
        .unwrap();
        assert_eq!((got, creates.load(Ordering::SeqCst)), ("vpc-new", 2));

        let hard = AwsError { transient: false, ..transient() };
        let err = create_or_adopt(5, || async { Err::<(), _>(hard.clone()) }, || async { Ok(None) }).await.unwrap_err();
        assert_eq!(err.code, "RequestTimeout");
    }
}

#[cfg(test)]
mod error_tests {
    use aws_sdk_ec2::config::http::HttpResponse;
    use aws_sdk_ec2::error::{ErrorMetadata, SdkError};
    use aws_sdk_ec2::operation::create_vpc::CreateVpcError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::AwsError;

    fn error(status: u16, meta: ErrorMetadata, body: &str) -> AwsError {
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_string()));
        AwsError::from_sdk("ec2:CreateVpc", SdkError::service_error(CreateVpcError::generic(meta), raw))
    }

    #[test]
    fn errors_are_one_readable_line() {
        let e = error(400, ErrorMetadata::builder().code("VpcLimitExceeded").message("too many\nVPCs").build(), "");
        assert_eq!(e.to_string(), "ec2:CreateVpc: VpcLimitExceeded: too many VPCs");
        assert!(!e.transient);
        // A 5xx the service names, and one it does not: both may have run.
        let e = error(500, ErrorMetadata::builder().code("InternalFailure").build(), "");
        assert_eq!(e.to_string(), "ec2:CreateVpc: InternalFailure: HTTP 500, no message");
        assert!(e.transient);
        let e = error(500, ErrorMetadata::builder().build(), "upstream connect error");
        assert_eq!(e.to_string(), "HTTP 500 from ec2:CreateVpc, body not XML");
        assert!(e.transient);
        let e = error(502, ErrorMetadata::builder().build(), "<html><body>Bad Gateway</body></html>");
        assert_eq!(e.to_string(), "HTTP 502 from ec2:CreateVpc, body HTML, not XML");
        let e = error(403, ErrorMetadata::builder().build(), "");
        assert_eq!(e.to_string(), "HTTP 403 from ec2:CreateVpc, empty body");
        assert!(!e.transient);
        assert!(e.to_string().len() < 80 && !e.to_string().contains("Unhandled"));
    }
}
