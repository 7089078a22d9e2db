//! The NATS backend keeps a job to one run when JetStream holds more than one copy of it (a
//! re-sent enqueue beyond the duplicate window, a redelivery after a lost ack), and completes
//! an enqueue cut short between its state record and its publish when the client sends it again.

use std::sync::Arc;
use std::time::Duration;

use ironfaas_queue::{Enqueued, Job, JobRecord, JobState, LeaseRequest, Outcome, Queue};

use crate::common::{NatsServer, connect_with, test_options};
use crate::suite::job;

const LEASE: Duration = Duration::from_secs(30);

/// A queue whose duplicate window is short enough to outlast in a test.
async fn short_window() -> (Arc<dyn Queue>, NatsServer) {
    let server = NatsServer::start();
    let options = ironfaas_queue::NatsOptions {
        duplicate_window: Duration::from_secs(1),
        ..test_options()
    };
    let q = connect_with(&server.url(), options).await;
    (Arc::new(q), server)
}

async fn messages_in_jobs_stream(url: &str) -> u64 {
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let mut stream = js.get_stream("IRONFAAS_JOBS").await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// Enqueues `id` twice, the second time after the duplicate window: two copies in the stream.
async fn two_copies(q: &Arc<dyn Queue>, url: &str, id: &str) {
    let before = messages_in_jobs_stream(url).await;
    assert_eq!(q.enqueue(job(id, "copies")).await.unwrap(), Enqueued::New);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        q.enqueue(job(id, "copies")).await.unwrap(),
        Enqueued::Duplicate
    );
    assert_eq!(messages_in_jobs_stream(url).await, before + 2);
}

fn req(max: usize) -> LeaseRequest {
    LeaseRequest::new(max, LEASE, Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_copy_of_a_running_job_is_dropped() {
    let (q, server) = short_window().await;
    two_copies(&q, &server.url(), "twice").await;
    let leases = q.lease(&req(10)).await.unwrap();
    assert_eq!(leases.len(), 1, "one lease for two copies of one job");
    assert_eq!(leases[0].job.attempt, 1);
    assert!(q.lease(&req(10)).await.unwrap().is_empty());
    assert_eq!(messages_in_jobs_stream(&server.url()).await, 1);
    let lease = leases.into_iter().next().unwrap();
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
    assert!(matches!(
        q.get("twice").await.unwrap().unwrap().state,
        JobState::Succeeded { attempts: 1, .. }
    ));
    assert_eq!(messages_in_jobs_stream(&server.url()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_finished_job_is_dropped() {
    let (q, server) = short_window().await;
    two_copies(&q, &server.url(), "done").await;
    let lease = q.lease(&req(1)).await.unwrap().pop().expect("a lease");
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
    assert!(q.lease(&req(10)).await.unwrap().is_empty());
    assert_eq!(messages_in_jobs_stream(&server.url()).await, 0);
    assert!(matches!(
        q.get("done").await.unwrap().unwrap().state,
        JobState::Succeeded { attempts: 1, .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enqueue_cut_short_after_its_record_is_completed_by_sending_it_again() {
    let (q, server) = short_window().await;
    // What an enqueue leaves when the gateway dies between writing the record and publishing.
    let sent = job("cut", "copies");
    let record = JobRecord {
        id: sent.id.clone(),
        function: sent.function.clone(),
        method: sent.method.clone(),
        path: sent.path.clone(),
        callback_url: sent.callback_url.clone(),
        state: JobState::Queued,
        max_attempts: sent.max_attempts,
        enqueued_at: sent.enqueued_at,
        updated_at: sent.enqueued_at,
    };
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let kv = js.get_key_value("IRONFAAS_JOB_STATE").await.unwrap();
    let value = serde_json::to_vec(&serde_json::json!({ "record": record })).unwrap();
    kv.create("cut", value.into()).await.unwrap();
    assert!(q.lease(&req(10)).await.unwrap().is_empty());

    assert_eq!(q.enqueue(sent.clone()).await.unwrap(), Enqueued::Duplicate);
    let lease = q.lease(&req(10)).await.unwrap().pop().expect("the job");
    assert_eq!(lease.job, Job { attempt: 1, ..sent });
    q.ack(lease, Outcome::Succeeded { status: 200 })
        .await
        .unwrap();
    // Sent once more once it has run: nothing new.
    assert_eq!(
        q.enqueue(job("cut", "copies")).await.unwrap(),
        Enqueued::Duplicate
    );
    assert!(q.lease(&req(10)).await.unwrap().is_empty());
}

/// What an older ironfaas left of job `id` after one failed attempt: its retry copy without the
/// record's revision (its copies carried only the attempts, the time and the last error), on
/// the function's `.retry` subject, or already moved to `.ready` when `moved`.
async fn retry_copy_from_before_record_revisions(
    q: &Arc<dyn Queue>,
    server: &NatsServer,
    id: &str,
    moved: bool,
) {
    assert_eq!(q.enqueue(job(id, "copies")).await.unwrap(), Enqueued::New);
    let lease = q.lease(&req(1)).await.unwrap().pop().expect("a lease");
    q.retry_later(lease, std::time::SystemTime::now(), "503".into())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(server.url()).await.unwrap());
    let stream = js.get_stream("IRONFAAS_JOBS").await.unwrap();
    let retry = stream
        .get_last_raw_message_by_subject("ironfaas.jobs.*.copies.retry")
        .await
        .unwrap();
    stream.purge().filter(retry.subject.as_str()).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Ironfaas-Attempts", "1");
    headers.insert("Ironfaas-Last-Error", "503");
    let subject = if moved {
        retry.subject.replace(".retry", ".ready")
    } else {
        headers.insert("Ironfaas-Not-Before", "0");
        retry.subject.to_string()
    };
    js.publish_with_headers(subject, headers, retry.payload.clone())
        .await
        .unwrap()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_copies_from_before_record_revisions_are_still_leased() {
    let (q, server) = short_window().await;
    for (id, moved) in [("waiting", false), ("moved", true)] {
        retry_copy_from_before_record_revisions(&q, &server, id, moved).await;
        let lease = q.lease(&req(10)).await.unwrap().pop().expect("the job");
        assert_eq!(lease.job.id, id);
        assert_eq!(lease.job.attempt, 2);
        q.ack(lease, Outcome::Succeeded { status: 200 })
            .await
            .unwrap();
        assert!(matches!(
            q.get(id).await.unwrap().unwrap().state,
            JobState::Succeeded { attempts: 2, .. }
        ));
    }
}
