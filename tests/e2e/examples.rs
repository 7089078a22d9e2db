//! The examples in `examples/` deploy and answer as examples/README.md says.

use crate::harness::{Platform, http, ok, repo};

#[test]
fn examples_answer_as_documented() {
    let platform = Platform::start();
    let project = tempfile::tempdir().unwrap();
    crate::harness::copy_tree(&repo().join("examples"), project.path());
    let stdout = ok(&platform.cli(project.path(), &["up", "-f", "stack.yml"]));
    for name in ["transform", "csv-stats", "wordcount"] {
        assert!(
            stdout.contains(&format!("{}/function/{name}", platform.url)),
            "{stdout}"
        );
    }
    let url = |f: &str| format!("{}/function/{f}", platform.url);

    let clean = http()
        .post(url("transform"))
        .body(r#"{"name": "ada  LOVELACE", "email": " Ada@Example.NO ", "country": "no", "ssn": "0101"}"#)
        .send()
        .unwrap();
    assert_eq!(clean.status(), 200);
    assert_eq!(
        clean.text().unwrap(),
        r#"{"record":{"name":"Ada Lovelace","email":"ada@example.no","country":"NO","consent":false},"dropped":["ssn"]}"#
    );
    let bad = http()
        .post(url("transform"))
        .body(r#"{"name": "x"}"#)
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.text().unwrap(),
        r#"{"error":"email is missing or not an email address"}"#
    );

    let stats = http()
        .post(url("csv-stats"))
        .header("Content-Type", "text/csv")
        .body("city,orders,revenue\nOslo,3,120.5\nBergen,5,80\n")
        .send()
        .unwrap();
    assert_eq!(
        stats.text().unwrap(),
        r#"{"rows":2,"columns":{"orders":{"sum":8,"mean":4},"revenue":{"sum":200.5,"mean":100.25}}}"#
    );

    let words = http()
        .post(url("wordcount"))
        .body("the quick brown fox\n")
        .send()
        .unwrap();
    assert_eq!(words.text().unwrap(), "4\n");
}
