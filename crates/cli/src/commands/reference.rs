//! `ironfaas reference`: the configuration reference in Markdown (docs/configuration.md), made
//! from the command line's own definition, so every command, flag, environment variable and
//! default in it is the binary's. What clap does not know, the environment variables read
//! without a flag and the stack.yml labels and annotations, is listed in the tables below; a
//! test (tests/e2e/docs.rs) checks them against the names the code reads.

use std::fmt::Write;

use clap::{Arg, Command, CommandFactory};

use crate::failure::CmdResult;

/// How the reference is regenerated (printed in the file and by the test that checks it).
pub const REGENERATE: &str = "scripts/gen-docs";

/// An environment variable the code reads without a flag: its name, who reads it, meaning.
struct EnvVar {
    name: &'static str,
    read_by: &'static str,
    meaning: &'static str,
}

/// Environment variables of the `ironfaas` process that no flag declares.
const PLATFORM_ENV: &[EnvVar] = &[
    EnvVar {
        name: "IRONFAAS_LOG",
        read_by: "every command",
        meaning: "The log filter (`tracing` EnvFilter syntax: `debug`, `warn,ironfaas_runtime=debug`, …). \
                  Default: `info` for `serve` and `up`, `warn` for the other commands. Logs go to stderr.",
    },
    EnvVar {
        name: "IRONFAAS_LOG_FORMAT",
        read_by: "every command",
        meaning: "`json`: one JSON object per log line. Any other value or unset: text.",
    },
    EnvVar {
        name: "IRONFAAS_ADMIN_PASSWORD",
        read_by: "`serve`, `up` (with `--auth on`)",
        meaning: "The admin's password, used only when the data dir has no `auth/basic-auth-password` yet \
                  (first start); then it is written there. Unset: a random password is made.",
    },
    EnvVar {
        name: "IRONFAAS_PASSWORD",
        read_by: "commands that call a gateway",
        meaning: "The password to send (basic auth). It wins over `ironfaas login` and the data dir's \
                  password file.",
    },
    EnvVar {
        name: "IRONFAAS_USER",
        read_by: "commands that call a gateway",
        meaning: "The user sent with `IRONFAAS_PASSWORD`. Default: `admin`.",
    },
    EnvVar {
        name: "IRONFAAS_DATA_DIR",
        read_by: "commands that call a gateway",
        meaning: "Besides being `--data-dir`'s variable: for a gateway on `127.0.0.1`, `localhost` or `[::1]`, \
                  the CLI reads the admin password from this data dir's `auth/` when no other \
                  credentials are given.",
    },
    EnvVar {
        name: "OPENFAAS_URL",
        read_by: "commands that call a gateway",
        meaning: "The gateway URL when neither `--gateway` nor the stack's `provider.gateway` sets one \
                  (a value equal to `http://127.0.0.1:8080` counts as unset). Only `http://` URLs.",
    },
    EnvVar {
        name: "OPENFAAS_CONFIG",
        read_by: "`login`, `logout`, commands that call a gateway",
        meaning: "The folder of the login file `config.yml`. Default: `~/.openfaas` (faas-cli's).",
    },
    EnvVar {
        name: "HOME",
        read_by: "every command",
        meaning: "Finds `~/.openfaas/config.yml`, and the data dir `~/.local/share/ironfaas` when not \
                  root and `XDG_DATA_HOME` is unset.",
    },
    EnvVar {
        name: "XDG_DATA_HOME",
        read_by: "every command that uses the data dir",
        meaning: "When not root and no `--data-dir`/`IRONFAAS_DATA_DIR`: the data dir is \
                  `$XDG_DATA_HOME/ironfaas`.",
    },
    EnvVar {
        name: "PATH",
        read_by: "`serve`, `up`",
        meaning: "Where `bwrap` is looked for (and `/usr/bin`). Unsandboxed replicas get it and their start \
                  command is looked up on it; sandboxed ones get \
                  `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`.",
    },
    EnvVar {
        name: "LANG",
        read_by: "`serve`, `up`",
        meaning: "Passed on to replicas, as are `LC_ALL`, `LC_CTYPE` and `TZ`.",
    },
    EnvVar {
        name: "LC_ALL",
        read_by: "`serve`, `up`",
        meaning: "Passed on to replicas.",
    },
    EnvVar {
        name: "LC_CTYPE",
        read_by: "`serve`, `up`",
        meaning: "Passed on to replicas.",
    },
    EnvVar {
        name: "TZ",
        read_by: "`serve`, `up`",
        meaning: "Passed on to replicas.",
    },
    EnvVar {
        name: "AWS_ACCESS_KEY_ID",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The S3 access key (with `AWS_SECRET_ACCESS_KEY`; `AWS_SESSION_TOKEN` when temporary).",
    },
    EnvVar {
        name: "AWS_SECRET_ACCESS_KEY",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The S3 secret key.",
    },
    EnvVar {
        name: "SSL_CERT_FILE",
        read_by: "`serve` (its asynchronous calls' callbacks)",
        meaning: "A PEM file of the certificate authorities trusted for `https://` callbacks, \
                  instead of the system's (`SSL_CERT_DIR`: a folder of them).",
    },
    EnvVar {
        name: "AWS_SESSION_TOKEN",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The session token of temporary S3 credentials.",
    },
    EnvVar {
        name: "AWS_REGION",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The region when the URL has no `region=` (else `AWS_DEFAULT_REGION`, else `us-east-1`).",
    },
    EnvVar {
        name: "AWS_DEFAULT_REGION",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The region when neither the URL nor `AWS_REGION` gives one.",
    },
    EnvVar {
        name: "AWS_ENDPOINT_URL_S3",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The endpoint (e.g. MinIO's) when the URL has no `endpoint=` (else `AWS_ENDPOINT_URL`, \
                  else AWS).",
    },
    EnvVar {
        name: "AWS_ENDPOINT_URL",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "The endpoint when neither the URL nor `AWS_ENDPOINT_URL_S3` gives one.",
    },
    EnvVar {
        name: "AWS_ALLOW_HTTP",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "`true`: allow a plain `http://` endpoint (as `allow_http=true` in the URL).",
    },
    EnvVar {
        name: "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        read_by: "`serve`, `up`, `push` with an `s3://` store",
        meaning: "`true`: virtual-hosted-style requests (as `virtual_hosted_style=true` in the URL).",
    },
];

/// Environment variables of a function (stack.yml `environment:`) that ironfaas itself reads.
const FUNCTION_ENV: &[EnvVar] = &[
    EnvVar {
        name: "mode",
        read_by: "platform, watchdog",
        meaning: "`http` (the function serves HTTP), `streaming` (a process per call, body on stdin, \
                  stdout streamed back) or `serializing` (a process per call, whole body in, whole \
                  answer out). Default: the template's.",
    },
    EnvVar {
        name: "exec_timeout",
        read_by: "platform, watchdog",
        meaning: "The longest one call may take (then 504); `0` or unset: no limit of its own. May not \
                  exceed `--upstream-timeout` (the deploy is refused with a 400).",
    },
    EnvVar {
        name: "max_inflight",
        read_by: "platform, watchdog",
        meaning: "Calls one replica takes at once (more get 429); `0` or unset: no limit.",
    },
    EnvVar {
        name: "content_type",
        read_by: "watchdog",
        meaning: "The `Content-Type` of a process-per-call function's answer. Default: \
                  `application/octet-stream`.",
    },
    EnvVar {
        name: "write_timeout",
        read_by: "watchdog",
        meaning: "How long calls in flight may finish after SIGTERM. Default: `30s`.",
    },
    EnvVar {
        name: "max_body_bytes",
        read_by: "watchdog",
        meaning: "The largest body `serializing` mode reads, in bytes. Default: 67108864 (64Mi).",
    },
    EnvVar {
        name: "fprocess",
        read_by: "watchdog",
        meaning: "The command run per call (`function_process` is read too). Set by the platform from the \
                  stack's `fprocess`, else the template's (a value in `environment:` is overridden).",
    },
    EnvVar {
        name: "function_process",
        read_by: "watchdog",
        meaning: "Read when `fprocess` is unset.",
    },
    EnvVar {
        name: "port",
        read_by: "watchdog",
        meaning: "The TCP port the watchdog listens on when it has no `IRONFAAS_SOCKET` (outside the \
                  platform). Default: 8080.",
    },
];

/// A stack.yml label or annotation ironfaas reads.
struct Key {
    name: &'static str,
    default: &'static str,
    meaning: &'static str,
}

/// The `labels:` ironfaas reads (the autoscaler's policy).
const LABELS: &[Key] = &[
    Key {
        name: "com.openfaas.scale.min",
        default: "1",
        meaning: "Replicas started on deploy and kept at least while the function is in use.",
    },
    Key {
        name: "com.openfaas.scale.max",
        default: "20 (or `min` when larger)",
        meaning: "Replicas at most (1000 at most). `min` = `max` turns the autoscaler off for \
                  the function.",
    },
    Key {
        name: "com.openfaas.scale.target",
        default: "50",
        meaning: "The load per replica the autoscaler aims for.",
    },
    Key {
        name: "com.openfaas.scale.type",
        default: "`rps`",
        meaning: "What load is: `rps` (calls per second) or `capacity` (calls in flight).",
    },
    Key {
        name: "com.openfaas.scale.target-proportion",
        default: "0.90",
        meaning: "Scale up once the load reaches this share of the target (above 0, at most 1).",
    },
    Key {
        name: "com.openfaas.scale.zero",
        default: "`false`",
        meaning: "`true`: an idle function goes down to zero replicas; the next call starts one.",
    },
    Key {
        name: "com.openfaas.scale.zero-duration",
        default: "`15m`",
        meaning: "How long a function must go without calls before it goes to zero.",
    },
];

/// The `annotations:` ironfaas reads.
const ANNOTATIONS: &[Key] = &[
    Key {
        name: "com.openfaas.ready.http.path",
        default: "`/_/health`",
        meaning: "The path of the readiness probe; a replica gets calls once it answers there.",
    },
    Key {
        name: "com.openfaas.retry.attempts",
        default: "10",
        meaning: "Attempts of an asynchronous call in all, the first included.",
    },
    Key {
        name: "com.openfaas.retry.codes",
        default: "`408,429,500,502,503,504`",
        meaning: "Status codes after which an asynchronous call is tried again (transport errors always are).",
    },
    Key {
        name: "com.openfaas.retry.min_wait",
        default: "`2s`",
        meaning: "The wait before the first retry; it doubles per attempt.",
    },
    Key {
        name: "com.openfaas.retry.max_wait",
        default: "`120s`",
        meaning: "The longest wait between attempts.",
    },
    Key {
        name: "com.openfaas.queue.max_inflight",
        default: "no limit",
        meaning: "Asynchronous calls of the function made at once (over all workers of one process).",
    },
    Key {
        name: "com.ironfaas.route",
        default: "none",
        meaning: "Path prefixes (comma-separated, e.g. `/api/v2/transform`) on the gateway that call the \
                  function with the rest of the path.",
    },
    Key {
        name: "com.ironfaas.auth",
        default: "none",
        meaning: "`basic` (or `true`): calling the function needs the admin's credentials.",
    },
    Key {
        name: "com.ironfaas.network",
        default: "network on",
        meaning: "`none`: sandboxed replicas get only a loopback interface (templates that listen on a \
                  Unix socket only).",
    },
    Key {
        name: "com.ironfaas.pids",
        default: "512",
        meaning: "Processes and threads a sandboxed replica may have (its pids cgroup; at least 4).",
    },
];

pub(super) async fn run() -> CmdResult {
    print!("{}", markdown());
    Ok(())
}

/// The whole reference.
pub fn markdown() -> String {
    let mut root = crate::Cli::command().bin_name("ironfaas");
    root.build();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Configuration reference\n\n\
         <!-- Generated by `ironfaas reference` from the code: do not edit by hand. \
         Regenerate with `{REGENERATE}`; a test fails when this file is out of date. -->\n\n\
         Every command and flag of `ironfaas` {version}, with its environment variable and \
         default; then the environment variables read without a flag, and the stack.yml labels \
         and annotations ironfaas reads. A flag wins over its environment variable, which wins \
         over the default. Durations are written `500ms`, `30s`, `5m`, `1h` (a bare number is \
         seconds); sizes `512Ki`, `64Mi`, `1Gi` (also `K`, `M`, `G`, or bytes).\n",
        version = env!("CARGO_PKG_VERSION"),
    );
    let commands = visible_subcommands(&root);
    let _ = writeln!(out, "## Commands\n\n| command | what it does |\n|---|---|");
    for cmd in &commands {
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} |",
            cmd_path(cmd),
            anchor(&cmd_path(cmd)),
            cell(&about(cmd))
        );
    }
    out.push('\n');
    for cmd in &commands {
        command_section(&mut out, cmd, 2);
    }
    env_section(
        &mut out,
        "Environment variables without a flag",
        "Read by the `ironfaas` process itself. A stack file may also use any variable as \
         `$VAR` or `${VAR:-default}` (unless `--no-envsubst`).",
        PLATFORM_ENV,
    );
    env_section(
        &mut out,
        "Function environment",
        "Keys of a function's `environment:` (or `environment_file:`) in stack.yml that ironfaas \
         reads, as OpenFaaS' watchdog does. The watchdog runs process-per-call functions \
         (`streaming`, `serializing`). Every replica also gets `OPENFAAS_NAME` (the function), \
         `HOSTNAME` (the replica), `HOME=/tmp`, `fprocess`, where to listen (`IRONFAAS_SOCKET`, \
         or `PORT` and `HOST` for templates that listen on TCP) and, unless \
         `readonly_root_filesystem: true`, `IRONFAAS_WORK_DIR` (a writable folder kept across \
         restarts); the watchdog also gets `IRONFAAS_READY_FD`, the pipe it reports readiness \
         on. A warm spare (`serve --spare-sandbox warm`) of a template whose template.yml says \
         `start_fd: true` (python3-http, node) gets `IRONFAAS_START_FD`: its runtime starts, \
         then waits for one byte on that descriptor before it loads the function's code (end of \
         file: it exits).",
        FUNCTION_ENV,
    );
    key_section(
        &mut out,
        "Labels",
        "Read from a function's `labels:`.",
        LABELS,
    );
    key_section(
        &mut out,
        "Annotations",
        "Read from a function's `annotations:`.",
        ANNOTATIONS,
    );
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Subcommands worth documenting: not hidden, not clap's `help`.
fn visible_subcommands(cmd: &Command) -> Vec<&Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .collect()
}

/// `ironfaas queue list`, from the bin name clap set when building.
fn cmd_path(cmd: &Command) -> String {
    cmd.get_bin_name()
        .map_or_else(|| cmd.get_name().to_string(), str::to_string)
}

/// GitHub's anchor of a heading made of `text` in backticks.
fn anchor(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn about(cmd: &Command) -> String {
    cmd.get_long_about()
        .or(cmd.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// Text made fit for a table cell: one line, pipes escaped, and `*` outside code spans
/// escaped (help texts write globs like /system/*).
fn cell(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.split('`')
        .enumerate()
        .map(|(i, part)| {
            let part = part.replace('|', "\\|");
            if i % 2 == 0 {
                part.replace('*', "\\*")
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

fn command_section(out: &mut String, cmd: &Command, depth: usize) {
    let path = cmd_path(cmd);
    let _ = writeln!(out, "{} `{path}`\n", "#".repeat(depth.min(4)));
    let about = about(cmd);
    if !about.is_empty() {
        let _ = writeln!(out, "{}\n", about.trim_end());
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.trim_start_matches("Usage:").trim();
    let _ = writeln!(out, "```\n{usage}\n```\n");
    let args: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    let positionals: Vec<&Arg> = args.iter().copied().filter(|a| a.is_positional()).collect();
    if !positionals.is_empty() {
        let _ = writeln!(out, "| argument | meaning |\n|---|---|");
        for arg in positionals {
            let name = arg
                .get_value_names()
                .and_then(|n| n.first())
                .map_or_else(|| arg.get_id().to_string(), ToString::to_string);
            let shown = if arg.is_required_set() {
                format!("<{name}>")
            } else {
                format!("[{name}]")
            };
            let _ = writeln!(out, "| `{shown}` | {} |", cell(&help(arg)));
        }
        out.push('\n');
    }
    let options: Vec<&Arg> = args
        .iter()
        .copied()
        .filter(|a| !a.is_positional())
        .collect();
    if !options.is_empty() {
        let _ = writeln!(
            out,
            "| flag | environment | default | meaning |\n|---|---|---|---|"
        );
        for arg in options {
            let env = arg
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let default = default_values(arg)
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .filter(|v| !v.is_empty())
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                out,
                "| `{}` | {env} | {default} | {} |",
                cell(&flag(arg)),
                cell(&help(arg))
            );
        }
        out.push('\n');
    }
    for sub in visible_subcommands(cmd) {
        command_section(out, sub, depth + 1);
    }
}

/// The defaults worth showing: none for on/off switches, whose default is always off.
fn default_values(arg: &Arg) -> &[clap::builder::OsStr] {
    if arg.get_action().takes_values() {
        arg.get_default_values()
    } else {
        &[]
    }
}

/// `-f, --yaml <FILE>`.
fn flag(arg: &Arg) -> String {
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let mut text = names.join(", ");
    if arg.get_action().takes_values() {
        let value = arg.get_value_names().and_then(|n| n.first()).map_or_else(
            || arg.get_id().to_string().to_uppercase(),
            ToString::to_string,
        );
        let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        if optional {
            let _ = write!(text, " [{value}]");
        } else {
            let _ = write!(text, " <{value}>");
        }
    }
    text
}

/// The argument's help, with its possible values when they carry their own help.
fn help(arg: &Arg) -> String {
    let mut text = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| match v.get_help() {
            Some(h) => format!("`{}`: {h}", v.get_name()),
            None => format!("`{}`", v.get_name()),
        })
        .collect();
    if !values.is_empty() && arg.get_action().takes_values() {
        if !text.is_empty() && !text.ends_with('.') {
            text.push('.');
        }
        let _ = write!(text, " Values: {}.", values.join("; "));
    }
    text
}

fn env_section(out: &mut String, title: &str, intro: &str, vars: &[EnvVar]) {
    let _ = writeln!(
        out,
        "## {title}\n\n{intro}\n\n| variable | read by | meaning |\n|---|---|---|"
    );
    for v in vars {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            v.name,
            cell(v.read_by),
            cell(v.meaning)
        );
    }
    out.push('\n');
}

fn key_section(out: &mut String, title: &str, intro: &str, keys: &[Key]) {
    let _ = writeln!(
        out,
        "## {title}\n\n{intro}\n\n| key | default | meaning |\n|---|---|---|"
    );
    for k in keys {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            k.name,
            cell(k.default),
            cell(k.meaning)
        );
    }
    out.push('\n');
}
