//! Rolling updates under load, rollback of a broken version, and `new` for every template.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{Platform, Project, http, ok, text};

const HANDLER: &str = "import os\ndef handle(event, context):\n    return os.environ['VERSION']\n";

fn stack(version: &str) -> String {
    format!(
        "provider:\n  name: openfaas\nfunctions:\n  web:\n    lang: python3-http\n    handler: ./web\n    image: web:1\n    environment:\n      VERSION: {version}\n    labels:\n      com.openfaas.scale.min: \"2\"\n"
    )
}

#[test]
fn rolling_update_drops_nothing_and_a_broken_version_is_rolled_back() {
    let platform = Platform::start();
    let project = Project::new();
    project
        .write("stack.yml", &stack("v1"))
        .write("web/handler.py", HANDLER);
    ok(&platform.cli(project.path(), &["up"]));

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (url, stop, seen) = (platform.url.clone(), Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match http().get(format!("{url}/function/web")).send() {
                        Ok(r) if r.status() == 200 => seen.lock().unwrap().push(r.text().unwrap()),
                        Ok(r) => failures.push(format!(
                            "{} {}",
                            r.status(),
                            r.text().unwrap_or_default()
                        )),
                        Err(e) => failures.push(e.to_string()),
                    }
                }
                failures
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    project.write("stack.yml", &stack("v2"));
    ok(&platform.cli(project.path(), &["up"]));
    std::thread::sleep(Duration::from_millis(300));

    // A version that never starts is rolled back; the running one keeps answering.
    project.write("stack.yml", &stack("v3")).write(
        "web/handler.py",
        &format!("raise SystemExit('v3 is broken')\n{HANDLER}"),
    );
    let broken = platform.cli(project.path(), &["up"]);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = text(&broken).1;
    assert!(
        stderr.contains("rolled back") && stderr.contains("v3 is broken"),
        "{stderr}"
    );
    std::thread::sleep(Duration::from_millis(300));

    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        failures.is_empty(),
        "calls failed during the updates: {failures:?}"
    );
    let seen = seen.lock().unwrap();
    let first_v2 = seen
        .iter()
        .position(|v| v == "v2")
        .expect("version 2 answered");
    assert!(
        seen[..first_v2].iter().all(|v| v == "v1"),
        "only v1 before v2"
    );
    assert!(first_v2 > 0, "v1 answered before the update");
    let last_v1 = seen.iter().rposition(|v| v == "v1").unwrap();
    assert!(
        seen[last_v1 + 1..].iter().all(|v| v == "v2"),
        "after the switch only v2 answers, never v3"
    );
    assert_eq!(seen.last().map(String::as_str), Some("v2"));
}

#[test]
fn new_makes_a_function_that_builds_deploys_and_answers_for_every_template() {
    let platform = Platform::start();
    let project = Project::new();
    let langs = ["python3-http", "node", "bash-streaming", "binary", "rust"];
    for lang in langs {
        ok(&platform.cli(
            project.path(),
            &[
                "new",
                &format!(
                    "hello-{}",
                    lang.replace('3', "")
                        .replace("-http", "")
                        .replace("-streaming", "")
                ),
                "--lang",
                lang,
            ],
        ));
    }
    let stdout = ok(&platform.cli(project.path(), &["up"]));
    for line in stdout.lines().filter(|l| l.contains("/function/")) {
        let r = http().post(line).body("hi").send().unwrap();
        assert_eq!(r.status(), 200, "{line}: {}", r.text().unwrap_or_default());
    }
    assert_eq!(
        stdout.lines().filter(|l| l.contains("/function/")).count(),
        langs.len(),
        "{stdout}"
    );
    let again = platform.cli(project.path(), &["new", "hello-node", "--lang", "node"]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "a second function of the same name is refused"
    );
    let listed = ok(&platform.cli(project.path(), &["template", "list"]));
    for lang in langs {
        assert!(listed.contains(lang), "{listed}");
    }
}
