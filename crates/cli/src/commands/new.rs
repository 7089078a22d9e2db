//! `ironfaas new NAME --lang LANG`: a handler folder from the template's starter, and the
//! function added to the stack file (created when missing).

use std::path::{Path, PathBuf};

use clap::Args;
use ironfaas_spec::names::{normalize_image, validate_name};
use ironfaas_spec::stack::{LoadOptions, STACK_FILE_NAMES, load};

use crate::failure::{CmdResult, Failure};
use crate::templates::Templates;

/// Arguments of `new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The function's name (lower-case letters, digits, '-').
    name: String,
    /// The template (see `ironfaas template list`).
    #[arg(long)]
    lang: String,
    /// The stack file to add it to (default: stack.yaml or stack.yml, else a new stack.yaml).
    #[arg(short = 'f', long = "yaml", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Image prefix, e.g. registry.example.no/team (or $OPENFAAS_PREFIX).
    #[arg(short, long, env = "OPENFAAS_PREFIX", default_value = "")]
    prefix: String,
    /// The handler folder (default: ./NAME).
    #[arg(long)]
    handler: Option<String>,
}

/// The stack file to use in `dir`.
fn stack_path(explicit: Option<&Path>, dir: &Path) -> PathBuf {
    if let Some(file) = explicit {
        return file.to_path_buf();
    }
    STACK_FILE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.exists())
        .unwrap_or_else(|| dir.join(STACK_FILE_NAMES[0]))
}

/// The YAML of one function entry, indented under `functions:`.
fn entry(name: &str, lang: &str, handler: &str, image: &str) -> String {
    format!("  {name}:\n    lang: {lang}\n    handler: {handler}\n    image: {image}\n")
}

/// Inserts `entry` at the end of the `functions:` block of `text`, keeping everything else
/// (comments, other sections) as it was.
fn add_to_functions(text: &str, entry: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == "functions:")?;
    let is_top_level = |l: &&str| !l.is_empty() && !l.starts_with([' ', '\t', '#']);
    let end = lines[start + 1..]
        .iter()
        .position(is_top_level)
        .map_or(lines.len(), |i| start + 1 + i);
    // Keep trailing blank lines and comments of the block after the new entry.
    let mut insert_at = end;
    while insert_at > start + 1
        && (lines[insert_at - 1].trim().is_empty() || lines[insert_at - 1].starts_with('#'))
    {
        insert_at -= 1;
    }
    let mut out: Vec<String> = lines[..insert_at].iter().map(|l| l.to_string()).collect();
    out.extend(entry.lines().map(str::to_string));
    out.extend(lines[insert_at..].iter().map(|l| l.to_string()));
    Some(out.join("\n") + "\n")
}

pub(super) async fn run(args: NewArgs) -> CmdResult {
    validate_name(&args.name).map_err(|e| Failure::input(format!("function name: {e}")))?;
    let cwd = std::env::current_dir().map_err(|e| Failure::failed(e.to_string()))?;
    let stack = stack_path(args.file.as_deref(), &cwd);
    let project = stack.parent().map(Path::to_path_buf).unwrap_or(cwd);
    let templates = Templates::load(&project);
    let template = templates.get(&args.lang).map_err(Failure::input)?;
    let handler = args
        .handler
        .clone()
        .unwrap_or_else(|| format!("./{}", args.name));
    let handler_dir = project.join(&handler);
    if handler_dir.exists() {
        return Err(Failure::input(format!(
            "{} exists already; pick another name or --handler folder",
            handler_dir.display()
        )));
    }
    let image = if args.prefix.is_empty() {
        args.name.clone()
    } else {
        format!("{}/{}", args.prefix.trim_end_matches('/'), args.name)
    };
    let image = normalize_image(&image).map_err(|e| Failure::input(e.to_string()))?;
    let new_entry = entry(&args.name, &args.lang, &handler, &image);
    let text = if stack.exists() {
        let options = LoadOptions {
            known_langs: None,
            check_handlers: false,
            ..LoadOptions::default()
        };
        let loaded = load(&stack, &options).map_err(|e| {
            Failure::input(format!(
                "{e}\nfix the stack file before adding a function to it"
            ))
        })?;
        if loaded.functions.iter().any(|f| f.name == args.name) {
            return Err(Failure::input(format!(
                "function {} is in {} already",
                args.name,
                stack.display()
            )));
        }
        let current =
            std::fs::read_to_string(&stack).map_err(|e| Failure::failed(e.to_string()))?;
        add_to_functions(&current, &new_entry).ok_or_else(|| {
            Failure::input(format!(
                "{} has no `functions:` section to add to",
                stack.display()
            ))
        })?
    } else {
        format!("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n{new_entry}")
    };
    template
        .scaffold_into(&handler_dir)
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", handler_dir.display())))?;
    std::fs::write(&stack, text)
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", stack.display())))?;
    eprintln!(
        "created {} from template {} and added {} to {}",
        handler_dir.display(),
        args.lang,
        args.name,
        stack.display()
    );
    if !template.config.welcome_message.is_empty() {
        eprintln!("\n{}", template.config.welcome_message.trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_to_the_functions_block_only() {
        let text = "provider:\n  name: openfaas\nfunctions:\n  a:\n    lang: node\n\n# tail comment\nconfiguration:\n  copy: [x]\n";
        let out = add_to_functions(text, &entry("b", "python3-http", "./b", "b:latest")).unwrap();
        assert_eq!(
            out,
            "provider:\n  name: openfaas\nfunctions:\n  a:\n    lang: node\n  b:\n    lang: python3-http\n    handler: ./b\n    image: b:latest\n\n# tail comment\nconfiguration:\n  copy: [x]\n"
        );
        assert!(add_to_functions("provider: {}\n", "x").is_none());
    }
}
