//! Test support for the S3 driver (shared with `crates/zot/tests` by path).

pub mod redis;
pub mod seaweed;
pub mod uploads;
