//! AWS access: one `SdkConfig`, one client per service, retries, and the
//! mapping of SDK errors to [`AwsError`].

use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_types::region::Region;

pub mod autoscaling;
pub mod ec2;
pub mod elasticache;
pub mod elbv2;
pub mod iam;
pub mod rds;
pub mod shared;

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
    pub s3: aws_sdk_s3::Client,
    pub rds: aws_sdk_rds::Client,
    pub elasticache: aws_sdk_elasticache::Client,
    pub efs: aws_sdk_efs::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub iam: aws_sdk_iam::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    pub region: String,
}

/// Attempts for read and idempotent calls: throttling and 5xx are retried
/// with exponential backoff and client-side rate limiting (adaptive mode).
const MAX_ATTEMPTS: u32 = 8;

impl Aws {
    /// Loads credentials through the standard chain (environment, profiles,
    /// SSO, web identity, instance/container roles).
    pub async fn connect(opts: &AwsOptions) -> Aws {
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(opts.region.clone())).retry_config(
                RetryConfig::adaptive()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(20)),
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
        let s3 = aws_sdk_s3::config::Builder::from(&conf).force_path_style(path_style).build();
        Aws {
            ec2: aws_sdk_ec2::Client::new(&conf),
            s3: aws_sdk_s3::Client::from_conf(s3),
            rds: aws_sdk_rds::Client::new(&conf),
            elasticache: aws_sdk_elasticache::Client::new(&conf),
            efs: aws_sdk_efs::Client::new(&conf),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::new(&conf),
            autoscaling: aws_sdk_autoscaling::Client::new(&conf),
            iam: aws_sdk_iam::Client::new(&conf),
            secretsmanager: aws_sdk_secretsmanager::Client::new(&conf),
            region: opts.region.clone(),
        }
    }
}

/// A failed AWS call: which operation, the service's error code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {code}: {message}")]
pub struct AwsError {
    /// `service:Operation`, e.g. `ec2:CreateVpc`.
    pub operation: &'static str,
    pub code: String,
    pub message: String,
    /// The request may or may not have been carried out (timeout, lost
    /// connection, 5xx): safe only to re-read, not to blindly repeat.
    pub transient: bool,
}

impl AwsError {
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> AwsError
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(e) => {
                let code = e.err().code().unwrap_or_default();
                code.contains("Throttl")
                    || code == "RequestLimitExceeded"
                    || code == "InternalError"
                    || code == "ServiceUnavailable"
            }
            _ => false,
        };
        let code = err.code().unwrap_or("Unknown").to_string();
        let message = match err.message() {
            Some(m) => m.to_string(),
            None => DisplayErrorContext(&err).to_string(),
        };
        AwsError { operation, code, message, transient }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }

    pub fn other(operation: &'static str, message: impl Into<String>) -> AwsError {
        AwsError { operation, code: "ConvergeError".into(), message: message.into(), transient: false }
    }
}

/// A waiter's failure as an [`AwsError`].
pub fn waiter_error(operation: &'static str, e: impl StdError) -> AwsError {
    AwsError::other(operation, DisplayErrorContext(e).to_string())
}

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
