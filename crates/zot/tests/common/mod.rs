//! Shared harness for the end-to-end tests: every `tests/*.rs` file is its own
//! crate and includes this module with `mod common;`.
//!
//! - [`registry`]: start the real `zot` binary on an OS-chosen port in a
//!   private temporary directory, and stop it (gracefully or with SIGKILL).
//! - [`http`]: a small plain-HTTP client for protocol-level assertions, plus a
//!   raw-socket request for paths that HTTP libraries would normalise.
//! - [`nginx`]: nginx as a round robin load balancer in front of instances.
//! - [`fixtures`]: OCI image layouts built by hand from bytes the test
//!   creates (no network), with real sha256 digests.
//! - [`tools`]: running external clients (skopeo, podman, umoci) and failing
//!   loudly, with their output, when they fail or are missing.
//!
//! Each test binary uses only part of this module, so dead code is expected
//! here and only here.
#![allow(
    dead_code,
    unused_imports,
    reason = "each test crate uses a different subset of the harness"
)]

pub mod docker;
pub mod fixtures;
pub mod http;
pub mod nginx;
pub mod podman;
pub mod registry;
pub mod tools;

pub use fixtures::{Blob, Image, ImageIndex, OciLayout, sha256_digest};
pub use http::{Client, Response};
pub use registry::{Config, Registry};
pub use tools::{run, run_fails, run_stdout, skopeo, tool};
