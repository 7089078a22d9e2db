//! The documentation against the code: docs/configuration.md must be exactly what
//! `ironfaas reference` prints, and that reference must name every environment variable,
//! label and annotation the code reads (and no label or annotation it does not).

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::{ok, repo, run_cli};

const REGENERATE: &str =
    "scripts/gen-docs (or: cargo run -p ironfaas -- reference > docs/configuration.md)";

fn reference() -> String {
    ok(&run_cli(&repo(), &["reference"], b"", &[]))
}

#[test]
fn configuration_reference_is_up_to_date() {
    let generated = reference();
    let path = repo().join("docs/configuration.md");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if generated == on_disk {
        return;
    }
    let first_difference = generated
        .lines()
        .zip(on_disk.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .map_or_else(
            || {
                format!(
                    "the binary prints {} lines, the file has {}",
                    generated.lines().count(),
                    on_disk.lines().count()
                )
            },
            |(i, (a, b))| format!("line {}:\n  binary: {a}\n  file:   {b}", i + 1),
        );
    panic!(
        "{} differs from what `ironfaas reference` prints ({first_difference}).\n\
         Regenerate it with {REGENERATE} and commit the result.",
        path.display()
    );
}

/// Non-test Rust source of the workspace's crates (build scripts and test code left out).
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(name.as_str(), "tests" | "examples" | "benches" | "target") {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs")
                && !matches!(name.as_str(), "build.rs" | "tests.rs" | "test_support.rs")
            {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                out.push((path.display().to_string(), without_test_modules(&text)));
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("crates"), &mut out);
    assert!(out.len() > 20, "found too few sources under crates/");
    out
}

/// `text` up to its first inline `#[cfg(test)] mod NAME {`.
fn without_test_modules(text: &str) -> String {
    let mut rest = text;
    let mut kept = String::new();
    while let Some(at) = rest.find("#[cfg(test)]") {
        let after = rest[at + "#[cfg(test)]".len()..].trim_start();
        let inline_module = after.starts_with("mod ")
            && after
                .split_once('\n')
                .is_some_and(|(line, _)| line.trim_end().ends_with('{'));
        if inline_module {
            kept.push_str(&rest[..at]);
            return kept;
        }
        kept.push_str(&rest[..at + 1]);
        rest = &rest[at + 1..];
    }
    kept.push_str(rest);
    kept
}

/// The string literals that follow each of `openers` in `text`.
fn literals_after(text: &str, openers: &[&str]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for opener in openers {
        for (at, _) in text.match_indices(opener) {
            let rest = &text[at + opener.len()..];
            if let Some(end) = rest.find('"') {
                found.insert(format!("{}{}", opener_tail(opener), &rest[..end]));
            }
        }
    }
    found
}

/// The part of an opener that belongs to the name (`get("AWS_` keeps `AWS_`).
fn opener_tail(opener: &str) -> &str {
    opener.rsplit_once('"').map_or("", |(_, tail)| tail)
}

#[test]
fn reference_names_every_environment_variable_the_code_reads() {
    let reference = reference();
    let mut read = BTreeSet::new();
    for (_, text) in sources() {
        read.extend(literals_after(
            &text,
            &[
                "env::var(\"",
                "env::var_os(\"",
                "try_from_env(\"",
                "env = \"",
                "get(\"AWS_",
                "env_value(d, manifest, \"",
                "lookup(\"",
                "env_duration(lookup, \"",
                "env_number(lookup, \"",
            ],
        ));
    }
    assert!(
        read.contains("IRONFAAS_LOG_FORMAT"),
        "the scan found {read:?}"
    );
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !reference.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "the code reads {missing:?}, which docs/configuration.md does not name: add them to the \
         tables in crates/cli/src/commands/reference.rs and run {REGENERATE}"
    );
}

#[test]
fn reference_names_exactly_the_labels_and_annotations_the_code_reads() {
    let reference = reference();
    let mut read = BTreeSet::new();
    for (_, text) in sources() {
        read.extend(literals_after(
            &text,
            &["\"com.openfaas.", "\"com.ironfaas."],
        ));
    }
    let read: BTreeSet<String> = read
        .into_iter()
        .filter(|k| !k.ends_with('.') && !k.contains(' '))
        .collect();
    assert!(
        read.contains("com.openfaas.scale.zero"),
        "the scan found {read:?}"
    );
    let documented: BTreeSet<String> = reference
        .split('`')
        .filter(|s| {
            (s.starts_with("com.openfaas.") || s.starts_with("com.ironfaas."))
                && !s.contains([' ', ':'])
        })
        .map(str::to_string)
        .collect();
    let undocumented: Vec<&String> = read.difference(&documented).collect();
    let unread: Vec<&String> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "read by the code but not in docs/configuration.md: {undocumented:?}; documented but not \
         read by the code: {unread:?}. Fix the tables in crates/cli/src/commands/reference.rs and \
         run {REGENERATE}"
    );
}
