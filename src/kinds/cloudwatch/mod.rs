//! CloudWatch: its kinds.

pub mod alarm;
