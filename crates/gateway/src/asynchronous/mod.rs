//! Asynchronous calls: `/async-function/NAME` stores the call durably and answers 202; workers
//! lease stored calls, make them through the same path as synchronous ones, keep their lease
//! alive while they run, retry with back-off, dead-letter what keeps failing, and post the
//! result to the caller's `X-Callback-Url`.

mod budget;
mod callback;
pub(crate) mod enqueue;
pub(crate) mod invoker;
mod policies;
mod stats;
pub(crate) mod worker;

pub(crate) use budget::BodyBudget;
pub use invoker::{HttpInvoker, Invoker};
pub(crate) use policies::Policies;
pub use stats::{AsyncStats, serve_metrics};
pub use worker::{WorkerConfig, run_workers};
