//! S3: its kinds.

pub mod bucket;
pub mod object;
