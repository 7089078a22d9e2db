//! deploy/ironfaas.service and its drop-in deploy/unprivileged.conf: the keys that make the
//! service hardened and restartable, the environment `serve` really reads, `systemd-analyze
//! verify` without a complaint, and the sandbox still working under the unit's restrictions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::harness::{ironfaas, ok, repo, run_cli, text};

/// A unit file's settings: section -> key -> every value given, in order.
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key=value");
        unit.entry(section.clone())
            .or_default()
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    unit
}

fn read(rel: &str) -> Unit {
    parse(&std::fs::read_to_string(repo().join(rel)).unwrap())
}

fn values<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a [String] {
    unit.get(section)
        .and_then(|s| s.get(key))
        .map_or(&[], Vec::as_slice)
}

fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    match values(unit, section, key) {
        [value] => value,
        other => panic!("[{section}] {key}: {other:?}"),
    }
}

#[test]
fn the_unit_runs_serve_hardened_and_restarts_it() {
    let unit = read("deploy/ironfaas.service");
    let exec = one(&unit, "Service", "ExecStart");
    assert!(
        exec.starts_with("/usr/local/bin/ironfaas serve --listen "),
        "{exec}"
    );
    assert_eq!(one(&unit, "Service", "Restart"), "on-failure");
    assert_eq!(one(&unit, "Service", "LimitNOFILE"), "65536");
    assert_eq!(one(&unit, "Service", "ProtectSystem"), "strict");
    assert_eq!(one(&unit, "Service", "ProtectHome"), "yes");
    assert_eq!(one(&unit, "Service", "PrivateTmp"), "yes");
    assert_eq!(one(&unit, "Service", "NoNewPrivileges"), "yes");
    assert_eq!(one(&unit, "Service", "StateDirectory"), "ironfaas");
    let writable: Vec<&str> = values(&unit, "Service", "ReadWritePaths")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    assert_eq!(writable, ["/var/lib/ironfaas", "/sys/fs/cgroup"]);
    let env = values(&unit, "Service", "Environment");
    assert!(
        env.contains(&"IRONFAAS_DATA_DIR=/var/lib/ironfaas".to_string()),
        "{env:?}"
    );
    // These mount over /proc or /sys/fs/cgroup, which the sandbox needs as they are.
    for key in [
        "ProtectKernelTunables",
        "ProtectKernelLogs",
        "ProtectProc",
        "ProtectControlGroups",
        "PrivateDevices",
        "User",
    ] {
        assert!(
            values(&unit, "Service", key).is_empty(),
            "{key} breaks the sandbox"
        );
    }
    assert_eq!(one(&unit, "Install", "WantedBy"), "multi-user.target");

    let dropin = read("deploy/unprivileged.conf");
    assert_eq!(one(&dropin, "Service", "User"), "ironfaas");
    assert_eq!(
        one(&dropin, "Service", "Environment"),
        "IRONFAAS_SANDBOX=off"
    );
    assert_eq!(one(&dropin, "Service", "ProtectControlGroups"), "yes");
    assert_eq!(one(&dropin, "Service", "SystemCallErrorNumber"), "EPERM");
}

#[test]
fn the_units_environment_is_what_serve_reads() {
    let help = ok(&run_cli(Path::new("/"), &["serve", "--help"], b"", &[]));
    for (key, value) in [
        ("IRONFAAS_DATA_DIR", "--data-dir"),
        ("IRONFAAS_SANDBOX", "--sandbox"),
    ] {
        assert!(help.contains(&format!("[env: {key}=")), "{key} in {help}");
        assert!(help.contains(value), "{value} in {help}");
    }
    let unit = read("deploy/ironfaas.service");
    for env in values(&unit, "Service", "Environment") {
        let key = env.split('=').next().unwrap();
        assert!(
            key == "IRONFAAS_LOG" || help.contains(&format!("[env: {key}=")),
            "serve does not read {key}"
        );
    }
}

#[test]
fn systemd_analyze_verifies_the_unit_and_its_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo().join("deploy/ironfaas.service")).unwrap();
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let unit = unit.replace("/usr/local/bin/ironfaas", ironfaas());
    std::fs::write(dir.path().join("ironfaas.service"), unit).unwrap();
    let dropins = dir.path().join("ironfaas.service.d");
    std::fs::create_dir(&dropins).unwrap();
    std::fs::copy(
        repo().join("deploy/unprivileged.conf"),
        dropins.join("unprivileged.conf"),
    )
    .unwrap();
    for with_dropin in [true, false] {
        if !with_dropin {
            std::fs::remove_dir_all(&dropins).unwrap();
        }
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join("ironfaas.service"))
            .output()
            .expect("systemd-analyze (Debian package systemd; scripts/install-test-deps)");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        assert_eq!(
            stderr, "",
            "systemd-analyze complained (drop-in: {with_dropin})"
        );
    }
}

#[test]
fn the_sandbox_works_under_the_units_restrictions() {
    let data = tempfile::tempdir().unwrap();
    let run = |restricted: bool| {
        let mut cmd = Command::new("setpriv");
        if restricted {
            cmd.arg("--no-new-privs");
        }
        let out = cmd
            .args([ironfaas(), "doctor", "--json", "--data-dir"])
            .arg(data.path())
            .output()
            .unwrap();
        let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let sandbox = checks.iter().find(|c| c["check"] == "sandbox").unwrap();
        sandbox["status"].as_str().unwrap().to_string()
    };
    if run(false) != "ok" {
        eprintln!("skipped: replicas cannot be sandboxed here at all (see `ironfaas doctor`)");
        return;
    }
    assert_eq!(
        run(true),
        "ok",
        "NoNewPrivileges=yes must not break the sandbox"
    );
}
