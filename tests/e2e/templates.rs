//! Each template's function answers with method, path, query, headers and body passed through.

use std::time::{Duration, Instant};

use crate::harness::{Platform, Project, http, native_echo, ok};

const STACK: &str = r#"
version: 1.0
provider:
  name: openfaas
functions:
  py-echo:
    lang: python3-http
    handler: ./py-echo
    image: py-echo:test
  node-echo:
    lang: node
    handler: ./node-echo
    image: node-echo:test
  bash-echo:
    lang: bash-streaming
    handler: ./bash-echo
    image: bash-echo:test
    environment:
      content_type: text/plain
  native-echo:
    lang: binary
    handler: ./native-echo
    image: native-echo:test
"#;

const PY_HANDLER: &str = r#"
def handle(event, context):
    return {
        "statusCode": 201,
        "headers": {"X-Handled-By": "python"},
        "body": {
            "method": event.method,
            "path": event.path,
            "a": event.query.get("a"),
            "b": event.query.getlist("b"),
            "xtest": event.headers.get("x-TEST"),
            "body": event.body.decode(),
            "hostname": context.hostname,
        },
    }
"#;

const NODE_HANDLER: &str = r#"
module.exports = async (event, context) => {
  return context.status(201).headers({ 'X-Handled-By': 'node' }).succeed({
    method: event.method, path: event.path, a: event.query.a, b: event.query.b,
    xtest: event.headers['x-test'], body: event.body,
  });
};
"#;

const BASH_HANDLER: &str = r#"body=$(cat)
echo "method=$Http_Method path=$Http_Path query=$Http_Query xtest=$Http_X_Test body=$body"
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("stack.yml", STACK)
        .write("py-echo/handler.py", PY_HANDLER)
        .write("node-echo/handler.js", NODE_HANDLER)
        .write("bash-echo/handler.sh", BASH_HANDLER)
        .install_executable(native_echo(), "native-echo/handler");
    p
}

fn call(url: &str, function: &str) -> reqwest::blocking::Response {
    http()
        .post(format!("{url}/function/{function}/sub/path?a=1&b=2&b=3"))
        .header("X-Test", "hello")
        .header("Content-Type", "text/plain")
        .body("payload")
        .send()
        .expect("call")
}

#[test]
fn every_template_passes_requests_through() {
    let platform = Platform::start();
    let project = project();
    let stdout = ok(&platform.cli(project.path(), &["up"]));
    for name in ["py-echo", "node-echo", "bash-echo", "native-echo"] {
        assert!(
            stdout.contains(&format!("{}/function/{name}", platform.url)),
            "{name} URL missing: {stdout}"
        );
    }

    let py = call(&platform.url, "py-echo");
    assert_eq!(py.status(), 201);
    assert_eq!(py.headers()["x-handled-by"], "python");
    assert_eq!(py.headers()["content-type"], "application/json");
    for header in ["x-call-id", "x-start-time", "x-duration-seconds"] {
        assert!(py.headers().contains_key(header), "{header} missing");
    }
    let v: serde_json::Value = py.json().unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/sub/path");
    assert_eq!(v["a"], "1");
    assert_eq!(v["b"], serde_json::json!(["2", "3"]));
    assert_eq!(v["xtest"], "hello");
    assert_eq!(v["body"], "payload");
    assert_eq!(v["hostname"], "py-echo-1");

    let node = call(&platform.url, "node-echo");
    assert_eq!(node.status(), 201);
    assert_eq!(node.headers()["x-handled-by"], "node");
    let v: serde_json::Value = node.json().unwrap();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/sub/path");
    assert_eq!(v["a"], "1");
    assert_eq!(v["b"], serde_json::json!(["2", "3"]));
    assert_eq!(v["xtest"], "hello");
    assert_eq!(v["body"], "payload");

    let bash = call(&platform.url, "bash-echo");
    assert_eq!(bash.status(), 200);
    assert_eq!(bash.headers()["content-type"], "text/plain");
    assert_eq!(
        bash.text().unwrap(),
        "method=POST path=/sub/path query=a=1&b=2&b=3 xtest=hello body=payload\n"
    );

    let native = call(&platform.url, "native-echo");
    assert_eq!(native.status(), 200);
    assert_eq!(
        native.text().unwrap(),
        "method=POST\npath=/sub/path\nquery=a=1&b=2&b=3\nx-test=hello\nbody=payload"
    );

    // Other methods pass through too, and a caller's call id is kept.
    let put = http()
        .put(format!("{}/function/native-echo", platform.url))
        .header("X-Call-Id", "my-call-42")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(put.headers()["x-call-id"], "my-call-42");
    assert!(put.text().unwrap().starts_with("method=PUT\npath=/\n"));
    let get = http()
        .get(format!("{}/function/py-echo?a=z", platform.url))
        .send()
        .unwrap();
    let v: serde_json::Value = get.json().unwrap();
    assert_eq!(
        (v["method"].as_str(), v["path"].as_str(), v["a"].as_str()),
        (Some("GET"), Some("/"), Some("z"))
    );
}

#[test]
fn fork_mode_streams_output_as_it_comes() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  ticker:\n    lang: bash-streaming\n    handler: ./ticker\n    image: ticker:1\n",
        )
        .write("ticker/handler.sh", "echo first\nsleep 3\necho second\n");
    ok(&platform.cli(project.path(), &["up"]));
    let started = Instant::now();
    let mut response = http()
        .get(format!("{}/function/ticker", platform.url))
        .send()
        .unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut response, &mut first).unwrap();
    let first_after = started.elapsed();
    assert_eq!(&first, b"first\n");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut response, &mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert!(
        first_after < Duration::from_millis(2500),
        "the first line arrived only after {first_after:?}: the response was buffered, not streamed"
    );
    assert!(started.elapsed() >= Duration::from_millis(2900));
}

#[test]
fn dependencies_are_installed_into_the_bundle() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  py-deps:\n    lang: python3-http\n    handler: ./py\n    image: py-deps:1\n  node-deps:\n    lang: node\n    handler: ./js\n    image: node-deps:1\n",
        )
        .write("py/requirements.txt", "six==1.16.0\n")
        .write("py/handler.py", "import six\ndef handle(event, context):\n    return six.__file__\n")
        .write("js/package.json", r#"{"name": "js", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}"#)
        .write(
            "js/handler.js",
            "const isNumber = require('is-number');\nmodule.exports = async () => ({ five: isNumber(5), path: require.resolve('is-number') });\n",
        );
    ok(&platform.cli(project.path(), &["up"]));
    let py = http()
        .get(format!("{}/function/py-deps", platform.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        py.contains("python_packages/six.py"),
        "six was not imported from the bundle: {py}"
    );
    let js: serde_json::Value = http()
        .get(format!("{}/function/node-deps", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(js["five"], true);
    assert!(
        js["path"]
            .as_str()
            .unwrap()
            .contains("/function/node_modules/is-number/"),
        "{js}"
    );
}
