//! Counting AWS calls: an SDK interceptor on every client records each
//! attempt (a retry is a call too) by service and operation. `--stats`
//! prints the counts; tests read them in `--format json`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

/// Calls made so far, by (service, operation).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<(String, String), u64>>>);

impl CallCounter {
    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<(String, String), u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Adds `other`'s counts (another run's clients) to these.
    pub fn add(&self, other: &CallCounter) {
        for ((s, o), n) in other.snapshot() {
            if let Ok(mut m) = self.0.lock() {
                *m.entry((s, o)).or_default() += n;
            }
        }
    }

    fn count(&self, service: &str, operation: &str) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry((service.to_string(), operation.to_string())).or_default() += 1;
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "converge-call-counter"
    }

    /// Once per attempt, right before it is sent.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The service's signing name (`elasticloadbalancing`): the prefix
        // of IAM actions and of converge's error messages.
        // Two sign with another name than their IAM prefix: the Tagging
        // API (`tagging`, IAM `tag`) and CloudWatch (`monitoring`, IAM
        // `cloudwatch`).
        let service = cfg.load::<aws_types::SigningName>().map(|n| match n.as_ref() {
            "tagging" => "tag".to_string(),
            "monitoring" => "cloudwatch".to_string(),
            other => other.to_string(),
        });
        if let Some(m) = cfg.load::<Metadata>() {
            self.count(service.as_deref().unwrap_or(m.service()), m.name());
        }
        Ok(())
    }
}
