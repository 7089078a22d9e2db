//! Authentication, secrets and the sandbox: what a function can and cannot see and do.

use std::time::Duration;

use crate::harness::{
    ADMIN_PASSWORD, Platform, Project, anonymous, eventually, http, ok, repo, run_cli, text,
};

/// Every route the API router declares, read from its source so a new route cannot be left
/// out of this test.
fn system_routes() -> Vec<String> {
    let source = std::fs::read_to_string(repo().join("crates/gateway/src/api/mod.rs")).unwrap();
    let mut routes: Vec<String> = source
        .split(".route(")
        .skip(1)
        .filter_map(|rest| {
            rest.trim_start()
                .strip_prefix('"')?
                .split('"')
                .next()
                .map(str::to_string)
        })
        .collect();
    routes.sort();
    routes.dedup();
    routes
}

#[test]
fn every_system_route_needs_credentials() {
    let platform = Platform::start();
    let routes = system_routes();
    let system: Vec<&String> = routes.iter().filter(|r| r.starts_with("/system")).collect();
    assert!(
        system.len() >= 15,
        "the route list was not read: {routes:?}"
    );
    for route in &system {
        let path = route.replace("{name}", "x").replace("{id}", "x");
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = anonymous()
                .request(method.clone(), format!("{}{path}", platform.url))
                .send()
                .unwrap();
            assert_eq!(r.status(), 401, "{method} {path} without credentials");
            assert_eq!(
                r.headers()["www-authenticate"],
                "Basic realm=\"Restricted\""
            );
        }
        let r = http()
            .get(format!("{}{path}", platform.url))
            .send()
            .unwrap();
        assert_ne!(r.status(), 401, "GET {path} with the right credentials");
    }
    assert_eq!(
        anonymous()
            .get(format!("{}/ui/", platform.url))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        anonymous()
            .get(format!("{}/healthz", platform.url))
            .send()
            .unwrap()
            .status(),
        200,
        "health stays public"
    );
    // Wrong passwords are refused, and after ten in a minute the address is refused outright,
    // even with the right password, so guessing is slow.
    let wrong = reqwest::blocking::Client::new();
    for (i, route) in system.iter().cycle().take(10).enumerate() {
        let path = route.replace("{name}", "x").replace("{id}", "x");
        let r = wrong
            .get(format!("{}{path}", platform.url))
            .basic_auth("admin", Some("wrong"))
            .send()
            .unwrap();
        assert_eq!(
            r.status(),
            401,
            "attempt {i}: GET {path} with a wrong password"
        );
    }
    let r = wrong
        .get(format!("{}/system/functions", platform.url))
        .basic_auth("admin", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().unwrap().contains("too many failed logins"));
    assert_eq!(
        http()
            .get(format!("{}/system/functions", platform.url))
            .send()
            .unwrap()
            .status(),
        429
    );
    assert!(
        platform
            .log()
            .contains("basic auth failed for user 'admin'"),
        "failures are logged"
    );
    assert!(
        !platform.log().contains("wrong"),
        "without the password tried"
    );
}

#[test]
fn login_keeps_credentials_per_gateway() {
    let platform = Platform::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().to_str().unwrap();
    let dir = home.path();
    let env = |extra: &[(&'static str, &'static str)]| {
        let mut e = vec![
            ("OPENFAAS_URL", platform.url.as_str()),
            ("OPENFAAS_CONFIG", config),
            ("IRONFAAS_PASSWORD", ""),
        ];
        e.extend_from_slice(extra);
        e
    };
    let refused = run_cli(dir, &["list"], b"", &env(&[]));
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).1.contains("invalid credentials"),
        "{}",
        text(&refused).1
    );
    let bad = run_cli(dir, &["login", "--password-stdin"], b"not-it\n", &env(&[]));
    assert_eq!(bad.status.code(), Some(1));
    ok(&run_cli(
        dir,
        &["login", "--password-stdin"],
        format!("{ADMIN_PASSWORD}\n").as_bytes(),
        &env(&[]),
    ));
    let file = std::fs::metadata(home.path().join("config.yml")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&file.permissions()) & 0o777,
        0o600
    );
    ok(&run_cli(dir, &["list"], b"", &env(&[])));
    ok(&run_cli(dir, &["logout"], b"", &env(&[])));
    assert_eq!(
        run_cli(dir, &["list"], b"", &env(&[])).status.code(),
        Some(1)
    );
}

const SPY: &str = r#"import json, os, socket
def handle(event, context):
    def can(fn):
        try:
            fn()
            return True
        except Exception:
            return False
    def write(path):
        with open(path, "w") as f:
            f.write("x")
    def read(path):
        with open(path) as f:
            return f.read()
    out = {
        "uid": os.getuid(),
        "own_secret": read("/var/openfaas/secrets/own-secret") if os.path.exists("/var/openfaas/secrets/own-secret") else None,
        "other_secret": can(lambda: read("/var/openfaas/secrets/other-secret")),
        "secrets": sorted(os.listdir("/var/openfaas/secrets")) if os.path.isdir("/var/openfaas/secrets") else [],
        "data_dir": can(lambda: os.listdir(os.environ["PLATFORM_DATA"])),
        "data_file": can(lambda: read(os.environ["PLATFORM_DATA"] + "/secrets.key")),
        "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
        "write_tmp": can(lambda: write("/tmp/probe")),
        "write_work": can(lambda: write(os.environ.get("IRONFAAS_WORK_DIR", "/nonexistent") + "/probe")),
        "write_bundle": can(lambda: write("/home/app/probe")),
        "write_etc": can(lambda: write("/etc/probe")),
        "sockets": sorted(os.listdir(os.path.dirname(os.environ["IRONFAAS_SOCKET"]))),
        "connect": None,
    }
    port = event.query.get("port")
    if port:
        out["connect"] = can(lambda: socket.create_connection(("127.0.0.1", int(port)), timeout=2).close())
    return {"body": out}
"#;

const HOG: &str = "def handle(event, context):\n    blocks = [bytearray(1 << 20) for _ in range(int(event.query.get('mb', '1')))]\n    return 'held %d MiB' % len(blocks)\n";

const BOMB: &str = "import os, time\ndef handle(event, context):\n    children, refused = [], 0\n    for _ in range(100):\n        try:\n            pid = os.fork()\n        except OSError:\n            refused += 1\n            continue\n        if pid == 0:\n            time.sleep(5)\n            os._exit(0)\n        children.append(pid)\n    for pid in children:\n        os.kill(pid, 9)\n        os.waitpid(pid, 0)\n    return {'body': {'forked': len(children), 'refused': refused}}\n";

#[test]
fn the_sandbox_keeps_functions_apart() {
    let platform = Platform::start();
    let secret_value = "s3cret-value-4711";
    let project = Project::new();
    let data = platform.data.display().to_string();
    for (name, value) in [("own-secret", secret_value), ("other-secret", "not-yours")] {
        let r = http()
            .post(format!("{}/system/secrets", platform.url))
            .json(&serde_json::json!({"name": name, "value": value}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let again = http()
        .post(format!("{}/system/secrets", platform.url))
        .json(&serde_json::json!({"name": "own-secret", "value": "x"}))
        .send()
        .unwrap();
    assert_eq!(again.status(), 409);
    let missing = http()
        .put(format!("{}/system/secrets", platform.url))
        .json(&serde_json::json!({"name": "nope", "value": "x"}))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    let listed = http()
        .get(format!("{}/system/secrets", platform.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        listed.contains("own-secret") && !listed.contains(secret_value),
        "{listed}"
    );

    let stack = format!(
        "provider:\n  name: openfaas\nfunctions:\n  spy:\n    lang: python3-http\n    handler: ./spy\n    image: spy:1\n    secrets: [own-secret]\n    environment:\n      PLATFORM_DATA: {data}\n  offline:\n    lang: python3-http\n    handler: ./spy\n    image: spy:1\n    environment:\n      PLATFORM_DATA: {data}\n    annotations:\n      com.ironfaas.network: none\n  hog:\n    lang: python3-http\n    handler: ./hog\n    image: hog:1\n    limits:\n      memory: 64Mi\n  bomb:\n    lang: python3-http\n    handler: ./bomb\n    image: bomb:1\n    annotations:\n      com.ironfaas.pids: \"32\"\n"
    );
    project
        .write("stack.yml", &stack)
        .write("spy/handler.py", SPY)
        .write("hog/handler.py", HOG)
        .write("bomb/handler.py", BOMB);
    ok(&platform.cli(project.path(), &["up"]));

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spy: serde_json::Value = http()
        .get(format!("{}/function/spy?port={port}", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        spy["uid"].as_u64().unwrap() >= 200_000,
        "runs as its own unprivileged uid: {spy}"
    );
    assert_eq!(spy["own_secret"], secret_value, "{spy}");
    assert_eq!(
        spy["secrets"],
        serde_json::json!(["own-secret"]),
        "only its declared secret: {spy}"
    );
    assert_eq!(spy["other_secret"], false);
    assert_eq!(
        spy["sockets"],
        serde_json::json!(["s"]),
        "only its own socket, not the other replicas': {spy}"
    );
    assert_eq!(
        (&spy["data_dir"], &spy["data_file"]),
        (&serde_json::json!(false), &serde_json::json!(false)),
        "{spy}"
    );
    assert!(
        spy["pids"].as_u64().unwrap() <= 8,
        "host processes are hidden: {spy}"
    );
    assert_eq!(
        (&spy["write_tmp"], &spy["write_work"]),
        (&serde_json::json!(true), &serde_json::json!(true)),
        "{spy}"
    );
    assert_eq!(
        (&spy["write_bundle"], &spy["write_etc"]),
        (&serde_json::json!(false), &serde_json::json!(false)),
        "{spy}"
    );
    assert_eq!(
        spy["connect"], true,
        "with the network it reaches 127.0.0.1:{port}"
    );
    let offline: serde_json::Value = http()
        .get(format!("{}/function/offline?port={port}", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        offline["connect"], false,
        "network none cannot connect out: {offline}"
    );

    // A memory hog is killed at its limit; a neighbour keeps answering; logs and describe say why.
    let hog = http()
        .get(format!("{}/function/hog?mb=200", platform.url))
        .send()
        .unwrap();
    assert!(hog.status().is_server_error(), "{}", hog.status());
    assert_eq!(
        http()
            .get(format!("{}/function/spy", platform.url))
            .send()
            .unwrap()
            .status(),
        200
    );
    eventually(
        "the hog's death in describe",
        Duration::from_secs(20),
        || {
            let d: serde_json::Value = http()
                .get(format!("{}/system/function/hog", platform.url))
                .send()
                .unwrap()
                .json()
                .unwrap();
            d["instances"][0]["lastExit"]
                .as_str()
                .unwrap_or_default()
                .contains("out of memory (limit 64Mi)")
        },
    );
    let logs = ok(&platform.cli(project.path(), &["logs", "hog"]));
    assert!(
        logs.contains("killed: out of memory (limit 64Mi)"),
        "{logs}"
    );
    eventually("the hog back", Duration::from_secs(30), || {
        http()
            .get(format!("{}/function/hog?mb=8", platform.url))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });

    let bomb: serde_json::Value = http()
        .get(format!("{}/function/bomb", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(
        bomb["forked"].as_u64().unwrap() < 32 && bomb["refused"].as_u64().unwrap() > 0,
        "the pids limit stops it: {bomb}"
    );
    assert_eq!(
        http()
            .get(format!("{}/function/spy", platform.url))
            .send()
            .unwrap()
            .status(),
        200
    );

    // The secret's value appears nowhere: not in the platform's output, not in any log.
    assert!(
        !platform.log().contains(secret_value),
        "the secret is in serve's output"
    );
    for entry in walk(&platform.data.join("logs")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret_value),
            "the secret is in {}",
            entry.display()
        );
    }
    let describe = ok(&platform.cli(project.path(), &["describe", "spy", "--json"]));
    assert!(describe.contains("own-secret") && !describe.contains(secret_value));

    let stack_missing = "provider:\n  name: openfaas\nfunctions:\n  needy:\n    lang: python3-http\n    handler: ./spy\n    image: spy:1\n    secrets: [absent]\n";
    project.write("stack.yml", stack_missing);
    let refused = platform.cli(project.path(), &["up"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).1.contains("unable to find secret: absent"),
        "{}",
        text(&refused).1
    );
}

#[test]
fn protected_functions_need_credentials() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  private:\n    lang: bash-streaming\n    handler: ./f\n    image: f:1\n    annotations:\n      com.ironfaas.auth: basic\n  public:\n    lang: bash-streaming\n    handler: ./f\n    image: f:1\n",
        )
        .write("f/handler.sh", "echo ok\n");
    ok(&platform.cli(project.path(), &["up"]));
    assert_eq!(
        anonymous()
            .get(format!("{}/function/private", platform.url))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        anonymous()
            .post(format!("{}/async-function/private", platform.url))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http()
            .get(format!("{}/function/private", platform.url))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "ok\n"
    );
    assert_eq!(
        anonymous()
            .get(format!("{}/function/public", platform.url))
            .send()
            .unwrap()
            .text()
            .unwrap(),
        "ok\n"
    );
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Without the sandbox nothing can show a file at /var/openfaas/secrets, so a replica finds its
/// declared secrets in a folder of its own named by IRONFAAS_SECRETS_DIR, readable by the
/// platform's user only; a function that declares none gets no such folder.
#[test]
fn without_the_sandbox_secrets_come_through_their_own_folder() {
    let platform = Platform::start_with(&["--sandbox", "off"]);
    let r = http()
        .post(format!("{}/system/secrets", platform.url))
        .json(&serde_json::json!({"name": "api-key", "value": "k-2718"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  keyed:\n    lang: bash-streaming\n    handler: ./show\n    image: show:1\n    secrets: [api-key]\n  plain:\n    lang: bash-streaming\n    handler: ./show\n    image: show:1\n",
        )
        .write(
            "show/handler.sh",
            "#!/bin/sh\nif [ -n \"$IRONFAAS_SECRETS_DIR\" ]; then\n  echo \"key=$(cat \"$IRONFAAS_SECRETS_DIR/api-key\") mode=$(stat -c %a \"$IRONFAAS_SECRETS_DIR/api-key\") dir=$IRONFAAS_SECRETS_DIR\"\nelse\n  echo none\nfi\n",
        );
    ok(&platform.cli(project.path(), &["up"]));
    let keyed = http()
        .post(format!("{}/function/keyed", platform.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(keyed.starts_with("key=k-2718 mode=400 dir="), "{keyed}");
    let dir = keyed.trim().rsplit("dir=").next().unwrap();
    assert!(
        dir.starts_with(&platform.data.display().to_string()),
        "the folder is in the data dir: {dir}"
    );
    let plain = http()
        .post(format!("{}/function/plain", platform.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(plain.trim(), "none");
}

#[test]
fn auth_off_and_on_are_both_accepted_as_flags() {
    for (flag, status) in [
        (&["--auth", "off"][..], 200),
        (&["--auth", "on"][..], 401),
        (&["--auth"][..], 401),
    ] {
        let platform = Platform::start_with(flag);
        let r = anonymous()
            .get(format!("{}/system/functions", platform.url))
            .send()
            .unwrap();
        assert_eq!(r.status(), status, "serve {flag:?}");
    }
}
