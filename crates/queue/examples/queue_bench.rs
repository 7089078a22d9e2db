//! Queue benchmark: enqueues per second with concurrent enqueuers, and lease+ack per second,
//! for the embedded and the NATS JetStream backends; prints the median of several rounds.
//!
//! ```text
//! cargo run --release -p ironfaas-queue --example queue_bench -- [--backend embedded|nats|both]
//!     [--rounds 5] [--jobs 20000] [--concurrency 64] [--sweep 16,64,256,1024]
//!     [--nats-url nats://127.0.0.1:4222] [--dir /path/on/the/disk/to/measure]
//! ```
//! Without `--nats-url` it starts its own `nats-server -js` on a free port in a temp dir.
//! Without `--dir` the embedded queue lives in a temp dir under the current directory (so it is
//! on the same disk as the checkout, not on a tmpfs).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use ironfaas_queue::{
    EmbeddedQueue, Job, LeaseRequest, NatsOptions, NatsQueue, Outcome, Queue, QueueError,
};
use ironfaas_spec::names::FunctionRef;

struct Args {
    backend: String,
    rounds: usize,
    jobs: usize,
    concurrency: usize,
    sweep: Vec<usize>,
    nats_url: Option<String>,
    dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        backend: "both".to_string(),
        rounds: 5,
        jobs: 20_000,
        concurrency: 64,
        sweep: vec![16, 64, 256, 1024],
        nats_url: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--backend" => args.backend = value()?,
            "--rounds" => args.rounds = number(value()?)?,
            "--jobs" => args.jobs = number(value()?)?,
            "--concurrency" => args.concurrency = number(value()?)?,
            "--sweep" => {
                args.sweep = value()?
                    .split(',')
                    .map(|v| v.parse().map_err(|e| format!("--sweep: {e}")))
                    .collect::<Result<_, String>>()?
            }
            "--nats-url" => args.nats_url = Some(value()?),
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown flag {other}; see the file's doc comment")),
        }
    }
    if !["embedded", "nats", "both"].contains(&args.backend.as_str()) {
        return Err("--backend is embedded, nats or both".to_string());
    }
    Ok(args)
}

const FUNCTIONS: [&str; 4] = ["resize", "thumbnail", "transcode", "notify"];

fn job(round: usize, i: usize) -> Job {
    let mut job = Job::new(
        format!("r{round}-{i:08}"),
        FunctionRef::new(FUNCTIONS[i % FUNCTIONS.len()], ""),
        3,
    );
    job.headers = vec![
        ("Content-Type".into(), "application/json".into()),
        ("X-Call-Id".into(), job.id.clone()),
    ];
    job.body = Bytes::from(vec![b'x'; 256]);
    job
}

/// Enqueues `jobs` jobs from `concurrency` tasks; returns jobs per second.
async fn enqueue_rate(
    q: &Arc<dyn Queue>,
    round: usize,
    jobs: usize,
    concurrency: usize,
) -> Result<f64, QueueError> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let q = q.clone();
            let next = next.clone();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        return Ok::<(), QueueError>(());
                    }
                    q.enqueue(job(round, i)).await?;
                }
            })
        })
        .collect();
    for t in join_all(tasks).await {
        t.map_err(|e| QueueError::Closed {
            location: format!("enqueue task: {e}"),
        })??;
    }
    Ok(jobs as f64 / started.elapsed().as_secs_f64())
}

/// Leases and acks `jobs` jobs with 4 workers leasing 64 at a time; returns jobs per second.
async fn lease_ack_rate(q: &Arc<dyn Queue>, jobs: usize) -> Result<f64, QueueError> {
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let req =
                    LeaseRequest::new(64, Duration::from_secs(60), Duration::from_millis(200));
                while done.load(Ordering::Relaxed) < jobs {
                    let leases = q.lease(&req).await?;
                    let n = leases.len();
                    for r in join_all(
                        leases
                            .into_iter()
                            .map(|l| q.ack(l, Outcome::Succeeded { status: 200 })),
                    )
                    .await
                    {
                        r?;
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                }
                Ok::<(), QueueError>(())
            })
        })
        .collect();
    for w in join_all(workers).await {
        w.map_err(|e| QueueError::Closed {
            location: format!("worker task: {e}"),
        })??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The median of one enqueue's latency with nothing else running, in milliseconds.
async fn single_enqueue_ms(q: &Arc<dyn Queue>) -> Result<f64, QueueError> {
    let mut times = Vec::new();
    for i in 0..50 {
        let started = Instant::now();
        q.enqueue(job(9999, i)).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let leases = q
        .lease(&LeaseRequest::new(
            64,
            Duration::from_secs(60),
            Duration::from_millis(200),
        ))
        .await?;
    for l in leases {
        q.ack(l, Outcome::Succeeded { status: 200 }).await?;
    }
    Ok(median(&mut times))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn show(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn bench(name: &str, q: Arc<dyn Queue>, args: &Args) -> Result<(), QueueError> {
    println!("== {name}");
    println!(
        "single enqueue latency (1 caller, median of 50): {:.2} ms",
        single_enqueue_ms(&q).await?
    );
    let mut enq = Vec::new();
    let mut lease = Vec::new();
    for round in 0..args.rounds {
        enq.push(enqueue_rate(&q, round, args.jobs, args.concurrency).await?);
        lease.push(lease_ack_rate(&q, args.jobs).await?);
    }
    println!(
        "enqueue/s, {} jobs, {} concurrent enqueuers: median {:.0} (rounds: {})",
        args.jobs,
        args.concurrency,
        median(&mut enq.clone()),
        show(&enq)
    );
    println!(
        "lease+ack/s, 4 workers leasing 64 at a time: median {:.0} (rounds: {})",
        median(&mut lease.clone()),
        show(&lease)
    );
    for (k, &c) in args.sweep.iter().enumerate() {
        let mut rates = Vec::new();
        for r in 0..3 {
            rates.push(enqueue_rate(&q, 1000 + k * 10 + r, args.jobs, c).await?);
            lease_ack_rate(&q, args.jobs).await?;
        }
        println!(
            "enqueue/s with {c:>4} concurrent enqueuers: median {:.0} (rounds: {})",
            median(&mut rates.clone()),
            show(&rates)
        );
    }
    Ok(())
}

/// A nats-server started for the benchmark; killed on drop.
struct OwnServer {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nats() -> Result<(OwnServer, String), String> {
    let dir = tempfile::TempDir::new_in(".").map_err(|e| format!("temp dir: {e}"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("starting nats-server: {e}; run scripts/install-test-deps or pass --nats-url")
        })?;
    Ok((
        OwnServer { child, _dir: dir },
        format!("nats://127.0.0.1:{port}"),
    ))
}

async fn run(args: Args) -> Result<(), String> {
    println!(
        "queue_bench: {} jobs of 256 bytes over {} functions, {} rounds, {} cores",
        args.jobs,
        FUNCTIONS.len(),
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if args.backend != "nats" {
        let tmp;
        let dir = match &args.dir {
            Some(d) => d.clone(),
            None => {
                tmp = tempfile::TempDir::new_in(".").map_err(|e| format!("temp dir: {e}"))?;
                tmp.path().to_path_buf()
            }
        };
        let q = EmbeddedQueue::open(&dir).map_err(|e| e.to_string())?;
        bench(
            "embedded (SQLite WAL, synchronous=FULL)",
            Arc::new(q),
            &args,
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    if args.backend != "embedded" {
        let (_server, url) = match &args.nats_url {
            Some(url) => (None, url.clone()),
            None => {
                let (s, url) = start_nats()?;
                (Some(s), url)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        let q = loop {
            match NatsQueue::connect(&url, NatsOptions::default()).await {
                Ok(q) => break q,
                Err(e) if Instant::now() < deadline => {
                    drop(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        bench(&format!("NATS JetStream at {url}"), Arc::new(q), &args)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = match parse_args() {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("queue_bench: {e}");
        std::process::exit(1);
    }
}
