//! A bad stack file gives a clear error with file:line:column and exit code 2, and deploys
//! nothing: not even its valid functions.

use crate::harness::{Platform, Project, ok, text};

const GOOD: &str = "  good:\n    lang: python3-http\n    handler: ./good\n    image: good:1\n";

fn stack(functions: &str) -> String {
    format!("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n{GOOD}{functions}")
}

/// Runs `up` on `stack_yml`, expects exit code 2 with every `needles` in stderr, and no
/// function deployed.
#[track_caller]
fn refused(platform: &Platform, stack_yml: &str, needles: &[&str]) {
    let project = Project::new();
    project
        .write("stack.yml", stack_yml)
        .write("good/handler.py", "def handle(e, c):\n    return 'ok'\n");
    let output = platform.cli(project.path(), &["up"]);
    let (stdout, stderr) = text(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "missing '{needle}' in:\n{stderr}");
    }
    let listed = ok(&platform.cli(project.path(), &["list", "--quiet"]));
    assert!(listed.trim().is_empty(), "something was deployed: {listed}");
}

#[test]
fn bad_stack_files_are_explained_and_deploy_nothing() {
    let platform = Platform::start();
    refused(
        &platform,
        &stack("  typo:\n    lang: pyhton3-http\n    handler: ./good\n    image: typo:1\n"),
        &[
            "stack.yml:10:11: function 'typo', field 'lang'",
            "unknown lang",
            "python3-http",
            "fix:",
        ],
    );
    refused(
        &platform,
        &stack("  Bad_Name:\n    lang: python3-http\n    handler: ./good\n    image: bad:1\n"),
        &["stack.yml:9:3", "'Bad_Name' is not a valid name"],
    );
    refused(
        &platform,
        &stack("  nohandler:\n    lang: python3-http\n    handler: ./missing\n    image: nh:1\n"),
        &["stack.yml:11:14", "field 'handler'", "./missing"],
    );
    refused(
        &platform,
        &stack("").replace("name: openfaas", "name: faas"),
        &["stack.yml:3:9", "openfaas"],
    );
    refused(
        &platform,
        &stack("  good:\n    lang: node\n    handler: ./good\n    image: again:1\n"),
        &["stack.yml:9:3", "duplicate"],
    );
    refused(
        &platform,
        &stack("  twice:\n    lang: node\n    image: a:1\n    handler: ./good\n    image: b:1\n"),
        &["stack.yml:13:5", "duplicate"],
    );
    refused(
        &platform,
        &stack("  dock:\n    lang: Dockerfile\n    handler: ./good\n    image: d:1\n"),
        &["stack.yml:10:11", "lang: binary"],
    );
    refused(
        &platform,
        &stack("  envy:\n    lang: node\n    handler: ./good\n    image: ${REGISTRY:-x/envy:1\n"),
        &["stack.yml:12:12", "is not closed"],
    );
    refused(
        &platform,
        &stack(
            "  spelled:\n    lang: node\n    handler: ./good\n    image: s:1\n    enviroment:\n      A: b\n",
        ),
        &["stack.yml:13:5", "did you mean `environment`?"],
    );
}

#[test]
fn missing_stack_file_and_empty_filter_are_input_errors() {
    let platform = Platform::start();
    let empty = Project::new();
    let output = platform.cli(empty.path(), &["up"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).1.contains("no stack.yaml or stack.yml"),
        "{}",
        text(&output).1
    );

    let project = Project::new();
    project
        .write("stack.yml", &stack(""))
        .write("good/handler.py", "def handle(e, c):\n    return 'ok'\n");
    let output = platform.cli(project.path(), &["up", "--filter", "nomatch*"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output)
            .1
            .contains("no functions matching --filter 'nomatch*'"),
        "{}",
        text(&output).1
    );
}
