//! Building a function: template + handler + build steps → a bundle in the function store.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use ironfaas_spec::stack::StackFunction;
use ironfaas_spec::timestamp::format_rfc3339;
use ironfaas_store::manifest::{FORMAT, Manifest};
use ironfaas_store::{Digest, FunctionStore, bundle};
use tokio::process::Command;

use crate::failure::{CmdResult, Failure};
use crate::templates::{Templates, copy_dir};

/// Lines of a failed build step's output that are shown.
const FAILED_STEP_LINES: usize = 25;

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image reference it was stored under.
    pub image: String,
    /// The bundle's digest.
    pub digest: Digest,
    /// The bundle's size in bytes.
    pub size: u64,
    /// How long the build took.
    pub took: Duration,
}

/// Where and with what functions are built.
pub struct Builder<'a> {
    /// The folder of the stack file; handlers and `configuration.copy` are relative to it.
    pub stack_dir: PathBuf,
    /// The templates the stack can use.
    pub templates: &'a Templates,
    /// Where bundles go.
    pub store: &'a FunctionStore,
    /// Extra paths copied into every build (`configuration.copy`).
    pub copy: Vec<String>,
}

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::failed(format!("cannot {what} {}: {e}", path.display()))
}

impl Builder<'_> {
    /// Builds `f` into a bundle and stores it under its image; `step` reports progress.
    pub async fn build(&self, f: &StackFunction, step: &dyn Fn(&str)) -> CmdResult<Built> {
        let started = Instant::now();
        let template = self
            .templates
            .get(&f.lang)
            .map_err(|e| Failure::input(format!("function {}: {e}", f.name)))?;
        let dir = self.stack_dir.join("build").join(&f.name);
        step("copying template and handler");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| io_failure("clear", &dir, e))?;
        }
        template
            .copy_into(&dir)
            .map_err(|e| io_failure("copy the template into", &dir, e))?;
        let handler = self.stack_dir.join(&f.handler);
        let handler_dest = dir.join(&template.config.handler_folder);
        copy_dir(&handler, &handler_dest)
            .map_err(|e| io_failure("copy the handler from", &handler, e))?;
        for extra in &self.copy {
            let from = self.stack_dir.join(extra);
            let to = dir.join(extra);
            if from.is_dir() {
                copy_dir(&from, &to).map_err(|e| io_failure("copy", &from, e))?;
            } else {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_failure("create", parent, e))?;
                }
                std::fs::copy(&from, &to).map_err(|e| io_failure("copy", &from, e))?;
            }
        }
        for build_step in &template.config.build {
            if let Some(path) = &build_step.if_exists
                && !dir.join(path).exists()
            {
                continue;
            }
            step(&format!("running {}", build_step.run.join(" ")));
            run_step(&dir, &build_step.run, f).await?;
        }
        step("packing");
        Manifest {
            format: FORMAT,
            function: f.name.clone(),
            template: template.name.clone(),
            mode: template.config.mode,
            listen: template.config.listen,
            fprocess: template.config.fprocess.clone(),
            environment: template.config.environment.clone(),
            built_at: format_rfc3339(SystemTime::now()),
            start_fd: template.config.start_fd,
        }
        .write_to(&dir)
        .map_err(|e| io_failure("write the manifest into", &dir, e))?;
        let packed = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || bundle::pack(&dir))
                .await
                .map_err(|e| Failure::failed(format!("packing {} failed: {e}", f.name)))?
                .map_err(|e| Failure::failed(e.to_string()))?
        };
        step("storing");
        self.store
            .put_bundle(&f.image, packed.file.path(), &packed.digest)
            .await
            .map_err(|e| Failure::failed(e.to_string()))?;
        Ok(Built {
            image: f.image.clone(),
            digest: packed.digest,
            size: packed.size,
            took: started.elapsed(),
        })
    }
}

/// Runs one build step in `dir`, with the function's build_args in its environment.
async fn run_step(dir: &Path, argv: &[String], f: &StackFunction) -> CmdResult {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(&f.build_args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| {
            Failure::failed(format!(
                "function {}: cannot run build step '{}': {e}; is {program} installed?",
                f.name,
                argv.join(" ")
            ))
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(FAILED_STEP_LINES)..].join("\n    ");
    Err(Failure::failed(format!(
        "function {}: build step '{}' failed ({}):\n    {tail}",
        f.name,
        argv.join(" "),
        output.status
    )))
}
