//! Autoscaling on load, scale to zero and back, and the bounded wait for a replica.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Platform, Project, eventually, http, ok, text};

fn status(platform: &Platform, name: &str) -> serde_json::Value {
    http()
        .get(format!("{}/system/function/{name}", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn replicas(s: &serde_json::Value) -> u64 {
    s["replicas"].as_u64().unwrap_or(0)
}

#[test]
fn capacity_scaling_goes_up_under_load_and_back_to_min() {
    let platform =
        Platform::start_with(&["--autoscale-interval", "200ms", "--scale-down-window", "2s"]);
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  busy:\n    lang: python3-http\n    handler: ./busy\n    image: busy:1\n    labels:\n      com.openfaas.scale.type: capacity\n      com.openfaas.scale.target: \"2\"\n      com.openfaas.scale.target-proportion: \"1.0\"\n      com.openfaas.scale.min: \"1\"\n      com.openfaas.scale.max: \"3\"\n",
        )
        .write("busy/handler.py", "import time\ndef handle(event, context):\n    time.sleep(0.2)\n    return context.hostname\n");
    ok(&platform.cli(project.path(), &["up"]));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..12)
        .map(|_| {
            let (url, stop) = (platform.url.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut failures = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = http().get(format!("{url}/function/busy")).send().unwrap();
                    failures += usize::from(!r.status().is_success());
                }
                failures
            })
        })
        .collect();
    let mut most = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) && most < 3 {
        let s = status(&platform, "busy");
        most = most.max(replicas(&s));
        assert!(replicas(&s) <= 3, "max exceeded: {s}");
        assert!(
            s["instances"].as_array().unwrap().len() <= 3,
            "more than max replicas run: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        most, 3,
        "the load of 12 calls in flight with a target of 2 per replica must reach max"
    );
    stop.store(true, Ordering::Relaxed);
    let failures: usize = load.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(failures, 0, "calls failed while scaling");
    eventually(
        "back to min after the load",
        Duration::from_secs(20),
        || replicas(&status(&platform, "busy")) == 1,
    );
}

#[test]
fn idle_function_goes_to_zero_and_the_next_calls_share_one_start() {
    let platform = Platform::start_with(&["--autoscale-interval", "200ms"]);
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  sleepy:\n    lang: python3-http\n    handler: ./sleepy\n    image: sleepy:1\n    labels:\n      com.openfaas.scale.zero: \"true\"\n      com.openfaas.scale.zero-duration: 1s\n",
        )
        .write("sleepy/handler.py", "def handle(event, context):\n    return 'awake ' + context.hostname\n");
    ok(&platform.cli(project.path(), &["up"]));
    eventually("scaled to zero", Duration::from_secs(15), || {
        replicas(&status(&platform, "sleepy")) == 0
    });
    let s = status(&platform, "sleepy");
    assert!(
        s["instances"].as_array().is_none_or(|i| i.is_empty()),
        "{s}"
    );

    let calls: Vec<_> = (0..6)
        .map(|_| {
            let url = platform.url.clone();
            std::thread::spawn(move || {
                let r = http().get(format!("{url}/function/sleepy")).send().unwrap();
                (r.status().as_u16(), r.text().unwrap())
            })
        })
        .collect();
    for call in calls {
        let (code, body) = call.join().unwrap();
        assert_eq!(code, 200, "{body}");
        assert!(body.starts_with("awake sleepy-"), "{body}");
    }
    let s = status(&platform, "sleepy");
    assert_eq!(
        s["coldStarts"], 1,
        "concurrent first calls must share one start: {s}"
    );
    assert_eq!(replicas(&s), 1);
    assert_eq!(s["instances"].as_array().unwrap().len(), 1, "{s}");
}

#[test]
fn a_replica_that_never_gets_ready_gives_503_after_the_bounded_wait() {
    let platform =
        Platform::start_with(&["--ready-timeout", "2s", "--scale-from-zero-timeout", "2s"]);
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  stuck:\n    lang: python3-http\n    handler: ./stuck\n    image: stuck:1\n",
        )
        .write("stuck/handler.py", "import time\ntime.sleep(3600)\ndef handle(event, context):\n    return 'never'\n");
    let deploy = platform.cli(project.path(), &["up"]);
    assert_eq!(deploy.status.code(), Some(1), "{:?}", text(&deploy));
    assert!(
        text(&deploy)
            .1
            .contains("did not answer its readiness probe within 2s"),
        "{}",
        text(&deploy).1
    );
    let started = Instant::now();
    let r = http()
        .get(format!("{}/function/stuck", platform.url))
        .send()
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status(), 503);
    let body = r.text().unwrap();
    assert!(body.contains("No replica became ready within 2s"), "{body}");
    assert!(
        waited >= Duration::from_millis(1900),
        "it waited only {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(15),
        "it waited {waited:?}: not bounded"
    );
}

/// The processes whose environment holds `mark`: (bubblewrap processes, others).
fn marked_processes(mark: &str) -> (usize, usize) {
    let (bwrap, others) = marked_pids(mark);
    (bwrap.len(), others.len())
}

/// The pids of the processes whose environment holds `mark`: (bubblewrap's, others).
fn marked_pids(mark: &str) -> (Vec<i32>, Vec<i32>) {
    let needle = format!("SPARE_MARK={mark}");
    let (mut bwrap, mut others) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let dir = entry.path();
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        if argv0.ends_with(b"bwrap") {
            bwrap.push(pid);
        } else {
            others.push(pid);
        }
    }
    (bwrap, others)
}

/// Removes the function and waits until none of its processes (spare included) is left.
fn remove_leaves_nothing(platform: &Platform, name: &str, mark: &str) {
    let r = http()
        .delete(format!("{}/system/functions", platform.url))
        .json(&serde_json::json!({"functionName": name}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    eventually(
        "no process of the function is left",
        Duration::from_secs(20),
        || marked_processes(mark) == (0, 0),
    );
}

fn spare_project(mark: &str) -> Project {
    let project = Project::new();
    project
        .write(
            "stack.yml",
            &format!("provider:\n  name: openfaas\nfunctions:\n  spare:\n    lang: binary\n    handler: ./spare\n    image: spare:1\n    environment:\n      SPARE_MARK: {mark}\n"),
        )
        .install_executable(crate::harness::native_echo(), "spare/handler");
    project
}

fn scale(platform: &Platform, name: &str, replicas: u64) {
    let r = http()
        .post(format!("{}/system/scale-function/{name}", platform.url))
        .json(&serde_json::json!({"serviceName": name, "replicas": replicas}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "scale {name} to {replicas}");
}

#[test]
fn a_function_at_zero_keeps_a_spare_sandbox_whose_program_starts_on_the_next_call() {
    let platform = Platform::start_with(&["--sandbox", "on"]);
    let mark = format!("spare-{}", std::process::id());
    let project = spare_project(&mark);
    ok(&platform.cli(project.path(), &["up"]));
    scale(&platform, "spare", 0);
    eventually("the replica is gone", Duration::from_secs(20), || {
        status(&platform, "spare")["instances"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    });
    // The spare: bubblewrap has built the sandbox; the function's program has not started.
    eventually("a spare sandbox is built", Duration::from_secs(10), || {
        let (bwrap, others) = marked_processes(&mark);
        bwrap >= 1 && others == 0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        marked_processes(&mark).1,
        0,
        "the spare's program waits for a call"
    );
    // A spare whose processes die is made again, still waiting.
    let (killed, _) = marked_pids(&mark);
    for pid in &killed {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    eventually("the spare is made again", Duration::from_secs(10), || {
        let (bwrap, others) = marked_pids(&mark);
        !bwrap.is_empty() && bwrap.iter().all(|p| !killed.contains(p)) && others.is_empty()
    });
    let available = |s: &serde_json::Value| s["availableReplicas"].as_u64().unwrap_or(0);
    assert_eq!(
        available(&status(&platform, "spare")),
        0,
        "a spare is not a replica"
    );

    let r = http()
        .post(format!("{}/function/spare", platform.url))
        .body("hello")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("body=hello"));
    assert_eq!(marked_processes(&mark).1, 1, "the program runs once");
    let s = status(&platform, "spare");
    assert_eq!(available(&s), 1, "{s}");

    // Removing the function removes everything it ran, the spare included.
    scale(&platform, "spare", 0);
    eventually(
        "a new spare after the next scale to zero",
        Duration::from_secs(20),
        || marked_processes(&mark).1 == 0 && marked_processes(&mark).0 >= 1,
    );
    remove_leaves_nothing(&platform, "spare", &mark);
}

#[test]
fn spare_sandbox_off_leaves_nothing_running_at_zero() {
    let platform = Platform::start_with(&["--sandbox", "on", "--spare-sandbox", "off"]);
    let mark = format!("nospare-{}", std::process::id());
    let project = spare_project(&mark);
    ok(&platform.cli(project.path(), &["up"]));
    assert_eq!(marked_processes(&mark).1, 1, "one replica runs");
    scale(&platform, "spare", 0);
    eventually(
        "nothing of the function runs",
        Duration::from_secs(20),
        || marked_processes(&mark) == (0, 0),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(marked_processes(&mark), (0, 0));
    let r = http()
        .get(format!("{}/function/spare", platform.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "a start from zero still works");
}

/// How many times the function's log says its handler module was loaded.
fn loads(platform: &Platform, name: &str) -> usize {
    http()
        .get(format!(
            "{}/system/logs?name={name}&tail=1000",
            platform.url
        ))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .matches("handler module loaded")
        .count()
}

/// Scales `warm` to zero and waits until no replica is left and its spare's interpreter runs.
fn scale_to_a_warm_spare(platform: &Platform, mark: &str) {
    scale(platform, "warm", 0);
    eventually("a warm spare is running", Duration::from_secs(20), || {
        status(platform, "warm")["instances"]
            .as_array()
            .is_none_or(|a| a.is_empty())
            && marked_processes(mark).1 == 1
    });
}

#[test]
fn a_warm_spare_has_its_interpreter_started_and_loads_the_function_only_on_a_call() {
    let platform = Platform::start_with(&["--sandbox", "on", "--spare-sandbox", "warm"]);
    let mark = format!("warm-{}", std::process::id());
    let project = Project::new();
    project
        .write(
            "stack.yml",
            &format!("provider:\n  name: openfaas\nfunctions:\n  warm:\n    lang: python3-http\n    handler: ./warm\n    image: warm:1\n    environment:\n      SPARE_MARK: {mark}\n"),
        )
        .write(
            "warm/handler.py",
            "import os\nprint('handler module loaded', flush=True)\n\ndef handle(event, context):\n    return 'start fd: %s' % os.environ.get('IRONFAAS_START_FD', 'unset')\n",
        );
    ok(&platform.cli(project.path(), &["up"]));
    eventually(
        "the first replica's load is logged",
        Duration::from_secs(10),
        || loads(&platform, "warm") == 1,
    );
    // The warm spare: python has started in its sandbox and waits before loading the handler.
    scale_to_a_warm_spare(&platform, &mark);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        loads(&platform, "warm"),
        1,
        "the spare has not loaded the handler"
    );

    let r = http()
        .get(format!("{}/function/warm", platform.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().unwrap(),
        "start fd: unset",
        "the runtime keeps the start descriptor from the function"
    );
    eventually(
        "the call's replica loaded the handler",
        Duration::from_secs(10),
        || loads(&platform, "warm") == 2,
    );
    assert_eq!(marked_processes(&mark).1, 1, "the spare became the replica");

    // Removing the function ends the waiting interpreter of the next spare too.
    scale_to_a_warm_spare(&platform, &mark);
    remove_leaves_nothing(&platform, "warm", &mark);
}
