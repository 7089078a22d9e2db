//! `ironfaas build`: build the stack's functions into bundles in the function store.

use clap::Args;
use ironfaas_spec::stack::Stack;

use super::{DataDirArgs, StackArgs, load_stack, stack_dir};
use crate::builder::{Builder, Built};
use crate::failure::{CmdResult, Failure};
use crate::output::{Progress, size, took};
use crate::platform::local_store;
use crate::templates::Templates;

/// Arguments of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    data_dir: DataDirArgs,
}

/// Builds every function of `stack` that is not `skip_build`; stops at the first failure.
pub async fn build_all(
    stack: &Stack,
    templates: &Templates,
    data_dir: &DataDirArgs,
) -> CmdResult<Vec<Built>> {
    let store = local_store(&data_dir.resolve())?;
    let builder = Builder {
        stack_dir: stack_dir(stack),
        templates,
        store: &store,
        copy: stack.configuration.copy.clone(),
    };
    let mut built = Vec::new();
    for f in stack.functions.iter().filter(|f| !f.skip_build) {
        let progress = Progress::start(&f.name);
        match builder.build(f, &|step| progress.step(step)).await {
            Ok(b) => {
                progress.finish(&format!(
                    "built {} ({}, {}) {} in {}",
                    b.image,
                    f.lang,
                    size(b.size),
                    b.digest.short(),
                    took(b.took)
                ));
                built.push(b);
            }
            Err(e) => {
                progress.clear();
                return Err(e);
            }
        }
    }
    Ok(built)
}

pub(super) async fn run(args: BuildArgs) -> CmdResult {
    let cwd = std::env::current_dir().map_err(|e| Failure::failed(e.to_string()))?;
    let templates = Templates::load(&stack_dir_guess(&args.stack, &cwd));
    let stack = load_stack(&args.stack, Some(&templates), true)?;
    let built = build_all(&stack, &templates, &args.data_dir).await?;
    if built.is_empty() {
        eprintln!("nothing to build: every selected function has skip_build: true");
    }
    Ok(())
}

/// Where the project's `template/` folder is: beside the stack file.
pub fn stack_dir_guess(stack: &StackArgs, cwd: &std::path::Path) -> std::path::PathBuf {
    match &stack.file {
        Some(file) => file
            .parent()
            .map(|p| cwd.join(p))
            .unwrap_or_else(|| cwd.to_path_buf()),
        None => cwd.to_path_buf(),
    }
}
