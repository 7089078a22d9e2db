//! The examples in `examples/` start with `examples/run` and answer as examples/README.md
//! says: the walkthrough's requests, in its order, with its answers.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{
    ADMIN_PASSWORD, Platform, anonymous, eventually, free_port, ironfaas, ok, repo, text,
};

/// The lines a child printed on stdout and stderr, shared with the threads that read them.
type Lines = Arc<Mutex<Vec<String>>>;

/// A process of the walkthrough (examples/run, the callback receiver), in its own process
/// group; dropping it ends the group.
struct Background {
    child: Child,
    lines: Lines,
}

impl Background {
    /// Starts `program args` in `cwd` with `env`, collecting its output.
    fn start(cwd: &Path, program: &str, args: &[&str], env: &[(&str, String)]) -> Background {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start a walkthrough process");
        let lines = Lines::default();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        for reader in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Background { child, lines }
    }

    /// Everything it printed so far.
    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until it printed a line containing `what`.
    #[track_caller]
    fn wait_for_line(&mut self, what: &str, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if self.output().contains(what) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                assert!(
                    self.output().contains(what),
                    "it exited ({status}) before printing '{what}':\n{}",
                    self.output()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "timed out after {limit:?} waiting for '{what}' in:\n{}",
            self.output()
        );
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- output of {:?} ---\n{}\n---", self.child, self.output());
        }
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The walkthrough's callbacks so far: (status line, body line) per callback of `id`.
fn callbacks(receiver: &Background, id: &str) -> Vec<(String, String)> {
    let lines = receiver.lines.lock().unwrap().clone();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&format!("callback {id}:")))
        .map(|(i, l)| (l.clone(), lines.get(i + 1).cloned().unwrap_or_default()))
        .collect()
}

/// An `ironfaas` command of the walkthrough, run from the folder holding `examples/`.
fn walk(platform: &Platform, root: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    platform.cli_with_stdin(root, args, stdin.as_bytes())
}

#[test]
fn examples_answer_as_documented() {
    let platform = Platform::start();
    let root = tempfile::tempdir().unwrap();
    let examples: PathBuf = root.path().join("examples");
    crate::harness::copy_tree(&repo().join("examples"), &examples);
    let legacy_port = free_port();
    let legacy = format!("http://127.0.0.1:{legacy_port}");

    let script = examples.join("run");
    let mut run = Background::start(
        root.path(),
        script.to_str().unwrap(),
        &[],
        &[
            ("IRONFAAS", ironfaas().to_string()),
            ("OPENFAAS_URL", platform.url.clone()),
            ("IRONFAAS_DATA_DIR", platform.data.display().to_string()),
            ("IRONFAAS_PASSWORD", ADMIN_PASSWORD.to_string()),
            ("LEGACY_PORT", legacy_port.to_string()),
        ],
    );
    run.wait_for_line("examples are ready", Duration::from_secs(300));
    let out = run.output();
    for name in ["transform", "gdpr-cleanup", "csv-worker", "wordcount"] {
        assert!(
            out.contains(&format!("{}/function/{name}", platform.url)),
            "{out}"
        );
    }
    assert!(
        out.contains(&format!("legacy-backend: listening on {legacy}")),
        "{out}"
    );
    let secrets = ok(&walk(&platform, root.path(), &["secret", "list"], ""));
    assert!(secrets.contains("db-password"), "{secrets}");
    let url = &platform.url;

    // transform: on its route, in front of the legacy backend.
    let filed = anonymous()
        .post(format!("{url}/api/v2/transform"))
        .body(r#"{"name": "ada  LOVELACE", "email": " Ada@Example.NO ", "country": "no", "consent": true, "ssn": "0101"}"#)
        .send()
        .unwrap();
    assert_eq!(filed.status(), 201);
    assert_eq!(
        filed.text().unwrap(),
        r#"{"legacy":{"status":201,"answer":{"CUSTNO":"CC7C10536","STATUS":"FILED"}},"sent":{"NAME":"Ada Lovelace","EMAIL":"ada@example.no","COUNTRY":"NO","CONSENT":"Y"},"dropped":["ssn"]}"#
    );
    eventually(
        "the backend to print the record",
        Duration::from_secs(5),
        || {
            run.output().contains(r#"legacy-backend: filed CC7C10536: {"NAME": "Ada Lovelace", "EMAIL": "ada@example.no", "COUNTRY": "NO", "CONSENT": "Y"}"#)
        },
    );
    let bad = anonymous()
        .post(format!("{url}/api/v2/transform"))
        .body(r#"{"name": "x"}"#)
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.text().unwrap(),
        r#"{"error":"email is missing or not an email address"}"#
    );
    let not_json = anonymous()
        .post(format!("{url}/api/v2/transform"))
        .body("name=ada")
        .send()
        .unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(
        not_json.text().unwrap(),
        r#"{"error":"the body is not JSON: Expecting value: line 1 column 1 (char 0)"}"#
    );

    // gdpr-cleanup: only the admin may call it; the CLI sends the admin's credentials.
    let refused = anonymous()
        .post(format!("{url}/function/gdpr-cleanup"))
        .body(r#"{"subject": "ada@example.no"}"#)
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.text().unwrap(), "invalid credentials\n");
    let dry = ok(&walk(
        &platform,
        root.path(),
        &["invoke", "gdpr-cleanup"],
        r#"{"subject": "Ada@Example.no", "dry_run": true}"#,
    ));
    assert_eq!(
        dry,
        r#"{"subject":"ada@example.no","dry_run":true,"would_delete":{"orders":2,"support_tickets":1,"newsletter":1,"customers":1}}"#
    );
    let erased = ok(&walk(
        &platform,
        root.path(),
        &["invoke", "gdpr-cleanup"],
        r#"{"subject": "ada@example.no"}"#,
    ));
    assert_eq!(
        erased,
        r#"{"subject":"ada@example.no","deleted":{"orders":2,"support_tickets":1,"newsletter":1,"customers":1}}"#
    );
    let again = walk(
        &platform,
        root.path(),
        &["invoke", "gdpr-cleanup"],
        r#"{"subject": "ada@example.no"}"#,
    );
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        r#"{"error":"no records of data subject ada@example.no"}"#
    );
    assert!(stderr.contains("404 Not Found"), "{stderr}");
    let bad = walk(
        &platform,
        root.path(),
        &["invoke", "gdpr-cleanup"],
        r#"{"subject": "ada"}"#,
    );
    let (stdout, stderr) = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        r#"{"error":"subject is missing or not an email address"}"#
    );
    assert!(stderr.contains("400 Bad Request"), "{stderr}");
    assert!(
        platform
            .data
            .join("work/openfaas-fn/gdpr-cleanup/customers.sqlite")
            .is_file(),
        "the demo database lives in the function's work dir"
    );
    let described = ok(&walk(
        &platform,
        root.path(),
        &["describe", "gdpr-cleanup"],
        "",
    ));
    assert!(
        described.contains("1 ready of 1 desired") && described.contains("min 1 max 20"),
        "{described}"
    );

    // csv-worker: synchronously, then queued with callbacks to the receiver.
    let orders = std::fs::read_to_string(examples.join("data/orders.csv")).unwrap();
    let broken = std::fs::read_to_string(examples.join("data/orders-broken.csv")).unwrap();
    let stats = anonymous()
        .post(format!("{url}/function/csv-worker"))
        .header("Content-Type", "text/csv")
        .body(orders.clone())
        .send()
        .unwrap();
    assert_eq!(stats.status(), 200);
    assert_eq!(
        stats.text().unwrap(),
        r#"{"rows":2,"columns":{"orders":{"sum":8,"mean":4},"revenue":{"sum":200.5,"mean":100.25}}}"#
    );

    let receiver_port = free_port();
    let receiver_url = format!("http://127.0.0.1:{receiver_port}");
    let mut receiver = Background::start(
        root.path(),
        "python3",
        &[
            "examples/callback-receiver.py",
            "--port",
            &receiver_port.to_string(),
        ],
        &[],
    );
    receiver.wait_for_line("callback-receiver: listening on", Duration::from_secs(10));
    let enqueue = |id: &str, body: &str| {
        let answer = anonymous()
            .post(format!("{url}/async-function/csv-worker"))
            .header("Content-Type", "text/csv")
            .header("X-Call-Id", id)
            .header("X-Callback-Url", &receiver_url)
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(answer.status(), 202, "{id}");
    };
    enqueue("orders-1", &orders);
    eventually("the callback of orders-1", Duration::from_secs(30), || {
        !callbacks(&receiver, "orders-1").is_empty()
    });
    assert_eq!(
        callbacks(&receiver, "orders-1"),
        [(
            "callback orders-1: csv-worker.openfaas-fn answered 200 after 0 retries".to_string(),
            r#"  {"rows":2,"columns":{"orders":{"sum":8,"mean":4},"revenue":{"sum":200.5,"mean":100.25}}}"#.to_string()
        )]
    );

    enqueue("broken-1", &broken);
    eventually(
        "broken-1 in the dead letters",
        Duration::from_secs(60),
        || {
            walk(&platform, root.path(), &["queue", "status", "broken-1"], "")
                .stdout
                .windows(12)
                .any(|w| w == b"deadLettered")
        },
    );
    assert_eq!(
        callbacks(&receiver, "broken-1"),
        [(
            "callback broken-1: csv-worker.openfaas-fn answered 422 after 2 retries".to_string(),
            r#"  {"error":"line 3 has 4 cells, the header has 3","line":3}"#.to_string()
        )],
        "one callback, after the third attempt"
    );
    let dlq = ok(&walk(&platform, root.path(), &["queue", "dlq"], ""));
    assert!(
        dlq.contains("broken-1") && dlq.contains("csv-worker.openfaas-fn"),
        "{dlq}"
    );

    let fixed = run_with_env(
        root.path(),
        &platform,
        &[
            "deploy",
            "-f",
            "examples/stack.yml",
            "--filter",
            "csv-worker",
        ],
        ("CSV_SKIP_BAD_ROWS", "true"),
    );
    ok(&fixed);
    ok(&walk(
        &platform,
        root.path(),
        &["queue", "replay", "broken-1"],
        "",
    ));
    eventually("the replayed call back", Duration::from_secs(30), || {
        callbacks(&receiver, "broken-1").len() == 2
    });
    assert_eq!(
        callbacks(&receiver, "broken-1")[1],
        (
            "callback broken-1: csv-worker.openfaas-fn answered 200 after 0 retries".to_string(),
            r#"  {"rows":2,"columns":{"orders":{"sum":5,"mean":2.5},"revenue":{"sum":160.5,"mean":80.25}},"skipped":[{"line":3,"error":"4 cells, the header has 3"}]}"#.to_string()
        )
    );
    assert!(!ok(&walk(&platform, root.path(), &["queue", "dlq"], "")).contains("broken-1"));

    // wordcount.
    let words = ok(&walk(
        &platform,
        root.path(),
        &["invoke", "wordcount"],
        "the quick brown fox\n",
    ));
    assert_eq!(words, "4\n");

    // transform with the legacy backend down: 502 with the reason.
    let pid = run
        .output()
        .lines()
        .find_map(|l| {
            l.split("legacy backend pid ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("examples/run prints the backend's pid");
    let pid: i32 = pid.parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    eventually("the backend to stop", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", legacy_port)).is_err()
    });
    let down = anonymous()
        .post(format!("{url}/api/v2/transform"))
        .body(r#"{"name": "Grace Hopper", "email": "grace@example.no", "country": "us"}"#)
        .send()
        .unwrap();
    assert_eq!(down.status(), 502);
    assert_eq!(
        down.text().unwrap(),
        format!(
            r#"{{"error":"the legacy backend at {legacy} is unreachable: connection refused"}}"#
        )
    );
}

/// `ironfaas ARGS` from `cwd` against `platform` with one more environment variable.
fn run_with_env(
    cwd: &Path,
    platform: &Platform,
    args: &[&str],
    (key, value): (&str, &str),
) -> std::process::Output {
    crate::harness::run_cli(
        cwd,
        args,
        b"",
        &[
            ("OPENFAAS_URL", &platform.url),
            ("IRONFAAS_DATA_DIR", &platform.data.display().to_string()),
            (key, value),
        ],
    )
}
