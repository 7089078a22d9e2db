//! The queue's tests: one conformance suite run against both backends, and the durability
//! tests (SIGKILL of an enqueuing process, SIGKILL and restart of nats-server), the NATS
//! backend's handling of extra copies of a job, and its dead letters outliving their records,
//! and the limit on jobs waiting or running.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;
mod durability;
mod limits;
mod nats_copies;
mod nats_records;
mod suite;

/// Instantiates each suite test once per backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (q, _guard) = crate::common::embedded();
                    crate::suite::$name(q).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (q, _guard) = crate::common::nats().await;
                    crate::suite::$name(q).await;
                }
            )*
        }
    };
}

conformance!(
    enqueue_lease_ack,
    duplicate_id_is_one_job,
    invalid_jobs_are_refused,
    lease_expiry_redelivers,
    extend_keeps_the_lease,
    retry_later_waits_for_its_time,
    dead_letters_list_replay_delete,
    dead_letters_by_function_and_time,
    exhausted_attempts_go_to_dead_letters,
    depth_per_function,
    leases_are_shared_across_functions,
    concurrent_jobs_are_leased_exactly_once,
    replayed_job_can_fail_and_retry_again,
);
