//! Metrics with OpenFaaS' names that match the calls made, and logs that keep their order,
//! survive scale to zero and can be followed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Platform, Project, eventually, http, ironfaas, metric, ok, scrape};

const STACK: &str = "provider:\n  name: openfaas\nfunctions:\n  talker:\n    lang: python3-http\n    handler: ./talker\n    image: talker:1\n";
const HANDLER: &str = "import sys\ndef handle(event, context):\n    print('said ' + event.query.get('n', '?'), flush=True)\n    return {'statusCode': int(event.query.get('code', '200')), 'body': 'ok'}\n";

#[test]
fn metrics_parse_and_count_the_calls() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write("stack.yml", STACK)
        .write("talker/handler.py", HANDLER);
    ok(&platform.cli(project.path(), &["up"]));
    for _ in 0..7 {
        assert_eq!(
            http()
                .get(format!("{}/function/talker", platform.url))
                .send()
                .unwrap()
                .status(),
            200
        );
    }
    for _ in 0..3 {
        assert_eq!(
            http()
                .get(format!("{}/function/talker?code=500", platform.url))
                .send()
                .unwrap()
                .status(),
            500
        );
    }
    let scrape = scrape(&platform.url);
    let f = ("function_name", "talker.openfaas-fn");
    assert_eq!(
        metric(
            &scrape.samples,
            "gateway_function_invocation_total",
            &[f, ("code", "200")]
        ),
        Some(7.0)
    );
    assert_eq!(
        metric(
            &scrape.samples,
            "gateway_function_invocation_total",
            &[f, ("code", "500")]
        ),
        Some(3.0)
    );
    assert_eq!(
        metric(&scrape.samples, "gateway_function_invocation_started", &[f]),
        Some(10.0)
    );
    assert_eq!(
        metric(&scrape.samples, "gateway_service_count", &[f]),
        Some(1.0)
    );
    assert_eq!(
        metric(&scrape.samples, "gateway_service_ready_count", &[f]),
        Some(1.0)
    );
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == "gateway_functions_seconds" && s.labels.get("code") == Some("200"))
        .expect("the duration histogram");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram")
    };
    assert_eq!(
        buckets.last().unwrap().count,
        7.0,
        "the +Inf bucket counts every 200"
    );
    let list: serde_json::Value = http()
        .get(format!("{}/system/functions", platform.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(list[0]["invocationCount"], 10);
}

#[test]
fn logs_keep_order_survive_scale_to_zero_and_follow() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write("stack.yml", STACK)
        .write("talker/handler.py", HANDLER);
    ok(&platform.cli(project.path(), &["up"]));
    for n in 1..=5 {
        http()
            .get(format!("{}/function/talker?n={n}", platform.url))
            .send()
            .unwrap();
    }
    let said = |platform: &Platform| -> Vec<String> {
        ok(&platform.cli(project.path(), &["logs", "talker"]))
            .lines()
            .filter_map(|l| l.split_once(" said ").map(|(_, n)| n.to_string()))
            .collect()
    };
    eventually("five lines in the log", Duration::from_secs(10), || {
        said(&platform).len() == 5
    });
    assert_eq!(said(&platform), ["1", "2", "3", "4", "5"]);
    let json = ok(&platform.cli(project.path(), &["logs", "talker", "--json", "--tail", "1"]));
    let entry: BTreeMap<String, String> = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(entry["name"], "talker");
    assert_eq!(entry["instance"], "talker-1");
    assert_eq!(entry["text"], "said 5");

    ok(&platform.cli(project.path(), &["scale", "talker", "--replicas", "0"]));
    assert_eq!(
        said(&platform),
        ["1", "2", "3", "4", "5"],
        "logs outlive the replicas"
    );

    let mut follow = Command::new(ironfaas())
        .args(["logs", "talker", "-f", "--since", "10m"])
        .env("OPENFAAS_URL", &platform.url)
        .env("IRONFAAS_PASSWORD", crate::harness::ADMIN_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let stored: Vec<String> = lines
        .by_ref()
        .map(Result::unwrap)
        .take_while(|l| !l.ends_with("said 5"))
        .collect();
    assert_eq!(
        stored.iter().filter(|l| l.contains(" said ")).count(),
        4,
        "{stored:?}"
    );
    http()
        .get(format!("{}/function/talker?n=6", platform.url))
        .send()
        .unwrap();
    let next = lines
        .map(Result::unwrap)
        .find(|l| l.contains(" said "))
        .unwrap();
    assert!(next.ends_with("said 6"), "{next}");
    let _ = follow.kill();
    let _ = follow.wait();
}
