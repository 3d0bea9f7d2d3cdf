//! The vulnerability database and matching.
//!
//! - [`version`]: each ecosystem's version order.
pub mod version;
