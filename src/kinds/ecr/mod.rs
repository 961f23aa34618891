//! ECR: its kinds.

pub mod repository;
