//! `ironfaas doctor`'s findings: what the platform needs and what helps on this machine, each
//! with its status, its value here, the recommendation, why it matters and the fix.

pub mod apply;
mod disk;
mod limits;
mod sandbox;
mod sysctl;
mod tools;

use std::path::PathBuf;

use serde::Serialize;

use crate::output::table;
use crate::platform::SandboxMode;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    /// As needed or recommended.
    #[serde(rename = "ok")]
    Ok,
    /// The platform runs, but slower, less safely or with less than it could.
    #[serde(rename = "warn")]
    Warn,
    /// The platform cannot run as configured.
    #[serde(rename = "fail")]
    Fail,
    /// Does not apply here (a module not loaded, an option not used).
    #[serde(rename = "n/a")]
    NotApplicable,
}

impl Status {
    /// As printed: `ok`, `warn`, `fail`, `n/a`.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::NotApplicable => "n/a",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `root`, `net.core.somaxconn`, `data-dir`, ….
    pub check: String,
    /// How it came out.
    pub status: Status,
    /// What it is on this machine.
    pub found: String,
    /// What doctor recommends, when there is a recommendation.
    pub recommended: Option<String>,
    /// Why it matters, for findings that are not ok.
    pub why: Option<String>,
    /// What to do, for findings that are not ok.
    pub fix: Option<String>,
}

impl Check {
    /// A finding with no recommendation, reason or fix yet.
    pub fn new(check: &str, status: Status, found: impl Into<String>) -> Check {
        Check {
            check: check.to_string(),
            status,
            found: found.into(),
            recommended: None,
            why: None,
            fix: None,
        }
    }

    /// With what doctor recommends.
    pub fn recommended(self, recommended: impl Into<String>) -> Check {
        Check {
            recommended: Some(recommended.into()),
            ..self
        }
    }

    /// With why it matters.
    pub fn why(self, why: impl Into<String>) -> Check {
        Check {
            why: Some(why.into()),
            ..self
        }
    }

    /// With what to do.
    pub fn fix(self, fix: impl Into<String>) -> Check {
        Check {
            fix: Some(fix.into()),
            ..self
        }
    }
}

/// What the checks judge.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data dir `serve` would use.
    pub data_dir: PathBuf,
    /// The sandbox mode `serve` would run with.
    pub sandbox: SandboxMode,
}

/// Every check, in the order they are shown.
pub async fn run(options: &Options) -> Vec<Check> {
    let mut checks = sandbox::checks(options.sandbox).await;
    checks.push(limits::open_files());
    checks.extend(sysctl::checks());
    checks.extend(disk::checks(&options.data_dir));
    checks.extend(tools::checks().await);
    checks
}

/// The limits below the recommendation (open files, the kernel's network settings), as one
/// line pointing to `ironfaas doctor`; `None` when every one is at or above it. For `serve`'s
/// start-up, which says the same of the sandbox itself.
pub fn low_limits() -> Option<String> {
    let mut checks = vec![limits::open_files()];
    checks.extend(sysctl::checks());
    let low: Vec<String> = checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .map(|c| match &c.recommended {
            Some(recommended) => format!("{} is {} ({recommended})", c.check, c.found),
            None => format!("{} is {}", c.check, c.found),
        })
        .collect();
    (!low.is_empty()).then(|| {
        format!(
            "limits below what a busy gateway needs: {}; run `ironfaas doctor` for the fixes",
            low.join(", ")
        )
    })
}

/// The findings for people: a table, then why and how to fix each one that is not ok, then
/// the summary.
pub fn render(checks: &[Check]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| {
            vec![
                c.check.clone(),
                c.status.label().to_string(),
                c.found.clone(),
                recommended_or_fix(c),
            ]
        })
        .collect();
    let mut out = table(&["CHECK", "STATUS", "FOUND", "RECOMMENDED/FIX"], &rows);
    let explained = checks
        .iter()
        .filter(|c| c.status != Status::Ok && (c.why.is_some() || c.fix.is_some()));
    for c in explained {
        out.push_str(&format!(
            "\n{} {}: {}\n",
            c.status.label(),
            c.check,
            c.found
        ));
        if let Some(why) = &c.why {
            out.push_str(&format!("  why: {why}\n"));
        }
        if let Some(fix) = &c.fix {
            out.push_str(&format!("  fix: {fix}\n"));
        }
    }
    out.push('\n');
    out.push_str(&summary(checks));
    out.push('\n');
    out
}

/// The table's last column: the recommendation, and a pointer to the fix below the table for
/// a finding that has one (fixes are sentences, too long for a column).
fn recommended_or_fix(check: &Check) -> String {
    let fix_below = check.status != Status::Ok && check.fix.is_some();
    match (&check.recommended, fix_below) {
        (Some(recommended), true) => format!("{recommended} (fix below)"),
        (Some(recommended), false) => recommended.clone(),
        (None, true) => "fix below".to_string(),
        (None, false) => "-".to_string(),
    }
}

/// One line: how many checks came out how, and what it means.
pub fn summary(checks: &[Check]) -> String {
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let (ok, warn, fail, na) = (
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::NotApplicable),
    );
    let verdict = if fail > 0 {
        "ironfaas cannot run as configured: fix what failed"
    } else if warn > 0 {
        "ironfaas can run here; the warnings say what would make it safer or faster"
    } else {
        "ironfaas has everything it needs here"
    };
    format!(
        "{} checks: {ok} ok, {warn} warn, {fail} fail, {na} n/a. {verdict}.",
        checks.len()
    )
}

/// The names of the checks that failed.
pub fn failed(checks: &[Check]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.check.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Check> {
        vec![
            Check::new("root", Status::Ok, "uid 0").recommended("root"),
            Check::new("net.core.somaxconn", Status::Warn, "128")
                .recommended(">= 4096")
                .why("bursts")
                .fix("sysctl -w net.core.somaxconn=4096"),
            Check::new("nats-server", Status::NotApplicable, "not installed"),
        ]
    }

    #[test]
    fn the_report_has_a_row_per_check_and_the_fixes_below() {
        let text = render(&sample());
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["CHECK", "STATUS", "FOUND", "RECOMMENDED/FIX"]
        );
        assert_eq!(
            lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
            ["root", "ok", "uid", "0", "root"]
        );
        assert!(
            lines
                .next()
                .unwrap()
                .ends_with("128            >= 4096 (fix below)")
        );
        assert!(text.contains(
            "\nwarn net.core.somaxconn: 128\n  why: bursts\n  fix: sysctl -w net.core.somaxconn=4096\n"
        ));
        assert!(text.ends_with(
            "3 checks: 1 ok, 1 warn, 0 fail, 1 n/a. ironfaas can run here; the warnings say \
             what would make it safer or faster.\n"
        ));
    }

    #[test]
    fn json_has_the_fields_scripts_read() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json[0]["check"], "root");
        assert_eq!(json[0]["status"], "ok");
        assert_eq!(json[0]["fix"], serde_json::Value::Null);
        assert_eq!(json[1]["recommended"], ">= 4096");
        assert_eq!(json[2]["status"], "n/a");
    }

    #[test]
    fn only_failures_fail() {
        let mut checks = sample();
        assert!(failed(&checks).is_empty());
        checks.push(Check::new("data-dir", Status::Fail, "/x (not writable)"));
        assert_eq!(failed(&checks), ["data-dir"]);
        assert!(summary(&checks).contains("cannot run as configured"));
    }
}
