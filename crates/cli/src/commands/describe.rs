//! `ironfaas describe NAME`: one function in detail, or its JSON.

use clap::Args;
use ironfaas_spec::scaling::ScalePolicy;
use ironfaas_spec::wire::{FunctionStatus, StringMap};

use super::{GatewayArgs, NamespaceArgs, function_url};
use crate::failure::{CmdResult, Failure};
use crate::output::table;

/// Arguments of `describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The function.
    name: String,
    /// Print the API's FunctionStatus JSON for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

fn map_lines(map: Option<&StringMap>) -> String {
    match map {
        Some(m) if !m.is_empty() => m.iter().map(|(k, v)| format!("\n  {k}: {v}")).collect(),
        _ => " -".to_string(),
    }
}

fn render(f: &FunctionStatus, url: &str) -> String {
    let ready = if f.replicas > 0 && f.available_replicas >= f.replicas {
        "Ready"
    } else if f.replicas == 0 {
        "Scaled to zero (starts on the next call)"
    } else {
        "Not ready"
    };
    let policy = ScalePolicy::from_labels(f.spec.labels.as_ref())
        .map_or_else(|e| format!("invalid: {e}"), |p| p.summary());
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let rows = [
        ("Name", f.name.clone()),
        ("Namespace", f.spec.namespace.clone()),
        ("Status", ready.to_string()),
        (
            "Replicas",
            format!("{} ready of {} desired", f.available_replicas, f.replicas),
        ),
        ("Scaling", policy),
        ("Invocations", (f.invocation_count as u64).to_string()),
        ("Cold starts", f.cold_starts.to_string()),
        ("Last call", or_dash(&f.last_invocation)),
        ("Image", f.spec.image.clone()),
        ("Digest", or_dash(&f.digest)),
        (
            "Start command",
            if f.spec.env_process.is_empty() {
                "(the template's)".into()
            } else {
                f.spec.env_process.clone()
            },
        ),
        ("URL", url.to_string()),
        ("Created", f.created_at.clone()),
    ];
    let mut out = String::new();
    for (key, value) in rows {
        out.push_str(&format!("{:<20}{value}\n", format!("{key}:")));
    }
    out.push_str(&format!(
        "Environment:{}\nLabels:{}\nAnnotations:{}\n",
        map_lines(Some(&f.spec.env_vars)),
        map_lines(f.spec.labels.as_ref()),
        map_lines(f.spec.annotations.as_ref())
    ));
    if !f.instances.is_empty() {
        let rows: Vec<Vec<String>> = f
            .instances
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    i.state.clone(),
                    i.pid.map_or("-".into(), |p| p.to_string()),
                    i.restarts.to_string(),
                    i.inflight.to_string(),
                    i.started_at.clone(),
                ]
            })
            .collect();
        out.push_str("Replicas:\n");
        for line in table(
            &["NAME", "STATE", "PID", "RESTARTS", "IN FLIGHT", "STARTED"],
            &rows,
        )
        .lines()
        {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

pub(super) async fn run(args: DescribeArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let function = args.namespace.function(&args.name);
    let Some(status) = client.status(&function).await? else {
        return Err(Failure::failed(format!(
            "function {function} is not deployed"
        )));
    };
    if args.json {
        let json =
            serde_json::to_string_pretty(&status).map_err(|e| Failure::failed(e.to_string()))?;
        println!("{json}");
    } else {
        print!(
            "{}",
            render(&status, &function_url(client.base(), &function))
        );
    }
    Ok(())
}
