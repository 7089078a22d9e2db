//! The function store on a real S3-compatible server (s3s-fs over HTTP with SigV4), pushed to
//! through the gateway or straight to S3.

use std::process::{Command, Stdio};

use ironfaas_store::test_support::S3TestServer;

use crate::harness::{Platform, Project, eventually, http, ironfaas, ok, run_cli, text};

const STACK: &str = "provider:\n  name: openfaas\nfunctions:\n  greet:\n    lang: python3-http\n    handler: ./greet\n    image: registry.example.no/team/greet:1.0\n";

fn s3() -> (tempfile::TempDir, S3TestServer) {
    let root = tempfile::tempdir().unwrap();
    let server = S3TestServer::start(root.path(), "e2e-key", "e2e-secret-0123456789").unwrap();
    server.create_bucket("functions").unwrap();
    (root, server)
}

fn project() -> Project {
    let p = Project::new();
    p.write("stack.yml", STACK).write(
        "greet/handler.py",
        "def handle(event, context):\n    return 'hello from s3'\n",
    );
    p
}

#[test]
fn push_deploy_and_restart_from_s3() {
    let (_root, server) = s3();
    let data = tempfile::tempdir().unwrap();
    let store = "s3://functions/e2e";
    let platform = Platform::start_in_env(
        data.path().to_path_buf(),
        None,
        &["--store", store],
        &server.env(),
    );
    // The client builds into its own data dir and pushes through the gateway.
    let laptop = tempfile::tempdir().unwrap();
    let project = project();
    let env = [
        ("OPENFAAS_URL", platform.url.as_str()),
        ("IRONFAAS_DATA_DIR", laptop.path().to_str().unwrap()),
    ];
    let up = run_cli(project.path(), &["up"], b"", &env);
    assert!(up.status.success(), "{:?}", text(&up));
    assert!(
        text(&up)
            .1
            .contains("pushed registry.example.no/team/greet:1.0"),
        "{}",
        text(&up).1
    );
    let call = || {
        http()
            .get(format!("{}/function/greet", platform.url))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert_eq!(call(), "hello from s3");
    let digest = ok(&run_cli(
        project.path(),
        &["describe", "greet", "--json"],
        b"",
        &env,
    ));
    let digest: serde_json::Value = serde_json::from_str(&digest).unwrap();
    let hex = digest["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    assert!(
        server
            .object_path("functions", &format!("e2e/blobs/sha256/{hex}"))
            .is_file(),
        "the bundle is in the bucket"
    );
    let listed = ok(&run_cli(project.path(), &["store", "list"], b"", &env));
    assert!(
        listed.contains("registry.example.no/team/greet:1.0") && listed.contains(&hex[..12]),
        "{listed}"
    );

    // Restart with an empty bundle cache: the function comes back from S3.
    platform.kill();
    std::fs::remove_dir_all(data.path().join("bundles")).unwrap();
    let platform = Platform::start_in_env(
        data.path().to_path_buf(),
        None,
        &["--store", store],
        &server.env(),
    );
    eventually(
        "greet answers after the restart",
        std::time::Duration::from_secs(30),
        || {
            http()
                .get(format!("{}/function/greet", platform.url))
                .send()
                .is_ok_and(|r| r.status() == 200)
        },
    );

    // A push whose body does not match its digest is refused and leaves nothing behind.
    let bad = http()
        .put(format!(
            "{}/system/store/bundles?image=evil:1&digest=sha256:{}",
            platform.url,
            "0".repeat(64)
        ))
        .body("not a bundle")
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text().unwrap().contains("sha256"),
        "the error names the digest"
    );
    assert!(
        !server
            .object_path("functions", &format!("e2e/blobs/sha256/{}", "0".repeat(64)))
            .exists()
    );
    let images = ok(&run_cli(
        project.path(),
        &["store", "list", "--json"],
        b"",
        &[("OPENFAAS_URL", platform.url.as_str())],
    ));
    assert!(!images.contains("evil"), "{images}");

    // A corrupted bundle in the bucket is refused when a function is deployed from it.
    std::fs::write(
        server.object_path("functions", &format!("e2e/blobs/sha256/{hex}")),
        b"tampered",
    )
    .unwrap();
    std::fs::remove_dir_all(data.path().join("bundles")).unwrap();
    let deploy = http()
        .post(format!("{}/system/functions", platform.url))
        .json(&serde_json::json!({"service": "greet2", "image": "registry.example.no/team/greet:1.0"}))
        .send()
        .unwrap();
    assert_eq!(deploy.status(), 500);
    assert!(deploy.text().unwrap().contains("corrupt"));
}

#[test]
fn push_straight_to_s3_and_wrong_credentials_are_explained() {
    let (_root, server) = s3();
    let project = project();
    let laptop = tempfile::tempdir().unwrap();
    let mut env: Vec<(&str, String)> = server.env();
    env.push(("IRONFAAS_DATA_DIR", laptop.path().display().to_string()));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ok(&run_cli(project.path(), &["build"], b"", &env_refs));
    ok(&run_cli(
        project.path(),
        &["push", "--store", "s3://functions/direct"],
        b"",
        &env_refs,
    ));

    let data = tempfile::tempdir().unwrap();
    let platform = Platform::start_in_env(
        data.path().to_path_buf(),
        None,
        &["--store", "s3://functions/direct"],
        &server.env(),
    );
    let deploy = run_cli(
        project.path(),
        &["deploy"],
        b"",
        &[("OPENFAAS_URL", platform.url.as_str())],
    );
    assert!(deploy.status.success(), "{:?}", text(&deploy));
    assert_eq!(
        http()
            .get(format!("{}/function/greet", platform.url))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "hello from s3"
    );

    let mut wrong = server.env();
    for (k, v) in &mut wrong {
        if *k == "AWS_SECRET_ACCESS_KEY" {
            *v = "not-the-secret".into();
        }
    }
    let out = Command::new(ironfaas())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "s3://functions/direct",
            "--data-dir",
        ])
        .arg(data.path().join("other"))
        .envs(wrong.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("credentials") || stderr.contains("secret"),
        "{stderr}"
    );
}
