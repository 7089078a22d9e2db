//! End-to-end tests: the real `ironfaas` binary, real processes, real HTTP.

#![allow(clippy::unwrap_used)]

mod cli;
mod harness;
mod lifecycle;
mod stack_errors;
mod templates;
mod up;
