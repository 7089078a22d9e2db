//! Custom routes: a path prefix on the gateway leads to a function, with path, query, method,
//! headers and body intact; conflicts and reserved prefixes are refused.

use serde_json::json;

use crate::harness::{Platform, Project, http, ok, text};

const ECHO: &str = "import json\ndef handle(event, context):\n    return {'body': {'method': event.method, 'path': event.path, 'q': event.query.get('q'), 'h': event.headers.get('x-test'), 'body': event.body.decode(), 'me': context.hostname}}\n";

fn stack(functions: &str) -> String {
    format!("provider:\n  name: openfaas\nfunctions:\n{functions}")
}

fn function(name: &str, route: &str) -> String {
    format!(
        "  {name}:\n    lang: python3-http\n    handler: ./echo\n    image: {name}:1\n    annotations:\n      com.ironfaas.route: {route}\n"
    )
}

#[test]
fn routes_lead_to_functions_longest_prefix_first() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write(
            "stack.yml",
            &stack(
                &(function("transform", "/api/v2/transform") + &function("api", "/api, /legacy")),
            ),
        )
        .write("echo/handler.py", ECHO);
    ok(&platform.cli(project.path(), &["up"]));

    let r = http()
        .put(format!("{}/api/v2/transform/orders/7?q=1", platform.url))
        .header("X-Test", "yes")
        .body("payload")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-call-id"));
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(
        v,
        json!({"method": "PUT", "path": "/orders/7", "q": "1", "h": "yes", "body": "payload", "me": "transform-1"})
    );

    let other: serde_json::Value = http()
        .get(format!("{}/api/v1/x", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (other["me"].as_str(), other["path"].as_str()),
        (Some("api-1"), Some("/v1/x"))
    );
    let bare: serde_json::Value = http()
        .get(format!("{}/legacy", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (bare["me"].as_str(), bare["path"].as_str()),
        (Some("api-1"), Some("/"))
    );
    assert_eq!(
        http()
            .get(format!("{}/apiv2", platform.url))
            .send()
            .unwrap()
            .status(),
        404,
        "whole segments only"
    );

    let listed = ok(&platform.cli(project.path(), &["routes"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[1].starts_with("/api/v2/transform") && lines[1].contains("transform.openfaas-fn"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&platform.cli(project.path(), &["routes", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);

    let metrics = http()
        .get(format!("{}/metrics", platform.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("gateway_function_invocation_total{code=\"200\",function_name=\"transform.openfaas-fn\"} 1"), "route hits count as invocations");
}

#[test]
fn route_conflicts_and_reserved_prefixes_are_refused() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write("stack.yml", &stack(&function("first", "/shared")))
        .write("echo/handler.py", ECHO);
    ok(&platform.cli(project.path(), &["up"]));

    project.write("stack.yml", &stack(&function("second", "/shared")));
    let taken = platform.cli(project.path(), &["up"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        text(&taken)
            .1
            .contains("route /shared of function second is taken by function first"),
        "{}",
        text(&taken).1
    );
    assert_eq!(
        http()
            .get(format!("{}/function/second", platform.url))
            .send()
            .unwrap()
            .status(),
        404,
        "nothing deployed"
    );

    project.write(
        "stack.yml",
        &stack(&function("sneaky", "/system/functions")),
    );
    let reserved = platform.cli(project.path(), &["up"]);
    assert_eq!(reserved.status.code(), Some(1));
    assert!(
        text(&reserved)
            .1
            .contains("would shadow the gateway's own /system"),
        "{}",
        text(&reserved).1
    );
    let list: serde_json::Value = http()
        .get(format!("{}/system/functions", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "the API still answers and only `first` is deployed: {list}"
    );
}
