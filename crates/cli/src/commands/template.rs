//! `ironfaas template list`: the templates a project can use.

use clap::{Args, Subcommand};

use crate::failure::{CmdResult, Failure};
use crate::output::table;
use crate::templates::Templates;

/// Arguments of `template`.
#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    command: TemplateCommand,
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// List the embedded templates and those in ./template/.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(args: TemplateArgs) -> CmdResult {
    let TemplateCommand::List { json } = args.command;
    let cwd = std::env::current_dir().map_err(|e| Failure::failed(e.to_string()))?;
    let templates = Templates::load(&cwd);
    let mut rows = Vec::new();
    let mut list = Vec::new();
    for name in templates.names() {
        match templates.get(&name) {
            Ok(t) => {
                rows.push(vec![
                    name.clone(),
                    t.config.mode.to_string(),
                    t.config.fprocess.clone(),
                    t.source(),
                ]);
                list.push(serde_json::json!({"name": name, "mode": t.config.mode.to_string(), "fprocess": t.config.fprocess, "source": t.source()}));
            }
            Err(e) => {
                rows.push(vec![
                    name.clone(),
                    "-".into(),
                    format!("invalid: {e}"),
                    "-".into(),
                ]);
                list.push(serde_json::json!({"name": name, "error": e}));
            }
        }
    }
    if json {
        println!("{}", serde_json::Value::Array(list));
    } else {
        print!(
            "{}",
            table(&["TEMPLATE", "MODE", "START COMMAND", "SOURCE"], &rows)
        );
    }
    Ok(())
}
