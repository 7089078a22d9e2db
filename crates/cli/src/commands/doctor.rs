//! `ironfaas doctor`: what this machine offers the platform and what would help, each finding
//! with its fix; `--apply` raises the kernel settings that are below the recommendation.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::DataDirArgs;
use crate::doctor::apply::{self, Change, DEFAULT_SYSCTL_FILE};
use crate::doctor::{self, Options};
use crate::failure::{CmdResult, Failure};
use crate::platform::SandboxMode;

/// Arguments of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    data_dir: DataDirArgs,
    /// The sandbox mode `serve` will run with: with `on` a missing part of the sandbox fails,
    /// with `auto` it is a warning, with `off` it does not apply.
    #[arg(long, env = "IRONFAAS_SANDBOX", value_enum, default_value = "auto")]
    sandbox: SandboxMode,
    /// Print the findings as a JSON array of {check, status, found, recommended, why, fix}.
    #[arg(long, conflicts_with_all = ["apply", "yes", "sysctl_file", "no_load"])]
    json: bool,
    /// Raise the kernel settings that are below the recommendation: write them to
    /// --sysctl-file and load them into the running kernel (root only; asks first).
    #[arg(long)]
    apply: bool,
    /// With --apply: do not ask for confirmation.
    #[arg(short, long, requires = "apply")]
    yes: bool,
    /// With --apply: the sysctl drop-in file to write.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SYSCTL_FILE, requires = "apply")]
    sysctl_file: PathBuf,
    /// With --apply: only write the file; the running kernel keeps its values until the next
    /// boot or `sysctl -p FILE`.
    #[arg(long, requires = "apply")]
    no_load: bool,
}

pub(super) async fn run(args: DoctorArgs) -> CmdResult {
    if args.apply {
        refuse_apply(&args)?;
    }
    let options = Options {
        data_dir: args.data_dir.resolve(),
        sandbox: args.sandbox,
    };
    let checks = doctor::run(&options).await;
    if args.json {
        let json =
            serde_json::to_string_pretty(&checks).map_err(|e| Failure::failed(e.to_string()))?;
        println!("{json}");
    } else {
        print!("{}", doctor::render(&checks));
    }
    if args.apply {
        apply_settings(&args)?;
    }
    let failed = doctor::failed(&checks);
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "this machine cannot run ironfaas as configured: {} failed (see the fixes above)",
            failed.join(", ")
        )))
    }
}

/// Why `--apply` cannot go ahead: not root, or no way to ask for confirmation.
fn refuse_apply(args: &DoctorArgs) -> CmdResult {
    if !nix::unistd::geteuid().is_root() {
        return Err(Failure::failed(format!(
            "--apply writes {} and kernel settings, which only root may do: run `sudo ironfaas \
             doctor --apply`",
            args.sysctl_file.display()
        )));
    }
    if !args.yes && !std::io::stdin().is_terminal() {
        return Err(Failure::input(
            "--apply asks for confirmation, but there is no terminal to ask on: pass --yes to \
             apply without asking",
        ));
    }
    Ok(())
}

/// Writes the settings below the recommendation to the drop-in and loads them.
fn apply_settings(args: &DoctorArgs) -> CmdResult {
    let file = &args.sysctl_file;
    let changes = apply::changes();
    if changes.is_empty() {
        println!(
            "\n--apply: every kernel setting is at or above the recommendation; nothing to write"
        );
        return Ok(());
    }
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::failed(format!(
                "cannot read {}: {e}",
                file.display()
            )));
        }
    };
    println!("\n--apply raises these kernel settings (none is lowered):");
    for Change { name, from, to } in &changes {
        println!("  {name}: {from} -> {to}");
    }
    let text = apply::drop_in(existing.as_deref(), &changes);
    println!("by writing {}:\n{text}", file.display());
    if args.no_load {
        println!("and not loading them now (--no-load)");
    } else {
        println!("and loading them into the running kernel");
    }
    if !args.yes && !confirm("Go ahead? [y/N] ")? {
        return Err(Failure::failed("nothing written: not confirmed"));
    }
    apply::write(file, &text).map_err(Failure::failed)?;
    println!("wrote {}", file.display());
    if args.no_load {
        println!(
            "not loaded (--no-load): they take effect at the next boot, or now with `sysctl -p \
             {}`",
            file.display()
        );
        return Ok(());
    }
    let mut errors = Vec::new();
    for change in &changes {
        match apply::load(change) {
            Ok(now) => println!("  {}: {} -> {now}", change.name, change.from),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Failure::failed(errors.join("; ")))
    }
}

/// Asks `question` on the terminal; true for `y` or `yes`.
fn confirm(question: &str) -> CmdResult<bool> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::failed(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
