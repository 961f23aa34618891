//! Secrets Manager: its kinds.

pub mod secret;
