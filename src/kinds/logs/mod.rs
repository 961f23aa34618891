//! CloudWatch Logs: its kinds.

pub mod log_group;
