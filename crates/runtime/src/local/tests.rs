//! The local provider with real processes: a tiny Python HTTP server as the function.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use ironfaas_spec::provider::{Endpoint, Provider, ProviderError};
use ironfaas_spec::template::{Listen, Mode};
use ironfaas_spec::wire::{FunctionDeployment, FunctionSpec};
use ironfaas_store::bundle::pack;
use ironfaas_store::manifest::{FORMAT, Manifest};

use super::*;
use crate::testutil::unix_request;

const SERVER: &str = r#"
import os, socketserver, http.server, sys
if os.environ.get("CRASH"):
    print("boom: crashing on purpose", flush=True)
    sys.exit(3)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (os.environ.get("VERSION", "v1") + " " + os.environ["HOSTNAME"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        r, _ = super().get_request()
        return r, ("local", 0)
S(os.environ["IRONFAAS_SOCKET"], H).serve_forever()
"#;

async fn provider_with_image(data: &Path, image: &str) -> Arc<LocalProvider> {
    let store = FunctionStore::local(&data.join("store")).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("server.py"), SERVER).unwrap();
    Manifest {
        format: FORMAT,
        function: "echo".into(),
        template: "test".into(),
        mode: Mode::Http,
        listen: Listen::Unix,
        fprocess: "python3 server.py".into(),
        environment: BTreeMap::new(),
        built_at: String::new(),
        start_fd: false,
    }
    .write_to(src.path())
    .unwrap();
    let packed = pack(src.path()).unwrap();
    store
        .put_bundle(image, packed.file.path(), &packed.digest)
        .await
        .unwrap();
    let mut config = LocalConfig::for_tests(data);
    config.ready_timeout = Duration::from_secs(20);
    config.stop_grace = Duration::from_secs(2);
    LocalProvider::open(config, store).await.unwrap()
}

fn deployment(name: &str, env: &[(&str, &str)]) -> FunctionDeployment {
    FunctionDeployment {
        service: name.into(),
        spec: FunctionSpec {
            image: "echo".into(),
            env_vars: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        },
    }
}

async fn call(provider: &LocalProvider, name: &str) -> String {
    let route = provider.route(name, "openfaas-fn").expect("route");
    let backends = route.backends();
    let backend = backends.first().expect("a ready backend");
    let Endpoint::Unix(sock) = &backend.endpoint else {
        panic!("unix endpoint")
    };
    let req = Request::get("/")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = unix_request(sock, req).await;
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn deploy_call_scale_remove() {
    let data = tempfile::tempdir().unwrap();
    let p = provider_with_image(data.path(), "echo:latest").await;
    p.deploy(deployment("echo", &[])).await.unwrap();
    let status = p.status(&FunctionRef::parse("echo")).await.unwrap();
    assert_eq!((status.replicas, status.available_replicas), (1, 1));
    assert_eq!(status.spec.image, "echo:latest");
    assert!(status.digest.starts_with("sha256:"));
    assert!(call(&p, "echo").await.starts_with("v1 echo-1"));

    let again = p.deploy(deployment("echo", &[])).await.unwrap_err();
    assert!(matches!(again, ProviderError::AlreadyExists(_)));

    p.scale(&FunctionRef::parse("echo"), 3).await.unwrap();
    let route = p.route("echo", "openfaas-fn").unwrap();
    wait_until("3 ready backends", || route.backends().len() == 3).await;
    p.scale(&FunctionRef::parse("echo"), 1).await.unwrap();
    assert_eq!(
        route.backends().len(),
        1,
        "scale down takes replicas out of routing at once"
    );
    let too_many = p.scale(&FunctionRef::parse("echo"), 21).await.unwrap_err();
    assert!(too_many.to_string().contains("maximum is 20"), "{too_many}");

    p.remove(&FunctionRef::parse("echo")).await.unwrap();
    assert!(p.route("echo", "openfaas-fn").is_none());
    assert!(matches!(
        p.status(&FunctionRef::parse("echo")).await,
        Err(ProviderError::NotFound(_))
    ));
    assert!(p.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn crashed_replica_is_restarted() {
    let data = tempfile::tempdir().unwrap();
    let p = provider_with_image(data.path(), "echo:latest").await;
    p.deploy(deployment("echo", &[])).await.unwrap();
    let key = FunctionRef::parse("echo");
    let pid = p.status(&key).await.unwrap().instances[0].pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let route = p.route("echo", "openfaas-fn").unwrap();
    wait_until("the dead replica leaves routing", || {
        route.backends().is_empty()
    })
    .await;
    wait_until("a restarted replica", || route.backends().len() == 1).await;
    let status = p.status(&key).await.unwrap();
    assert_eq!(status.instances[0].restarts, 1);
    assert_ne!(status.instances[0].pid, Some(pid));
    assert!(call(&p, "echo").await.starts_with("v1"));
}

#[tokio::test]
async fn failed_start_is_explained_with_its_output() {
    let data = tempfile::tempdir().unwrap();
    let p = provider_with_image(data.path(), "echo:latest").await;
    let err = p
        .deploy(deployment("broken", &[("CRASH", "1")]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited (exit status: 3)"), "{err}");
    assert!(err.contains("boom: crashing on purpose"), "{err}");
}

#[tokio::test]
async fn rolling_update_and_rollback() {
    let data = tempfile::tempdir().unwrap();
    let p = provider_with_image(data.path(), "echo:latest").await;
    p.deploy(deployment("echo", &[])).await.unwrap();
    p.update(deployment("echo", &[("VERSION", "v2")]))
        .await
        .unwrap();
    assert!(call(&p, "echo").await.starts_with("v2"));
    let err = p
        .update(deployment("echo", &[("VERSION", "v3"), ("CRASH", "1")]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert!(
        call(&p, "echo").await.starts_with("v2"),
        "the previous version keeps serving"
    );
    let status = p.status(&FunctionRef::parse("echo")).await.unwrap();
    assert_eq!(
        status.spec.env_vars.get("VERSION").map(String::as_str),
        Some("v2")
    );
    let missing = p.update(deployment("nope", &[])).await.unwrap_err();
    assert!(matches!(missing, ProviderError::NotFound(_)));
}

#[tokio::test]
async fn functions_come_back_after_reopen() {
    let data = tempfile::tempdir().unwrap();
    {
        let p = provider_with_image(data.path(), "echo:latest").await;
        p.deploy(deployment("echo", &[("VERSION", "kept")]))
            .await
            .unwrap();
        p.scale(&FunctionRef::parse("echo"), 2).await.unwrap();
        p.shutdown().await;
    }
    let p = provider_with_image(data.path(), "echo:latest").await;
    let route = p.route("echo", "openfaas-fn").expect("restored");
    wait_until("2 restored replicas", || route.backends().len() == 2).await;
    assert!(call(&p, "echo").await.starts_with("kept"));
}

#[tokio::test]
async fn bad_deployments_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let p = provider_with_image(data.path(), "echo:latest").await;
    let bad_name = p.deploy(deployment("Bad_Name", &[])).await.unwrap_err();
    assert!(matches!(bad_name, ProviderError::Invalid(_)), "{bad_name}");
    let mut unknown = deployment("x", &[]);
    unknown.spec.image = "nothere:1".into();
    let e = p.deploy(unknown).await.unwrap_err().to_string();
    assert!(e.contains("not in the function store"), "{e}");
    let mut secret = deployment("y", &[]);
    secret.spec.secrets = vec!["db-password".into()];
    let e = p.deploy(secret).await.unwrap_err().to_string();
    assert!(e.contains("unable to find secret: db-password"), "{e}");
    assert!(p.list("").await.unwrap().is_empty());
}
