//! Request limits: body and header sizes, slow clients, and how many connections are open.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{Platform, Project, http, ok, run_cli};

const STACK: &str = "provider:\n  name: openfaas\nfunctions:\n  count:\n    lang: bash-streaming\n    handler: ./count\n    image: count:1\n    annotations:\n      com.ironfaas.route: /api/count\n";

fn deployed(flags: &[&str]) -> Platform {
    let platform = Platform::start_with(flags);
    let project = Project::new();
    project
        .write("stack.yml", STACK)
        .write("count/handler.sh", "wc -c\n");
    ok(&platform.cli(project.path(), &["up"]));
    platform
}

/// A fresh client: the gateway closes idle connections quickly in these tests.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Sends `head` (and `body`) on a raw connection and reads what comes back until it closes or
/// `wait` passes; returns the text and how long it took.
fn raw(platform: &Platform, head: &str, body: &[u8], wait: Duration) -> (String, Duration) {
    let addr = platform.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn bodies_over_the_limit_are_refused_with_413() {
    let platform = deployed(&["--max-body", "1Ki", "--max-async-body", "2Ki"]);
    let call = |path: &str, body: reqwest::blocking::Body| {
        let r = client()
            .post(format!("{}{path}", platform.url))
            .body(body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(
        call("/function/count", vec![b'x'; 1024].into()),
        (200, "1024\n".into())
    );
    assert_eq!(
        call("/api/count", vec![b'x'; 1024].into()),
        (200, "1024\n".into())
    );
    for path in ["/function/count", "/api/count"] {
        let (status, text) = call(path, vec![b'x'; 1025].into());
        assert_eq!(status, 413, "{path}: {text}");
        assert!(
            text.contains("larger than the limit of 1024 bytes") && text.contains("--max-body"),
            "{text}"
        );
        // Without a Content-Length the gateway counts while it streams.
        let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunks: Vec<u8> = (0..8)
            .flat_map(|_| [b"200\r\n".as_slice(), &[b'y'; 512], b"\r\n"].concat())
            .chain(*b"0\r\n\r\n")
            .collect();
        let (answer, _) = raw(&platform, &head, &chunks, Duration::from_secs(10));
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{path} chunked: {answer}"
        );
        assert!(answer.contains("--max-body"), "{answer}");
    }
    let r = client()
        .post(format!("{}/async-function/count", platform.url))
        .body(vec![b'x'; 2049])
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().unwrap().contains("--max-async-body"));
    let r = client()
        .post(format!("{}/async-function/count", platform.url))
        .body(vec![b'x'; 2048])
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        http()
            .get(format!("{}/function/count", platform.url))
            .send()
            .unwrap()
            .status(),
        200,
        "the function is fine"
    );
}

#[test]
fn oversized_headers_get_431() {
    let platform = deployed(&["--max-header-size", "8Ki"]);
    let r = client()
        .get(format!("{}/function/count", platform.url))
        .header("X-Big", "b".repeat(4 << 10))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/function/count", platform.url))
        .header("X-Big", "b".repeat(9 << 10))
        .send()
        .unwrap();
    assert_eq!(r.status(), 431);
}

#[test]
fn slow_clients_are_cut_off() {
    let platform = deployed(&["--header-timeout", "1s", "--read-timeout", "2s"]);
    // Headers that never end: the connection is closed after the header timeout.
    let (answer, took) = raw(
        &platform,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"",
        Duration::from_secs(10),
    );
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    // A body that stops halfway: 408 after the read timeout.
    let head = "POST /async-function/count HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n";
    let (answer, took) = raw(&platform, head, &[b'z'; 10], Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("did not arrive within the read timeout (2s)"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "answered after {took:?}"
    );
    // Nothing was queued.
    let queued: serde_json::Value = http()
        .get(format!("{}/system/async", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(!queued.to_string().contains("\"pending\":1"), "{queued}");
}

#[test]
fn async_bodies_being_read_share_a_memory_budget() {
    let platform = deployed(&[
        "--max-async-body",
        "64Ki",
        "--async-body-memory",
        "64Ki",
        "--async-workers",
        "0",
    ]);
    let addr = platform.url.trim_start_matches("http://").to_string();
    // A client that has sent half of a 60 KiB body holds 60 KiB of the budget.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /async-function/count HTTP/1.1\r\nHost: x\r\nContent-Length: 61440\r\n\r\n",
    )
    .unwrap();
    slow.write_all(&[b'a'; 30720]).unwrap();
    let send = |len: usize| {
        client()
            .post(format!("{}/async-function/count", platform.url))
            .body(vec![b'b'; len])
            .send()
            .unwrap()
    };
    // Until the gateway has read the slow request's headers, an 8 KiB call still fits.
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let r = send(8 << 10);
        if r.status() != 202 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let text = refused.text().unwrap();
    assert!(text.contains("--async-body-memory (65536 bytes)"), "{text}");
    assert_eq!(
        send(2 << 10).status(),
        202,
        "what is left of the budget is used"
    );
    // Once the slow body has arrived and is stored, its room is free again.
    slow.write_all(&[b'a'; 30720]).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = [0u8; 12];
    slow.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 202");
    assert_eq!(send(60 << 10).status(), 202);
    // The budget must hold at least the largest body.
    let data = tempfile::tempdir().unwrap();
    let out = run_cli(
        data.path(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--max-async-body",
            "2Mi",
            "--async-body-memory",
            "1Mi",
        ],
        b"",
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--async-body-memory (1048576 bytes) must be at least --max-async-body"),
        "{stderr}"
    );
}

#[test]
fn connections_over_the_limit_wait_their_turn() {
    let platform = deployed(&["--max-connections", "3", "--header-timeout", "2s"]);
    let addr = platform.url.trim_start_matches("http://").to_string();
    let idle: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let waiting = client()
        .get(format!("{}/healthz", platform.url))
        .timeout(Duration::from_millis(700))
        .send();
    assert!(
        waiting.is_err(),
        "a fourth connection was served: {waiting:?}"
    );
    drop(idle);
    let served = client()
        .get(format!("{}/healthz", platform.url))
        .timeout(Duration::from_secs(5))
        .send()
        .unwrap();
    assert_eq!(served.status(), 200);
}
