//! EFS: its kinds.

pub mod file_system;
pub mod mount_target;
