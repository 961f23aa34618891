//! SNS: its kinds.

pub mod topic;
