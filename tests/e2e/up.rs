//! `ironfaas up` with no gateway running: it starts one here, deploys, prints the URLs and
//! serves until SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Project, eventually, http, ironfaas};

#[test]
fn up_starts_an_embedded_platform_and_serves_until_stopped() {
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\n  gateway: http://127.0.0.1:${PORT}\nfunctions:\n  hello:\n    lang: python3-http\n    handler: ./hello\n    image: hello:1\n",
        )
        .write("hello/handler.py", "def handle(event, context):\n    return {'statusCode': 200, 'body': 'hello ' + event.body.decode()}\n");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(ironfaas())
        .args(["up", "--data-dir"])
        .arg(data.path())
        .current_dir(project.path())
        .env("PORT", port.to_string())
        .env_remove("OPENFAAS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = lines.next().expect("a URL line").unwrap();
    assert_eq!(url, format!("http://127.0.0.1:{port}/function/hello"));
    let answer = http()
        .post(&url)
        .body("world")
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(answer, "hello world");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut status = None;
    eventually("up to exit", Duration::from_secs(30), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success());
    assert!(
        http().get(&url).send().is_err(),
        "the gateway is gone after up exits"
    );
}
