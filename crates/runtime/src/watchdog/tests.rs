use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use super::*;
use crate::testutil::{unix_request, wait_for_socket};

fn config(dir: &Path, script: &str, extra: &[(&str, &str)]) -> WatchdogConfig {
    let script_path = dir.join("handler.sh");
    std::fs::write(&script_path, script).unwrap();
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("fprocess".into(), format!("bash {}", script_path.display()));
    env.insert(
        "IRONFAAS_SOCKET".into(),
        dir.join("w.sock").display().to_string(),
    );
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    WatchdogConfig::from_env(&|k| env.get(k).cloned()).unwrap()
}

async fn start(
    config: WatchdogConfig,
) -> (
    PathBuf,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let ListenAddr::Unix(path) = config.listen.clone() else {
        panic!("unix")
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(config, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    wait_for_socket(&path).await;
    (path, tx, task)
}

fn post(uri: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", "x")
        .header("x-custom", "hello")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn streaming_passes_body_and_cgi_env() {
    let dir = tempfile::tempdir().unwrap();
    let script = "echo \"$Http_Method $Http_Path $Http_Query $Http_X_Custom\"; tr a-z A-Z\n";
    let (sock, stop, task) = start(config(dir.path(), script, &[])).await;
    let (status, headers, body) = unix_request(&sock, post("/sub/p?x=1", "abc")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(body, "POST /sub/p x=1 hello\nABC");
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// A streaming answer starts with the process's first output, not before it (so a process that
/// reads its whole body first answers only once it has), and the rest still streams after it.
#[tokio::test]
async fn streaming_answers_with_the_first_output() {
    let dir = tempfile::tempdir().unwrap();
    let script = "sleep 0.4; echo first; sleep 0.5; echo second\n";
    let (sock, _stop, _task) = start(config(dir.path(), script, &[])).await;
    let stream = tokio::net::UnixStream::connect(&sock).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let started = Instant::now();
    let response = sender.send_request(post("/", "")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "answered {:?} after the call, before the process wrote anything",
        started.elapsed()
    );
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(
        first, "first\n",
        "the first output comes alone, before the rest"
    );
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second\n");
}

#[tokio::test]
async fn serializing_reports_failures_and_duration() {
    let dir = tempfile::tempdir().unwrap();
    let script =
        "read line; if [ \"$line\" = fail ]; then echo oops; exit 3; fi; echo \"got $line\"\n";
    let cfg = config(
        dir.path(),
        script,
        &[("mode", "serializing"), ("content_type", "text/plain")],
    );
    let (sock, _stop, _task) = start(cfg).await;
    let (status, headers, body) = unix_request(&sock, post("/", "hi\n")).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"got hi\n"[..]));
    assert_eq!(headers["content-type"], "text/plain");
    let seconds: f64 = headers["x-duration-seconds"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds > 0.0);
    let (status, _, body) = unix_request(&sock, post("/", "fail\n")).await;
    assert_eq!(status, 500);
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("exit status: 3") && body.contains("oops"),
        "{body}"
    );
}

#[tokio::test]
async fn exec_timeout_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "sleep 30\n",
        &[("mode", "serializing"), ("exec_timeout", "300ms")],
    );
    let (sock, _stop, _task) = start(cfg).await;
    let started = Instant::now();
    let (status, _, body) = unix_request(&sock, post("/", "")).await;
    assert_eq!(status, 504, "{body:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn max_inflight_answers_429() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "sleep 1; echo done\n",
        &[("mode", "serializing"), ("max_inflight", "1")],
    );
    let (sock, _stop, _task) = start(cfg).await;
    let sock2 = sock.clone();
    let first = tokio::spawn(async move { unix_request(&sock2, post("/", "")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, headers, _) = unix_request(&sock, post("/", "")).await;
    assert_eq!(status, 429);
    assert_eq!(headers["x-openfaas-internal"], "faas-middleware");
    assert_eq!(first.await.unwrap().0, 200);
}

#[tokio::test]
async fn health_answers_without_running_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}\n", marker.display());
    let (sock, _stop, _task) = start(config(dir.path(), &script, &[])).await;
    let req = Request::get("/_/health")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = unix_request(&sock, req).await;
    assert_eq!((status.as_u16(), &body[..]), (200, &b"OK"[..]));
    assert!(!marker.exists());
}

#[test]
fn config_errors_are_clear() {
    let none = |_: &str| None;
    assert!(
        WatchdogConfig::from_env(&none)
            .unwrap_err()
            .contains("fprocess is not set")
    );
    let env = |k: &str| match k {
        "fprocess" => Some("cat".to_string()),
        "mode" => Some("http".to_string()),
        _ => None,
    };
    assert!(
        WatchdogConfig::from_env(&env)
            .unwrap_err()
            .contains("mode 'http'")
    );
    let env = |k: &str| match k {
        "fprocess" => Some("cat".to_string()),
        "exec_timeout" => Some("soon".to_string()),
        _ => None,
    };
    assert!(
        WatchdogConfig::from_env(&env)
            .unwrap_err()
            .contains("exec_timeout")
    );
}
