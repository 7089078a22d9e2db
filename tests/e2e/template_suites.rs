//! The templates' own test suites: each starts the template's server as a real process and
//! talks HTTP to it over its Unix socket.

use std::process::Command;

use crate::harness::{ok, repo};

#[test]
fn python3_http_template_suite() {
    let output = Command::new("python3")
        .arg(repo().join("tests/templates/test_python3_http.py"))
        .current_dir(repo())
        .output()
        .expect("run python3");
    ok(&output);
}

#[test]
fn rust_template_suite() {
    let output = Command::new("python3")
        .arg(repo().join("tests/templates/test_rust_template.py"))
        .current_dir(repo())
        .output()
        .expect("run python3");
    ok(&output);
}

#[test]
fn binary_scaffold_suite() {
    let output = Command::new("python3")
        .arg(repo().join("tests/templates/test_binary_scaffold.py"))
        .current_dir(repo())
        .output()
        .expect("run python3");
    ok(&output);
}

#[test]
fn node_template_suite() {
    let output = Command::new("node")
        .args(["--test", "tests/templates/"])
        .current_dir(repo())
        .output()
        .expect("run node");
    ok(&output);
}
