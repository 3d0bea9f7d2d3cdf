//! Harness of the events tests: an HTTP receiver the test makes fail, and
//! a real NATS server with a subscriber.
#![allow(dead_code, reason = "each test crate uses a different subset")]

pub mod nats;
pub mod receiver;
