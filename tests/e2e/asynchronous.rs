//! Asynchronous calls, each scenario against both queues: the embedded one and NATS JetStream
//! (a real nats-server started by the test).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{
    ADMIN_PASSWORD, CallbackServer, Nats, Platform, Project, eventually, free_port, http, ironfaas,
    metric, ok, run_cli, scrape,
};

const STACK: &str = r#"provider:
  name: openfaas
functions:
  count:
    lang: python3-http
    handler: ./fns
    image: async-fns:1
    environment:
      ROLE: count
  flaky:
    lang: python3-http
    handler: ./fns
    image: async-fns:1
    environment:
      ROLE: flaky
    annotations:
      com.openfaas.retry.min_wait: 50ms
      com.openfaas.retry.max_wait: 200ms
  broken:
    lang: python3-http
    handler: ./fns
    image: async-fns:1
    environment:
      ROLE: broken
    annotations:
      com.openfaas.retry.attempts: "3"
      com.openfaas.retry.min_wait: 50ms
      com.openfaas.retry.max_wait: 100ms
  slow:
    lang: python3-http
    handler: ./fns
    image: async-fns:1
    environment:
      ROLE: slow
      exec_timeout: 20s
"#;

const HANDLER: &str = r#"import os, time
STATE = os.environ["IRONFAAS_WORK_DIR"]

def handle(event, context):
    role = os.environ["ROLE"]
    call = event.headers.get("x-call-id", "none")
    mark = os.path.join(STATE, role + "-" + call)
    with open(mark, "a") as f:
        f.write("x")
    runs = os.path.getsize(mark)
    if role == "flaky" and runs <= 2:
        return {"statusCode": 503, "body": "not yet"}
    if role == "broken" and not os.path.exists(os.path.join(STATE, "fixed")):
        return {"statusCode": 500, "body": "broken"}
    if role == "slow":
        time.sleep(float(event.query.get("s", "3")))
    return {"statusCode": 200, "headers": {"X-Answer": role}, "body": role + " done " + call}
"#;

/// A platform with the test functions on the given queue.
struct Setup {
    platform: Platform,
    nats: Option<Nats>,
    _data: tempfile::TempDir,
    project: Project,
}

impl Setup {
    /// Where function `name` keeps its files (its IRONFAAS_WORK_DIR) on this machine.
    fn work(&self, name: &str) -> std::path::PathBuf {
        self.platform.data.join("work/openfaas-fn").join(name)
    }
}

fn setup(nats: bool, extra: &[&str]) -> Setup {
    let nats = nats.then(Nats::start);
    let data = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = extra.to_vec();
    if let Some(n) = &nats {
        args.extend(["--queue", n.url.as_str()]);
    }
    let platform = Platform::start_in(data.path().to_path_buf(), None, &args);
    let project = Project::new();
    project
        .write("stack.yml", STACK)
        .write("fns/handler.py", HANDLER);
    ok(&platform.cli(project.path(), &["up"]));
    Setup {
        platform,
        nats,
        _data: data,
        project,
    }
}

fn enqueue(
    url: &str,
    function: &str,
    callback: &str,
    call_id: Option<&str>,
) -> reqwest::blocking::Response {
    let mut req = http()
        .post(format!("{url}/async-function/{function}"))
        .header("X-Callback-Url", callback)
        .body("job");
    if let Some(id) = call_id {
        req = req.header("X-Call-Id", id);
    }
    req.send().unwrap()
}

fn job_state(url: &str, id: &str) -> serde_json::Value {
    http()
        .get(format!("{url}/system/async/{id}"))
        .send()
        .unwrap()
        .json()
        .unwrap_or_default()
}

fn thousand_jobs_each_call_back_exactly_once(nats: bool) {
    let s = setup(nats, &[]);
    let callbacks = CallbackServer::start();
    let url = s.platform.url.clone();
    let senders: Vec<_> = (0..8)
        .map(|t| {
            let (url, cb) = (url.clone(), callbacks.url.clone());
            std::thread::spawn(move || {
                (0..125)
                    .map(|i| {
                        let r = enqueue(&url, "count", &cb, None);
                        assert_eq!(r.status(), 202, "call {t}/{i}");
                        r.headers()["x-call-id"].to_str().unwrap().to_string()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: BTreeSet<String> = senders
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000);
    eventually("1000 callbacks", Duration::from_secs(120), || {
        callbacks.received().calls.len() >= 1000
    });
    std::thread::sleep(Duration::from_millis(500));
    let received = callbacks.received();
    assert_eq!(received.calls.keys().cloned().collect::<BTreeSet<_>>(), ids);
    for (id, calls) in &received.calls {
        assert_eq!(
            calls.len(),
            1,
            "call {id} called back {} times",
            calls.len()
        );
        let (headers, body) = &calls[0];
        assert_eq!(headers["x-function-status"], "200");
        assert_eq!(headers["x-function-name"], "count.openfaas-fn");
        assert_eq!(
            headers["x-answer"], "count",
            "the function's own headers are passed on"
        );
        assert!(headers.contains_key("x-duration-seconds") && headers.contains_key("x-retry-max"));
        assert_eq!(body, &format!("count done {id}"));
    }
    let some = ids.iter().next().unwrap();
    assert_eq!(job_state(&url, some)["state"], "succeeded");
}

fn failing_calls_are_retried_then_dead_lettered_and_replayed(nats: bool) {
    let s = setup(nats, &[]);
    let callbacks = CallbackServer::start();
    let url = &s.platform.url;
    let flaky = enqueue(url, "flaky", &callbacks.url, Some("flaky-1"));
    assert_eq!(flaky.status(), 202);
    let waited = ok(&s
        .platform
        .cli(s.project.path(), &["queue", "status", "flaky-1", "--wait"]));
    assert!(
        waited
            .lines()
            .any(|l| l.starts_with("state") && l.ends_with("succeeded")),
        "--wait returns once the call succeeded, after its retries: {waited}"
    );
    eventually("the flaky call to succeed", Duration::from_secs(30), || {
        callbacks.received().calls.contains_key("flaky-1")
    });
    let (headers, body) = callbacks.received().calls["flaky-1"][0].clone();
    assert_eq!(
        (headers["x-function-status"].as_str(), body.as_str()),
        ("200", "flaky done flaky-1")
    );
    assert_eq!(headers["x-retry"], "2", "two retries before it worked");
    let state = job_state(url, "flaky-1");
    assert_eq!(state["state"], "succeeded", "{state}");

    // The last one's id is the bulk replay's path segment: it must still be deletable.
    let broken = ["broken-1", "broken-2", "broken-3", "replay"];
    for id in broken {
        enqueue(url, "broken", &callbacks.url, Some(id));
    }
    eventually(
        "the broken calls in the dead letters",
        Duration::from_secs(30),
        || {
            broken
                .iter()
                .all(|id| job_state(url, id)["state"] == "deadLettered")
        },
    );
    let dlq = ok(&s.platform.cli(s.project.path(), &["queue", "dlq"]));
    assert!(
        dlq.contains("broken-1") && dlq.contains("broken.openfaas-fn"),
        "{dlq}"
    );
    let waited = s
        .platform
        .cli(s.project.path(), &["queue", "status", "broken-1", "--wait"]);
    assert_eq!(
        waited.status.code(),
        Some(1),
        "--wait fails for a dead letter"
    );
    let said = String::from_utf8_lossy(&waited.stderr);
    assert!(
        said.contains("call broken-1 ended deadLettered: the function answered 500"),
        "{said}"
    );
    let dlq = ok(&s.platform.cli(
        s.project.path(),
        &["queue", "dlq", "--function", "broken", "--json"],
    ));
    let listed: BTreeSet<String> = serde_json::from_str::<Vec<serde_json::Value>>(&dlq)
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, broken.iter().map(|s| s.to_string()).collect());
    let flaky_dlq = ok(&s.platform.cli(
        s.project.path(),
        &["queue", "dlq", "--function", "flaky.openfaas-fn"],
    ));
    assert!(!flaky_dlq.contains("broken"), "{flaky_dlq}");
    // What the calls did, in the gateway's metrics.
    let samples = scrape(url).samples;
    let count = |name: &str, function: &str, label: Option<(&str, &str)>| {
        let f = ("function_name", function);
        let labels: Vec<_> = std::iter::once(f).chain(label).collect();
        metric(&samples, name, &labels).unwrap_or(f64::NAN)
    };
    let (flaky, broken_fn) = ("flaky.openfaas-fn", "broken.openfaas-fn");
    let submitted = "queue_worker_messages_submitted_total";
    assert_eq!(count(submitted, flaky, None), 1.0);
    assert_eq!(count(submitted, broken_fn, None), 4.0);
    assert_eq!(count("ironfaas_async_retries_total", flaky, None), 2.0);
    assert_eq!(count("ironfaas_async_retries_total", broken_fn, None), 8.0);
    let finished = "ironfaas_async_finished_total";
    assert_eq!(count(finished, flaky, Some(("outcome", "succeeded"))), 1.0);
    assert_eq!(
        count(finished, broken_fn, Some(("outcome", "dead_lettered"))),
        4.0
    );
    assert_eq!(
        count(finished, broken_fn, Some(("outcome", "succeeded"))),
        0.0
    );
    assert_eq!(
        count("queue_worker_messages_processed_total", broken_fn, None),
        4.0
    );
    assert_eq!(
        count(
            "ironfaas_async_callbacks_total",
            broken_fn,
            Some(("result", "delivered"))
        ),
        4.0
    );
    // An attempt leaves the in-flight count just after it recorded its end.
    eventually("no broken call in flight", Duration::from_secs(5), || {
        let inflight = "queue_worker_function_invocation_inflight";
        metric(
            &scrape(url).samples,
            inflight,
            &[("function_name", broken_fn)],
        ) == Some(0.0)
    });

    let callback = callbacks.received().calls["broken-1"].clone();
    assert_eq!(callback.len(), 1, "one callback, after the last attempt");
    assert_eq!(callback[0].0["x-function-status"], "500");
    assert_eq!(
        std::fs::read_to_string(s.work("broken").join("broken-broken-1"))
            .unwrap()
            .len(),
        3,
        "three attempts"
    );

    ok(&s
        .platform
        .cli(s.project.path(), &["queue", "delete", "replay"]));
    let gone = http()
        .get(format!("{url}/system/async/replay"))
        .send()
        .unwrap();
    assert_eq!(gone.status(), 404, "a deleted dead letter is gone");
    let again = s
        .platform
        .cli(s.project.path(), &["queue", "delete", "replay"]);
    assert!(!again.status.success(), "deleting it twice is an error");

    std::fs::write(s.work("broken").join("fixed"), "").unwrap();
    ok(&s
        .platform
        .cli(s.project.path(), &["queue", "replay", "broken-1"]));
    eventually(
        "the replayed call to succeed",
        Duration::from_secs(30),
        || job_state(url, "broken-1")["state"] == "succeeded",
    );
    assert_eq!(
        callbacks.received().calls["broken-1"].last().unwrap().0["x-function-status"],
        "200"
    );

    // Replaying all of them, one page at a time as `replay --all` asks for them.
    let page: serde_json::Value = http()
        .post(format!(
            "{url}/system/async/dead-letters/replay?function=broken&limit=1"
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["replayed"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["more"], true, "{page}");
    assert!(page["failed"].as_array().unwrap().is_empty(), "{page}");
    let first = page["replayed"][0].as_str().unwrap().to_string();
    let rest = ok(&s.platform.cli(
        s.project.path(),
        &["queue", "replay", "--all", "--function", "broken", "--json"],
    ));
    let rest: serde_json::Value = serde_json::from_str(&rest).unwrap();
    let mut replayed: Vec<String> = rest["replayed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(replayed.len(), 1, "{rest}");
    replayed.push(first);
    replayed.sort();
    assert_eq!(replayed, ["broken-2", "broken-3"]);
    eventually(
        "the calls replayed all at once to succeed",
        Duration::from_secs(30),
        || {
            ["broken-2", "broken-3"]
                .iter()
                .all(|id| job_state(url, id)["state"] == "succeeded")
        },
    );
    let dlq = s.platform.cli(s.project.path(), &["queue", "dlq"]);
    assert!(ok(&dlq).is_empty(), "no table when there is nothing");
    assert!(String::from_utf8_lossy(&dlq.stderr).contains("no dead letters"));
    let nothing = ok(&s
        .platform
        .cli(s.project.path(), &["queue", "replay", "--all", "--json"]));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&nothing).unwrap()["replayed"],
        serde_json::json!([])
    );
}

fn a_call_longer_than_its_lease_runs_once(nats: bool) {
    let s = setup(nats, &["--async-lease", "1s"]);
    let callbacks = CallbackServer::start();
    let r = http()
        .post(format!("{}/async-function/slow?s=3.5", s.platform.url))
        .header("X-Callback-Url", &callbacks.url)
        .header("X-Call-Id", "slow-1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually("the slow call back", Duration::from_secs(30), || {
        callbacks.received().calls.contains_key("slow-1")
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(s.work("slow").join("slow-slow-1")).unwrap(),
        "x",
        "it ran exactly once"
    );
    assert_eq!(callbacks.received().calls["slow-1"].len(), 1);

    // A quick call whose callback receiver takes 3.5 leases to answer: the lease is kept
    // while the callback is delivered, so no other worker runs the call again meanwhile.
    let r = http()
        .post(format!("{}/async-function/slow?s=0", s.platform.url))
        .header("X-Callback-Url", format!("{}/slow?s=3.5", callbacks.url))
        .header("X-Call-Id", "slow-callback")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually("the call's end", Duration::from_secs(30), || {
        job_state(&s.platform.url, "slow-callback")["state"] == "succeeded"
    });
    assert_eq!(
        std::fs::read_to_string(s.work("slow").join("slow-slow-callback")).unwrap(),
        "x",
        "it ran exactly once"
    );
    assert_eq!(callbacks.received().calls["slow-callback"].len(), 1);
}

fn duplicate_ids_and_bad_input(nats: bool) {
    let s = setup(nats, &["--max-async-body", "1Ki"]);
    let callbacks = CallbackServer::start();
    let url = &s.platform.url;
    assert_eq!(
        enqueue(url, "count", &callbacks.url, Some("same")).status(),
        202
    );
    assert_eq!(
        enqueue(url, "count", &callbacks.url, Some("same")).status(),
        202
    );
    eventually("the call back", Duration::from_secs(30), || {
        callbacks.received().calls.contains_key("same")
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        callbacks.received().calls["same"].len(),
        1,
        "the same X-Call-Id twice is one call"
    );

    assert_eq!(enqueue(url, "nope", &callbacks.url, None).status(), 404);
    let bad = enqueue(url, "count", "not a url", None);
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("X-Callback-Url"));
    let big = http()
        .post(format!("{url}/async-function/count"))
        .body(vec![b'x'; 2048])
        .send()
        .unwrap();
    assert_eq!(big.status(), 413);

    let cli = run_cli(
        s.project.path(),
        &[
            "invoke",
            "count",
            "--async",
            "--callback-url",
            &format!("{}/redirect", callbacks.url),
        ],
        b"via cli",
        &[("OPENFAAS_URL", url)],
    );
    let id = ok(&cli).trim().to_string();
    eventually(
        "the CLI's call back through a redirect",
        Duration::from_secs(30),
        || callbacks.received().calls.contains_key(&id),
    );
    assert_eq!(
        callbacks.received().calls[&id][0].1,
        format!("count done {id}"),
        "the body survives the redirect"
    );
    let status = ok(&s.platform.cli(s.project.path(), &["queue", "status", &id]));
    assert!(status.contains("succeeded"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("enqueuedAt") && l.trim_end().ends_with('Z')),
        "times read as dates: {status}"
    );
    http()
        .post(format!("{url}/async-function/slow?s=2"))
        .send()
        .unwrap();
    eventually(
        "a running call in the depth list",
        Duration::from_secs(10),
        || {
            let depth = ok(&s
                .platform
                .cli(s.project.path(), &["queue", "list", "--json"]));
            let depth: serde_json::Value = serde_json::from_str(&depth).unwrap();
            depth
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["function"] == "slow.openfaas-fn" && d["running"] == 1)
        },
    );
}

fn kill_9_of_serve_loses_no_accepted_call(nats: bool) {
    let s = setup(nats, &["--async-lease", "2s"]);
    let callbacks = CallbackServer::start();
    let url = s.platform.url.clone();
    let mut accepted = BTreeSet::new();
    for i in 0..1000 {
        let r = http()
            .post(format!("{url}/async-function/slow?s=0.01"))
            .header("X-Callback-Url", &callbacks.url)
            .header("X-Call-Id", format!("k-{i}"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        accepted.insert(format!("k-{i}"));
    }
    let Setup {
        platform,
        nats: nats_server,
        _data: data,
        project: _project,
    } = s;
    let data_dir = platform.data.clone();
    platform.kill();
    let mut args = vec![];
    if let Some(n) = &nats_server {
        args.extend(["--queue".to_string(), n.url.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let _platform = Platform::start_in(data_dir, Some(data), &args);
    eventually(
        "every accepted call to complete after the restart",
        Duration::from_secs(180),
        || callbacks.received().calls.len() >= accepted.len(),
    );
    let done: BTreeSet<String> = callbacks.received().calls.keys().cloned().collect();
    assert_eq!(done, accepted);
}

macro_rules! both_queues {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $scenario() { super::$scenario(false) } )*
        }
        mod nats {
            $( #[test] fn $scenario() { super::$scenario(true) } )*
        }
    };
}

fn a_full_queue_refuses_calls_with_429(nats: bool) {
    let s = setup(nats, &["--async-max-queued", "2", "--async-workers", "0"]);
    let url = &s.platform.url;
    let callback = "http://127.0.0.1:9/";
    for id in ["kept-1", "kept-2"] {
        assert_eq!(enqueue(url, "count", callback, Some(id)).status(), 202);
    }
    let refused = enqueue(url, "count", callback, Some("refused"));
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let text = refused.text().unwrap();
    assert!(
        text.contains("the queue is full") && text.contains("--async-max-queued"),
        "{text}"
    );
    assert_eq!(
        http()
            .get(format!("{url}/system/async/refused"))
            .send()
            .unwrap()
            .status(),
        404,
        "nothing of the refused call is kept"
    );
    assert_eq!(
        enqueue(url, "count", callback, Some("kept-1")).status(),
        202,
        "a call already accepted is accepted again (its id is known)"
    );
    assert_eq!(job_state(url, "kept-2")["state"], "queued");
    let samples = scrape(url).samples;
    let count = [("function_name", "count.openfaas-fn")];
    let refused = [count[0], ("reason", "queue_full")];
    assert_eq!(
        metric(&samples, "ironfaas_async_refused_total", &refused),
        Some(1.0)
    );
    assert_eq!(
        metric(&samples, "queue_worker_messages_submitted_total", &count),
        Some(2.0)
    );
}

both_queues!(
    a_full_queue_refuses_calls_with_429,
    thousand_jobs_each_call_back_exactly_once,
    failing_calls_are_retried_then_dead_lettered_and_replayed,
    a_call_longer_than_its_lease_runs_once,
    duplicate_ids_and_bad_input,
    kill_9_of_serve_loses_no_accepted_call,
);

#[test]
fn nats_killed_and_restarted_mid_run_loses_nothing() {
    let mut s = setup(true, &[]);
    let callbacks = CallbackServer::start();
    let url = s.platform.url.clone();
    let mut accepted = BTreeSet::new();
    for i in 0..300 {
        if i == 150 {
            s.nats.as_mut().unwrap().kill();
            std::thread::sleep(Duration::from_millis(300));
            s.nats.as_mut().unwrap().restart();
        }
        let r = http()
            .post(format!("{url}/async-function/slow?s=0.02"))
            .header("X-Callback-Url", &callbacks.url)
            .header("X-Call-Id", format!("n-{i}"))
            .send()
            .unwrap();
        if r.status() == 202 {
            accepted.insert(format!("n-{i}"));
        }
    }
    assert!(
        accepted.len() >= 250,
        "most calls are accepted around the restart: {}",
        accepted.len()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let received = callbacks.received();
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|id| !received.calls.contains_key(*id))
            .collect();
        if missing.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let states: Vec<String> = missing
                .iter()
                .take(5)
                .map(|id| format!("{id}: {}", job_state(&url, id)))
                .collect();
            panic!(
                "{} accepted calls never completed, e.g. {states:#?}",
                missing.len()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ironfaas worker`, a separate process on the shared NATS queue, makes the calls a gateway
/// with no workers of its own stored, including calls to a function that needs the admin's
/// credentials (which the worker sends, found as the CLI finds them), and serves its metrics.
#[test]
fn a_separate_worker_makes_the_calls() {
    let s = setup(true, &["--async-workers", "0"]);
    let url = &s.platform.url;
    let guarded = http()
        .post(format!("{url}/system/functions"))
        .json(&serde_json::json!({
            "service": "guarded",
            "image": "async-fns:1",
            "envVars": {"ROLE": "count"},
            "annotations": {"com.ironfaas.auth": "basic"},
        }))
        .send()
        .unwrap();
    assert_eq!(guarded.status(), 202, "{:?}", guarded.text());
    let callbacks = CallbackServer::start();
    for (function, id) in [("count", "plain-1"), ("guarded", "guarded-1")] {
        assert_eq!(
            enqueue(url, function, &callbacks.url, Some(id)).status(),
            202
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        callbacks.received().calls.is_empty(),
        "the gateway has no workers: nothing may run before the worker starts"
    );
    let waited = s.platform.cli(
        s.project.path(),
        &["queue", "status", "plain-1", "--wait", "--timeout", "300ms"],
    );
    assert_eq!(waited.status.code(), Some(1));
    let said = String::from_utf8_lossy(&waited.stderr);
    assert!(
        said.contains("call plain-1 is still queued after 300ms"),
        "{said}"
    );
    let nats = s.nats.as_ref().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut worker = std::process::Command::new(ironfaas())
        .args([
            "worker",
            "--queue",
            nats.url.as_str(),
            "--gateway",
            url.as_str(),
            "--metrics-listen",
            metrics.as_str(),
        ])
        .env("IRONFAAS_PASSWORD", ADMIN_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("both callbacks", Duration::from_secs(30), || {
        callbacks.received().calls.len() == 2
    });
    let worker_url = format!("http://{metrics}");
    for function in ["count.openfaas-fn", "guarded.openfaas-fn"] {
        let labels = [("function_name", function), ("outcome", "succeeded")];
        eventually("the worker's metrics", Duration::from_secs(5), || {
            let samples = scrape(&worker_url).samples;
            metric(&samples, "ironfaas_async_finished_total", &labels) == Some(1.0)
        });
    }
    let elsewhere = http().get(format!("{worker_url}/")).send().unwrap();
    assert_eq!(elsewhere.status(), 404);
    let _ = worker.kill();
    let _ = worker.wait();
    let received = callbacks.received();
    for id in ["plain-1", "guarded-1"] {
        let (headers, body) = &received.calls[id][0];
        assert_eq!(headers["x-function-status"], "200", "{id}: {body}");
        assert_eq!(body, &format!("count done {id}"));
    }
}

/// An HTTPS receiver for callbacks: Python's http.server behind TLS with a self-signed
/// certificate for 127.0.0.1 (made with openssl); each callback's X-Call-Id and status go to a
/// file, one line each.
const HTTPS_RECEIVER: &str = r#"import http.server, ssl, sys
cert, key, out = sys.argv[1], sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(out, "a") as f:
            f.write("%s %s %s\n" % (self.headers["x-call-id"], self.headers["x-function-status"], body.decode()))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Callbacks to https:// URLs arrive, checked against the certificate authorities the gateway
/// trusts (here SSL_CERT_FILE); one the gateway does not trust is not delivered.
#[test]
fn callbacks_reach_https_receivers() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .args(["/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/install-test-deps installs it)");
    assert!(made.status.success(), "{made:?}");
    let script = dir.path().join("receiver.py");
    std::fs::write(&script, HTTPS_RECEIVER).unwrap();
    let received = dir.path().join("received");
    let mut receiver = std::process::Command::new("python3")
        .arg(&script)
        .args([&cert, &key, &received])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut port = String::new();
    std::io::BufReader::new(receiver.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let callback = format!("https://127.0.0.1:{}/done", port.trim());

    let data = tempfile::tempdir().unwrap();
    let trusting = Platform::start_in_env(
        data.path().to_path_buf(),
        None,
        &[],
        &[("SSL_CERT_FILE", cert.display().to_string())],
    );
    let project = Project::new();
    project
        .write("stack.yml", STACK)
        .write("fns/handler.py", HANDLER);
    ok(&trusting.cli(project.path(), &["up", "--filter", "count"]));
    assert_eq!(
        enqueue(&trusting.url, "count", &callback, Some("tls-1")).status(),
        202
    );
    eventually("the https callback", Duration::from_secs(30), || {
        std::fs::read_to_string(&received).is_ok_and(|t| t.contains("tls-1"))
    });
    assert_eq!(
        std::fs::read_to_string(&received).unwrap().trim(),
        "tls-1 200 count done tls-1"
    );

    // A gateway that does not trust the receiver's certificate does not deliver to it.
    let doubting = Platform::start();
    ok(&doubting.cli(project.path(), &["up", "--filter", "count"]));
    assert_eq!(
        enqueue(&doubting.url, "count", &callback, Some("tls-2")).status(),
        202
    );
    eventually(
        "the refused callback in the log",
        Duration::from_secs(30),
        || {
            doubting.log().contains("tls-2")
                && doubting.log().to_lowercase().contains("certificate")
        },
    );
    assert!(
        !std::fs::read_to_string(&received)
            .unwrap()
            .contains("tls-2")
    );
    let _ = receiver.kill();
    let _ = receiver.wait();
}
