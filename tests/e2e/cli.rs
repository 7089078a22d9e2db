//! The CLI tour: list, describe, invoke, scale, remove, version, with tables and --json.

use crate::harness::{Platform, Project, native_echo, ok, text};

#[test]
fn cli_tour() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write(
            "stack.yml",
            "provider:\n  name: openfaas\nfunctions:\n  echo:\n    lang: binary\n    handler: ./echo\n    image: echo:2\n    labels:\n      com.openfaas.scale.max: \"3\"\n",
        )
        .install_executable(native_echo(), "echo/handler");
    ok(&platform.cli(project.path(), &["up"]));
    let dir = project.path();

    let answer = ok(&platform.cli_with_stdin(
        dir,
        &[
            "invoke",
            "echo",
            "--method",
            "PUT",
            "--path",
            "/x/y",
            "--query",
            "k=v w",
            "-H",
            "X-Test=t1",
        ],
        b"from stdin",
    ));
    assert_eq!(
        answer,
        "method=PUT\npath=/x/y\nquery=k=v%20w\nx-test=t1\nbody=from stdin"
    );

    let table = ok(&platform.cli(dir, &["list"]));
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("FUNCTION"));
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row, ["echo", "1", "1/1", "0", "echo:2"]);

    let json: serde_json::Value =
        serde_json::from_str(&ok(&platform.cli(dir, &["list", "--json"]))).unwrap();
    assert_eq!(json[0]["name"], "echo");
    assert_eq!(json[0]["invocationCount"], 1);

    ok(&platform.cli(dir, &["scale", "echo", "--replicas", "3"]));
    let described: serde_json::Value =
        serde_json::from_str(&ok(&platform.cli(dir, &["describe", "echo", "--json"]))).unwrap();
    assert_eq!(described["replicas"], 3);
    assert_eq!(described["availableReplicas"], 3);
    assert_eq!(described["instances"].as_array().unwrap().len(), 3);
    assert!(described["digest"].as_str().unwrap().starts_with("sha256:"));
    let human = ok(&platform.cli(dir, &["describe", "echo"]));
    assert!(human.contains("Status:             Ready"), "{human}");
    assert!(
        human.contains(&format!(
            "URL:                {}/function/echo",
            platform.url
        )),
        "{human}"
    );

    let too_many = platform.cli(dir, &["scale", "echo", "--replicas", "4"]);
    assert_eq!(too_many.status.code(), Some(1));
    assert!(
        text(&too_many).1.contains("maximum is 3"),
        "{}",
        text(&too_many).1
    );

    let failing = platform.cli(dir, &["invoke", "nope"]);
    assert_eq!(failing.status.code(), Some(1));

    let version = ok(&platform.cli(dir, &["version"]));
    assert!(version.contains("provider: ironfaas-local"), "{version}");

    ok(&platform.cli(dir, &["remove", "echo"]));
    assert!(
        ok(&platform.cli(dir, &["list", "--quiet"]))
            .trim()
            .is_empty()
    );
    let gone = platform.cli(dir, &["remove", "echo"]);
    assert_eq!(gone.status.code(), Some(1));

    let unreachable = crate::harness::run_cli(
        dir,
        &["list"],
        b"",
        &[("OPENFAAS_URL", "http://127.0.0.1:9")],
    );
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(
        text(&unreachable)
            .1
            .contains("cannot reach the gateway at http://127.0.0.1:9")
    );
    // --gateway and --namespace go after a subcommand too (`secret list --gateway URL`).
    for args in [
        &["secret", "list", "-g", "http://127.0.0.1:9", "-n", "x"][..],
        &["queue", "dlq", "-g", "http://127.0.0.1:9"],
        &["store", "list", "--gateway", "http://127.0.0.1:9"],
    ] {
        let after = crate::harness::run_cli(dir, args, b"", &[]);
        assert_eq!(after.status.code(), Some(3), "{args:?}: {:?}", text(&after));
        assert!(text(&after).1.contains("http://127.0.0.1:9"), "{args:?}");
    }
}
