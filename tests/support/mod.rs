//! Shared helpers for integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod net;
pub mod proxy;
pub mod standard_encounter;
pub mod ui;
