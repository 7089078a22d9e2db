//! stack.yml: arbitrary text through the whole loading pipeline (`$VAR` substitution, YAML
//! parsing, the shape check, validation), as `ironfaas up`/`deploy` run it on a user's file.
//!
//! Beyond "no panic, no hang", it asserts:
//! - loading is deterministic: the same text gives the same stack or the same problems;
//! - a text without `$` loads the same with and without substitution;
//! - a refused stack is an `Invalid` error with at least one problem, each with a message and
//!   a fix, placed inside the file, and rendered on exactly two lines (control characters
//!   from the input escaped);
//! - a loaded stack holds only what validation promises (valid names, normalised images,
//!   parseable quantities), and each function's deployment request survives a JSON round
//!   trip through the wire type the gateway reads.

#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ironfaas_spec::names::{normalize_image, validate_name};
use ironfaas_spec::stack::quantity::{parse_cpu_millis, parse_memory};
use ironfaas_spec::stack::{LoadOptions, Stack, StackError, StackErrorKind, load_text};
use ironfaas_spec::wire::FunctionDeployment;
use libfuzzer_sys::fuzz_target;

/// The templates the loader knows, so that `lang` is checked and misspellings suggested.
const LANGS: [&str; 5] = ["python3-http", "node", "bash-streaming", "go", "binary"];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = project().join("stack.yml");
    let loaded = load_text(&text, &path, &options(true));
    let again = load_text(&text, &path, &options(true));
    assert_eq!(
        loaded, again,
        "loading the same text twice gave different results"
    );
    if !text.contains('$') {
        let verbatim = load_text(&text, &path, &options(false));
        assert_eq!(loaded, verbatim, "substitution changed a text without `$`");
    }
    match loaded {
        Ok(stack) => check_stack(&stack),
        Err(err) => check_error(&err, &path, &text),
    }
});

/// A project folder the stack file is in: handler folders and environment files for the
/// seeds' paths to resolve. The same folder for every run, written atomically, so that
/// parallel fuzzing jobs see the same files.
fn project() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("ironfaas-fuzz-stack-yml");
        for handler in [
            "hello",
            "gdpr-delete",
            "transform",
            "csv-stats",
            "wordcount",
        ] {
            fs::create_dir_all(dir.join(handler)).expect("create a handler folder");
        }
        fs::create_dir_all(dir.join("env")).expect("create the env folder");
        let files = [
            ("env/common.yml", "environment:\n  REGION: eu-north-1\n"),
            ("env/empty.yml", "environment: {}\n"),
            ("env/wrong.yml", "variables:\n  A: b\n"),
        ];
        for (name, contents) in files {
            let staged = dir.join(format!("{name}.{}", std::process::id()));
            fs::write(&staged, contents).expect("write an environment file");
            fs::rename(&staged, dir.join(name)).expect("move an environment file in place");
        }
        dir
    })
}

/// What `ironfaas up` passes, with a fixed environment.
fn options(envsubst: bool) -> LoadOptions {
    LoadOptions {
        env: Box::new(|name| {
            let value = match name {
                "REGISTRY" => "registry.example.no",
                "USER" => "alice",
                "TAG" => "0.2",
                "EMPTY" => "",
                _ => return None,
            };
            Some(value.to_string())
        }),
        envsubst,
        known_langs: Some(LANGS.iter().map(|l| l.to_string()).collect()),
        check_handlers: true,
    }
}

fn check_stack(stack: &Stack) {
    assert!(
        !stack.functions.is_empty(),
        "a stack without functions loaded"
    );
    for f in &stack.functions {
        assert_eq!(
            validate_name(&f.name),
            Ok(()),
            "function name {:?} loaded",
            f.name
        );
        assert_eq!(
            normalize_image(&f.image).as_ref(),
            Ok(&f.image),
            "image {:?} is not normalised",
            f.image
        );
        if let Some(namespace) = &f.namespace {
            assert_eq!(validate_name(namespace), Ok(()), "namespace {namespace:?}");
        }
        if !f.skip_build {
            assert!(!f.lang.is_empty() && !f.handler.is_empty(), "{f:?}");
            assert!(LANGS.contains(&f.lang.as_str()), "lang {:?} loaded", f.lang);
        }
        for secret in &f.secrets {
            assert!(
                !secret.is_empty() && !secret.contains('/') && !secret.contains(".."),
                "secret {secret:?} loaded"
            );
        }
        for resources in [&f.limits, &f.requests].into_iter().flatten() {
            if !resources.memory.is_empty() {
                parse_memory(&resources.memory).expect("memory validated");
            }
            if !resources.cpu.is_empty() {
                parse_cpu_millis(&resources.cpu).expect("cpu validated");
            }
        }
        let body = f.deployment(f.fprocess.clone().unwrap_or_default());
        let json = serde_json::to_vec(&body).expect("a deployment serializes");
        let back: FunctionDeployment =
            serde_json::from_slice(&json).expect("a deployment's JSON parses");
        assert_eq!(back, body, "deployment changed through JSON");
    }
}

fn check_error(err: &StackError, path: &Path, text: &str) {
    assert_eq!(err.kind, StackErrorKind::Invalid, "{err}");
    assert_eq!(err.path, path);
    assert!(!err.diagnostics.is_empty(), "an error without problems");
    // Substitution never adds lines (no variable's value holds a newline), so a problem in
    // the stack file is at most one line past its end. YAML breaks lines at `\r\n`, `\n`
    // and a lone `\r` (as editors do).
    let last_line = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 2;
    for d in &err.diagnostics {
        assert!(
            !d.message.trim().is_empty(),
            "a problem without a message: {d:?}"
        );
        let fix = d.fix.as_deref().unwrap_or_default();
        assert!(!fix.trim().is_empty(), "a problem without a fix: {d:?}");
        if d.file == path {
            assert!(d.line <= last_line, "line {} of {last_line}: {d:?}", d.line);
        }
    }
    let shown = err.to_string();
    assert_eq!(
        shown.lines().count(),
        2 * err.diagnostics.len(),
        "each problem is shown on its line and its fix's: {shown:?}"
    );
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "control characters reach the terminal: {shown:?}"
    );
}
