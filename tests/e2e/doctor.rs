//! `ironfaas doctor` on this machine: every check reported with a status and this machine's
//! real values, JSON for scripts, exit code 1 only when something required fails, and
//! `--apply` writing exactly the kernel settings below the recommendation (root only, and
//! only when confirmed).

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::{Platform, ironfaas, ok, run_cli, text};

/// Every check, in the order doctor reports them.
const CHECKS: [&str; 18] = [
    "root",
    "user-namespaces",
    "bubblewrap",
    "cgroups",
    "seccomp",
    "sandbox",
    "open-files",
    "net.ipv4.ip_local_port_range",
    "net.core.somaxconn",
    "net.netfilter.nf_conntrack_max",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "data-dir",
    "data-dir-disk",
    "data-dir-space",
    "python3",
    "node",
    "nats-server",
];

/// The recommendations as documented: at least N, or a port range at least this wide.
const RECOMMENDED: [(&str, &[u64]); 5] = [
    ("net.ipv4.ip_local_port_range", &[10240, 65535]),
    ("net.core.somaxconn", &[4096]),
    ("net.netfilter.nf_conntrack_max", &[262144]),
    ("net.core.rmem_max", &[16 << 20]),
    ("net.core.wmem_max", &[16 << 20]),
];

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `ironfaas doctor ARGS` on the data dir `data`.
fn doctor(data: &Path, args: &[&str]) -> Output {
    let data = data.to_str().unwrap();
    let mut all = vec!["doctor", "--data-dir", data];
    all.extend(args);
    run_cli(Path::new("/"), &all, b"", &[])
}

/// `ironfaas doctor ARGS` as the user nobody (run as root) or as this user (otherwise).
fn doctor_as_nobody(data: &Path, args: &[&str]) -> Output {
    let mut cmd = if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            ironfaas(),
        ]);
        cmd
    } else {
        Command::new(ironfaas())
    };
    cmd.arg("doctor")
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .current_dir("/")
        .output()
        .expect("run ironfaas doctor")
}

fn json(output: &Output) -> Vec<Value> {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON array ({e}): {:?}",
            text(output)
        )
    })
}

fn find<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"))
}

fn sysctl(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What `sh` reports as this process's open-file limits (children inherit them).
fn nofile_limits() -> (String, String) {
    let out = Command::new("sh")
        .args(["-c", "ulimit -Sn; ulimit -Hn"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(String::from);
    (lines.next().unwrap(), lines.next().unwrap())
}

#[test]
fn every_check_is_reported_with_this_machines_values() {
    let data = tempfile::tempdir().unwrap();
    let as_json = doctor(data.path(), &["--json"]);
    let checks = json(&as_json);
    let names: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    for check in &checks {
        for key in ["check", "status", "found", "recommended", "why", "fix"] {
            assert!(check.get(key).is_some(), "{key} missing in {check}");
        }
        let status = check["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail", "n/a"].contains(&status), "{check}");
        assert!(!check["found"].as_str().unwrap().is_empty(), "{check}");
        if status == "warn" || status == "fail" {
            assert!(
                check["fix"].is_string(),
                "a {status} without a fix: {check}"
            );
        }
    }
    let failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(
        as_json.status.code(),
        Some(i32::from(failed)),
        "{:?}",
        text(&as_json)
    );

    let human = doctor(data.path(), &[]);
    assert_eq!(human.status.code(), as_json.status.code());
    let (stdout, _) = text(&human);
    let header: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["CHECK", "STATUS", "FOUND", "RECOMMENDED/FIX"]);
    for check in &checks {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == check["check"].as_str())
            .unwrap_or_else(|| panic!("no row for {check} in\n{stdout}"));
        assert_eq!(
            row.split_whitespace().nth(1),
            check["status"].as_str(),
            "{row}"
        );
        assert!(row.contains(check["found"].as_str().unwrap()), "{row}");
        if let Some(recommended) = check["recommended"].as_str() {
            assert!(row.contains(recommended), "{row}");
        }
        if let Some(fix) = check["fix"].as_str().filter(|_| check["status"] != "ok") {
            assert!(stdout.contains(&format!("  fix: {fix}\n")), "{stdout}");
        }
    }
    let count = |s: &str| checks.iter().filter(|c| c["status"] == s).count();
    let summary = stdout.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "18 checks: {} ok, {} warn, {} fail, {} n/a.",
            count("ok"),
            count("warn"),
            count("fail"),
            count("n/a")
        )),
        "{summary}"
    );

    // This machine's own values, read here independently of doctor.
    let somaxconn = sysctl("net.core.somaxconn").unwrap();
    assert_eq!(find(&checks, "net.core.somaxconn")["found"], somaxconn);
    let (soft, hard) = nofile_limits();
    let open_files = find(&checks, "open-files");
    assert_eq!(open_files["found"], format!("soft {soft}, hard {hard}"));
    let enough = soft == "unlimited" || soft.parse::<u64>().unwrap() >= 65536;
    assert_eq!(open_files["status"], if enough { "ok" } else { "warn" });
    assert!(stdout.contains(&format!("soft {soft}, hard {hard}")));
    for (name, _) in RECOMMENDED {
        match sysctl(name) {
            Some(value) => assert_eq!(find(&checks, name)["found"], value.as_str()),
            None => assert_eq!(find(&checks, name)["status"], "n/a"),
        }
    }
    let fstype = Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "--target"])
        .arg(data.path())
        .output()
        .unwrap();
    let fstype = String::from_utf8(fstype.stdout).unwrap();
    let disk = find(&checks, "data-dir-disk")["found"].as_str().unwrap();
    assert!(
        disk.starts_with(&format!("{} on ", fstype.trim())),
        "{disk}"
    );
    assert_eq!(find(&checks, "data-dir")["status"], "ok");
    let python3 = Path::new("/usr/bin/python3");
    if python3.exists() {
        let real = python3.canonicalize().unwrap();
        let found = find(&checks, "python3")["found"].as_str().unwrap();
        assert_eq!(find(&checks, "python3")["status"], "ok");
        if real != python3 {
            let shown = format!("at /usr/bin/python3 -> {}", real.display());
            assert!(found.ends_with(&shown), "{found}");
        }
    }
    let root = find(&checks, "root");
    assert_eq!(root["status"] == "ok", is_root(), "{root}");
}

#[test]
fn the_open_file_limit_is_the_one_doctor_runs_with() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new("prlimit")
        .args([
            "--nofile=4321:8765",
            ironfaas(),
            "doctor",
            "--json",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    let checks = json(&out);
    let open_files = find(&checks, "open-files");
    assert_eq!(open_files["found"], "soft 4321, hard 8765");
    assert_eq!(open_files["status"], "warn");
    assert_eq!(open_files["recommended"], "soft >= 65536");
    let fix = open_files["fix"].as_str().unwrap();
    assert!(fix.contains("LimitNOFILE=65536"), "{fix}");
    assert!(fix.contains("hard limit (8765)"), "{fix}");
}

#[test]
fn a_data_dir_in_memory_is_a_warning_and_an_unwritable_one_fails() {
    if Path::new("/dev/shm").is_dir() {
        let in_memory = tempfile::tempdir_in("/dev/shm").unwrap();
        let checks = json(&doctor(&in_memory.path().join("data"), &["--json"]));
        let disk = find(&checks, "data-dir-disk");
        assert_eq!(disk["status"], "warn", "{disk}");
        assert!(
            disk["found"].as_str().unwrap().starts_with("tmpfs on "),
            "{disk}"
        );
        assert!(
            disk["why"].as_str().unwrap().contains("lost at reboot"),
            "{disk}"
        );
        assert_eq!(
            find(&checks, "data-dir")["found"].as_str().unwrap(),
            format!(
                "{} (created at start)",
                in_memory.path().join("data").display()
            )
        );
    }

    let locked = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        locked.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o500),
    )
    .unwrap();
    let data = locked.path().join("data");
    let out = doctor_as_nobody(&data, &["--json", "--sandbox", "off"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let checks = json(&out);
    let access = find(&checks, "data-dir");
    assert_eq!(access["status"], "fail", "{access}");
    assert!(
        access["fix"].as_str().unwrap().contains("--data-dir"),
        "{access}"
    );
    let (_, stderr) = text(&out);
    assert!(stderr.contains("data-dir failed"), "{stderr}");
    // With --sandbox off, nothing of the sandbox fails or warns.
    for name in [
        "root",
        "user-namespaces",
        "bubblewrap",
        "cgroups",
        "seccomp",
        "sandbox",
    ] {
        let status = &find(&checks, name)["status"];
        assert!(status == "ok" || status == "n/a", "{name}: {status}");
    }
}

#[test]
fn sandbox_on_fails_where_serve_would_refuse_to_start() {
    let data = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        data.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = doctor_as_nobody(data.path(), &["--json", "--sandbox", "on"]);
    let checks = json(&out);
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    assert_eq!(find(&checks, "root")["status"], "fail");
    assert_eq!(find(&checks, "sandbox")["status"], "fail");
    let auto = json(&doctor_as_nobody(
        data.path(),
        &["--json", "--sandbox", "auto"],
    ));
    assert_eq!(find(&auto, "root")["status"], "warn");
    assert_eq!(find(&auto, "sandbox")["found"], "replicas run unsandboxed");
}

#[test]
fn apply_is_refused_to_other_users_than_root() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("60-ironfaas.conf");
    let out = doctor_as_nobody(
        dir.path(),
        &[
            "--apply",
            "--yes",
            "--no-load",
            "--sysctl-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let (stdout, stderr) = text(&out);
    assert!(stderr.contains("only root may do"), "{stderr}");
    assert!(stdout.is_empty(), "refused before any check: {stdout}");
    assert!(!file.exists());
}

#[test]
fn the_apply_options_need_apply() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("60-ironfaas.conf");
    let file = file.to_str().unwrap();
    for args in [
        vec!["--sysctl-file", file],
        vec!["--json", "--sysctl-file", file],
        vec!["--yes"],
        vec!["--json", "--no-load"],
        vec!["--json", "--apply", "--yes"],
    ] {
        let out = doctor(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", text(&out));
        let (stdout, stderr) = text(&out);
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains("--apply") || stderr.contains("--json"),
            "{stderr}"
        );
    }
    assert!(!Path::new(file).exists());
}

#[test]
fn apply_without_a_terminal_needs_yes() {
    if !is_root() {
        eprintln!("skipped: --apply is refused to non-root users before it asks");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("60-ironfaas.conf");
    let file = file.to_str().unwrap();
    let out = run_cli(
        dir.path(),
        &["doctor", "--apply", "--no-load", "--sysctl-file", file],
        b"y\n",
        &[("IRONFAAS_DATA_DIR", dir.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out).1.contains("pass --yes"), "{:?}", text(&out));
    assert!(!Path::new(file).exists());
}

#[test]
fn apply_writes_exactly_the_settings_below_the_recommendation() {
    if !is_root() {
        eprintln!("skipped: --apply needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sysctl.d/60-ironfaas.conf");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mine = "# kept as it is\nvm.swappiness = 10\n";
    std::fs::write(&file, mine).unwrap();
    let before: Vec<Option<String>> = RECOMMENDED.iter().map(|(n, _)| sysctl(n)).collect();

    let mut expected = Vec::new();
    for ((name, recommended), current) in RECOMMENDED.iter().zip(&before) {
        let Some(current) = current else { continue };
        let now: Vec<u64> = current.split(' ').map(|n| n.parse().unwrap()).collect();
        let raised = match (*recommended, now.as_slice()) {
            ([min], [value]) if value < min => Some(min.to_string()),
            ([low, high], [from, to]) if from > low || to < high => {
                Some(format!("{} {}", from.min(low), to.max(high)))
            }
            _ => None,
        };
        if let Some(raised) = raised {
            expected.push((name.to_string(), current.clone(), raised));
        }
    }

    let args = [
        "--apply",
        "--yes",
        "--no-load",
        "--sysctl-file",
        file.to_str().unwrap(),
    ];
    let stdout = ok(&doctor(dir.path(), &args));
    let written = std::fs::read_to_string(&file).unwrap();
    let mut settings: Vec<&str> = written.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        written.starts_with(mine),
        "the file's own lines are kept: {written}"
    );
    settings.retain(|l| *l != "vm.swappiness = 10");
    let wanted: Vec<String> = expected
        .iter()
        .map(|(n, _, v)| format!("{n} = {v}"))
        .collect();
    assert_eq!(settings, wanted, "{written}");
    for (name, from, to) in &expected {
        assert!(
            stdout.contains(&format!("  {name}: {from} -> {to}")),
            "{stdout}"
        );
    }
    if expected.is_empty() {
        assert!(stdout.contains("nothing to write"), "{stdout}");
    } else {
        assert!(stdout.contains("not loaded (--no-load)"), "{stdout}");
    }
    let after: Vec<Option<String>> = RECOMMENDED.iter().map(|(n, _)| sysctl(n)).collect();
    assert_eq!(before, after, "--no-load left the running kernel alone");

    // Again: the same file, each setting once.
    ok(&doctor(dir.path(), &args));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
}

#[test]
fn serve_points_to_doctor_when_limits_are_low() {
    // nextest runs each test in a process of its own: lower this one's soft open-file limit,
    // which `serve` inherits.
    let me = std::process::id().to_string();
    let lowered = Command::new("prlimit")
        .args(["--pid", &me, "--nofile=4321:"])
        .status()
        .unwrap();
    assert!(lowered.success());
    let platform = Platform::start_with(&["--sandbox", "off"]);
    let log = platform.log();
    let pointers: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("limits below what a busy gateway needs"))
        .collect();
    let [line] = pointers.as_slice() else {
        panic!("not one pointer to doctor in\n{log}");
    };
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("open-files is soft 4321"), "{line}");
    assert!(line.contains("(soft >= 65536)"), "{line}");
    assert!(
        line.ends_with("run `ironfaas doctor` for the fixes"),
        "{line}"
    );
}
