//! End-to-end tests: the real `ironfaas` binary, real processes, real HTTP.

mod cli;
mod harness;
mod lifecycle;
mod stack_errors;
mod templates;
mod up;
