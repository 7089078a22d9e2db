//! Deploy, update, scale, crash, restart: functions keep answering.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Platform, Project, eventually, http, native_echo, ok};

const STACK: &str = "provider:\n  name: openfaas\nfunctions:\n  echo:\n    lang: binary\n    handler: ./echo\n    image: echo:1\n  py:\n    lang: python3-http\n    handler: ./py\n    image: py:1\n";

fn project() -> Project {
    let p = Project::new();
    p.write("stack.yml", STACK)
        .install_executable(native_echo(), "echo/handler")
        .write(
            "py/handler.py",
            "def handle(event, context):\n    return 'py ' + context.hostname\n",
        );
    p
}

fn status(platform: &Platform, name: &str) -> serde_json::Value {
    http()
        .get(format!("{}/system/function/{name}", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn answers(platform: &Platform, name: &str) -> bool {
    http()
        .get(format!("{}/function/{name}", platform.url))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn unknown_function_is_404_and_put_before_post_works() {
    let platform = Platform::start();
    let project = project();
    ok(&platform.cli(project.path(), &["build"]));
    let client = http();
    let missing = client
        .post(format!("{}/function/nope", platform.url))
        .body("x")
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        client
            .get(format!("{}/system/function/nope", platform.url))
            .send()
            .unwrap()
            .status(),
        404
    );

    let deployment = json!({"service": "echo", "image": "echo:1"});
    let put = client
        .put(format!("{}/system/functions", platform.url))
        .json(&deployment)
        .send()
        .unwrap();
    assert_eq!(
        put.status(),
        404,
        "PUT on a missing function must be 404 so faas-cli falls back to POST"
    );
    let post = client
        .post(format!("{}/system/functions", platform.url))
        .json(&deployment)
        .send()
        .unwrap();
    assert_eq!(post.status(), 202, "{}", post.text().unwrap());
    let again = client
        .post(format!("{}/system/functions", platform.url))
        .json(&deployment)
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
    let put = client
        .put(format!("{}/system/functions", platform.url))
        .json(&deployment)
        .send()
        .unwrap();
    assert_eq!(put.status(), 202);

    let s = status(&platform, "echo");
    assert_eq!(s["name"], "echo");
    assert_eq!(s["image"], "echo:1");
    assert_eq!(s["replicas"], 1);
    assert_eq!(s["availableReplicas"], 1);
    assert!(s["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(answers(&platform, "echo"));

    let bad = client
        .post(format!("{}/system/functions", platform.url))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text()
            .unwrap()
            .contains("invalid FunctionDeployment JSON")
    );
    let no_image = client
        .post(format!("{}/system/functions", platform.url))
        .json(&json!({"service": "x", "image": "x:9"}))
        .send()
        .unwrap();
    assert_eq!(no_image.status(), 400);
    assert!(
        no_image
            .text()
            .unwrap()
            .contains("not in the function store")
    );

    let delete = client
        .delete(format!("{}/system/functions", platform.url))
        .json(&json!({"functionName": "echo"}))
        .send()
        .unwrap();
    assert_eq!(delete.status(), 202);
    let delete = client
        .delete(format!("{}/system/functions", platform.url))
        .json(&json!({"functionName": "echo"}))
        .send()
        .unwrap();
    assert_eq!(delete.status(), 404);
    assert_eq!(
        client
            .get(format!("{}/function/echo", platform.url))
            .send()
            .unwrap()
            .status(),
        404
    );
}

#[test]
fn a_hundred_concurrent_calls_all_succeed() {
    let platform = Platform::start();
    let project = project();
    ok(&platform.cli(project.path(), &["up"]));
    ok(&platform.cli(project.path(), &["scale", "py", "--replicas", "2"]));
    let url = platform.url.clone();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let function = if i % 2 == 0 { "echo" } else { "py" };
                let r = http()
                    .post(format!("{url}/function/{function}"))
                    .body(format!("call {i}"))
                    .send()
                    .unwrap();
                (function, r.status().as_u16(), r.text().unwrap(), i)
            })
        })
        .collect();
    let mut python_hosts = std::collections::BTreeSet::new();
    for h in handles {
        let (function, status, body, i) = h.join().unwrap();
        assert_eq!(status, 200, "{function} call {i}: {body}");
        if function == "echo" {
            assert!(body.ends_with(&format!("body=call {i}")), "{body}");
        } else {
            python_hosts.insert(body);
        }
    }
    assert_eq!(
        python_hosts.len(),
        2,
        "calls were spread over both replicas: {python_hosts:?}"
    );
}

#[test]
fn a_killed_replica_is_restarted() {
    let platform = Platform::start();
    let project = project();
    ok(&platform.cli(project.path(), &["up"]));
    let pid = status(&platform, "echo")["instances"][0]["pid"]
        .as_u64()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("a new replica process", Duration::from_secs(20), || {
        let s = status(&platform, "echo");
        s["availableReplicas"] == 1 && s["instances"][0]["pid"].as_u64() != Some(pid)
    });
    assert!(answers(&platform, "echo"));
    assert_eq!(status(&platform, "echo")["instances"][0]["restarts"], 1);
}

#[test]
fn restarting_serve_brings_every_function_back() {
    let data = tempfile::tempdir().unwrap();
    let project = project();
    let platform = Platform::start_in(data.path().to_path_buf(), None, &[]);
    ok(&platform.cli(project.path(), &["up"]));
    ok(&platform.cli(project.path(), &["scale", "echo", "--replicas", "2"]));
    let old_pids: Vec<u64> = status(&platform, "echo")["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["pid"].as_u64())
        .collect();
    assert!(platform.stop(), "serve did not stop cleanly on SIGTERM");
    for pid in &old_pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "replica {pid} outlived serve"
        );
    }

    let platform = Platform::start_in(data.path().to_path_buf(), None, &[]);
    eventually("echo and py answer again", Duration::from_secs(30), || {
        answers(&platform, "echo") && answers(&platform, "py")
    });
    assert_eq!(status(&platform, "echo")["replicas"], 2);

    // Even after kill -9 of serve, its replicas go and the functions come back.
    let py_pid = status(&platform, "py")["instances"][0]["pid"]
        .as_u64()
        .unwrap();
    platform.kill();
    eventually(
        "the orphaned replica to die",
        Duration::from_secs(10),
        || !std::path::Path::new(&format!("/proc/{py_pid}")).exists(),
    );
    let platform = Platform::start_in(data.path().to_path_buf(), None, &[]);
    eventually("functions after kill -9", Duration::from_secs(30), || {
        answers(&platform, "echo") && answers(&platform, "py")
    });
}

#[test]
fn limits_answer_429_and_504() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  slow:\n    lang: python3-http\n    handler: ./slow\n    image: slow:1\n    environment:\n      max_inflight: \"1\"\n      exec_timeout: 1s\n",
        )
        .write(
            "slow/handler.py",
            "import time\ndef handle(event, context):\n    time.sleep(float(event.query.get('s', '0')))\n    return 'done'\n",
        );
    ok(&platform.cli(project.path(), &["up"]));
    let url = platform.url.clone();
    let busy = std::thread::spawn(move || {
        http()
            .get(format!("{url}/function/slow?s=0.8"))
            .send()
            .unwrap()
            .status()
    });
    std::thread::sleep(Duration::from_millis(300));
    let refused = http()
        .get(format!("{}/function/slow", platform.url))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 429);
    assert!(
        refused
            .text()
            .unwrap()
            .contains("Max concurrent requests: 1")
    );
    assert_eq!(busy.join().unwrap(), 200);
    let timed_out = http()
        .get(format!("{}/function/slow?s=3", platform.url))
        .send()
        .unwrap();
    assert_eq!(timed_out.status(), 504);
    assert!(timed_out.text().unwrap().contains("exec_timeout"));
}

const SLOW_START: &str = "provider:\n  name: openfaas\nfunctions:\n  slow:\n    lang: python3-http\n    handler: ./slow\n    image: slow-start:1\n    environment:\n      START_DELAY: \"2\"\n";

const SLOW_HANDLER: &str = "import os, time\ntime.sleep(float(os.environ.get('START_DELAY', '0')))\n\ndef handle(event, context):\n    time.sleep(float(event.query.get('s', '0')))\n    return context.hostname\n";

#[test]
fn new_replicas_get_calls_only_once_ready_and_removed_ones_drain() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write("stack.yml", SLOW_START)
        .write("slow/handler.py", SLOW_HANDLER);
    ok(&platform.cli(project.path(), &["up"]));
    // Every replica takes 2 s to start: meanwhile every call must go to the first one.
    let url = platform.url.clone();
    ok(&platform.cli(
        project.path(),
        &["scale", "slow", "--replicas", "2", "--no-wait"],
    ));
    let started = std::time::Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    while started.elapsed() < Duration::from_secs(1) {
        let r = http().get(format!("{url}/function/slow")).send().unwrap();
        assert_eq!(
            r.status(),
            200,
            "a call failed while a replica was starting"
        );
        seen.insert(r.text().unwrap());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec!["slow-1".to_string()]
    );

    // Scaling down drains: a call in flight on a removed replica still completes.
    eventually("both replicas ready", Duration::from_secs(20), || {
        status(&platform, "slow")["availableReplicas"] == 2
    });
    let long_calls: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                http()
                    .get(format!("{url}/function/slow?s=1.5"))
                    .send()
                    .unwrap()
                    .status()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    ok(&platform.cli(
        project.path(),
        &["scale", "slow", "--replicas", "0", "--no-wait"],
    ));
    for call in long_calls {
        assert_eq!(
            call.join().unwrap(),
            200,
            "a call in flight was cut off by scale-down"
        );
    }
    let s = status(&platform, "slow");
    assert_eq!(s.get("replicas"), None, "replicas is omitted when 0");
    assert!(
        s["instances"].as_array().is_none_or(|i| i.is_empty()),
        "{s}"
    );
}
