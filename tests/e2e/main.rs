//! End-to-end tests: the real `ironfaas` binary, real processes, real HTTP.

#![allow(clippy::unwrap_used)]

mod asynchronous;
mod cli;
mod docs;
mod doctor;
mod examples;
mod harness;
mod lifecycle;
mod limits;
mod observability;
mod routes;
mod scaling;
mod security;
mod stack_errors;
mod store;
mod systemd_unit;
mod template_suites;
mod templates;
mod ui;
mod up;
mod updates;
