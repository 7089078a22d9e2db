//! The web portal in a real browser: the platform with a Python and a Bash function, then the
//! browser tests of tests/ui (`node --test`, playwright-core driving Debian's chromium), which
//! leave a screenshot of each page in `<target dir>/ui-screenshots`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::harness::{ADMIN_PASSWORD, Platform, Project, http, ok, repo};

const STACK: &str = r#"provider:
  name: openfaas
functions:
  hello:
    lang: python3-http
    handler: ./hello
    image: ui-hello:1
    annotations:
      com.openfaas.retry.attempts: "1"
  shout:
    lang: bash-streaming
    handler: ./shout
    image: ui-shout:1
"#;

const HELLO: &str = r#"def handle(event, context):
    text = event.body.decode() if event.body else ""
    print("hello got " + (text or "(nothing)"), flush=True)
    if event.query.get("fail"):
        return {"statusCode": 500, "body": "failing on purpose\n"}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": {"hello": text or "world"}}
"#;

const SHOUT: &str = "tr '[:lower:]' '[:upper:]'\n";

const FIX: &str = "run scripts/install-test-deps";

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Where the screenshots go: `ui-screenshots` in the target dir.
fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("ui-screenshots")
}

#[test]
fn portal_serves_its_files_from_the_binary() {
    let platform = Platform::start();
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = no_redirects.get(&platform.url).send().unwrap();
    assert_eq!(root.status(), 307);
    assert_eq!(root.headers()["location"], "/ui/");
    for (path, content_type) in [
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/functions/anything", "text/html; charset=utf-8"),
        ("/ui/js/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let answer = http()
            .get(format!("{}{path}", platform.url))
            .send()
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["content-type"], content_type, "{path}");
        assert_eq!(answer.headers()["cache-control"], "no-cache", "{path}");
        let etag = answer.headers()["etag"].clone();
        let again = http()
            .get(format!("{}{path}", platform.url))
            .header("If-None-Match", etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = http()
        .get(format!("{}/ui/nothing.js", platform.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn portal_works_in_a_real_browser() {
    let chromium = chromium();
    assert!(
        chromium.is_file(),
        "{} is missing: {FIX} (it installs Debian's chromium)",
        chromium.display()
    );
    let tests = repo().join("tests/ui");
    assert!(
        tests.join("node_modules/playwright-core").is_dir(),
        "tests/ui/node_modules is missing: {FIX} (it runs npm ci in tests/ui)"
    );

    let platform = Platform::start();
    let project = Project::new();
    project
        .write("stack.yml", STACK)
        .write("hello/handler.py", HELLO)
        .write("shout/handler.sh", SHOUT);
    ok(&platform.cli(project.path(), &["up"]));

    let shots = screenshot_dir();
    let started = Instant::now();
    let output = Command::new("node")
        .args(["--test", "--test-timeout=180000", "tests/ui/"])
        .current_dir(repo())
        .env("IRONFAAS_URL", &platform.url)
        .env("IRONFAAS_USER", "admin")
        .env("IRONFAAS_PASSWORD", ADMIN_PASSWORD)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap_or_else(|e| panic!("cannot run node: {e}; {FIX}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser tests failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!(
        "browser tests passed in {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    for page in [
        "functions",
        "function",
        "deploy",
        "async",
        "functions-phone",
    ] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
}
