//! `ironfaas secret create|update|list|remove`: secrets functions get as files under
//! /var/openfaas/secrets/NAME (compat §7). Values come from --from-literal, --from-file or
//! stdin, and are never printed.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand};
use http::Method;
use http_body_util::BodyExt;
use ironfaas_spec::wire::Secret;

use super::{GatewayArgs, NamespaceArgs};
use crate::client::{Client, full};
use crate::failure::{CmdResult, Failure};
use crate::output::table;

/// Arguments of `secret`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
    #[command(flatten)]
    namespace: NamespaceArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// Where a secret's value comes from.
#[derive(Debug, Args)]
struct Value {
    /// The value itself (visible in the shell's history: prefer --from-file or stdin).
    #[arg(long, conflicts_with = "from_file")]
    from_literal: Option<String>,
    /// A file holding the value (binary is fine).
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Keep surrounding whitespace (by default it is trimmed from text values).
    #[arg(long)]
    no_trim: bool,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Store a new secret.
    Create {
        /// The secret's name.
        name: String,
        #[command(flatten)]
        value: Value,
    },
    /// Replace a secret's value (replicas started afterwards see it).
    Update {
        /// The secret's name.
        name: String,
        #[command(flatten)]
        value: Value,
    },
    /// List the secrets' names.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Delete a secret.
    #[command(alias = "rm")]
    Remove {
        /// The secret's name.
        name: String,
    },
}

/// The secret with its value from the flags or stdin.
fn with_value(name: &str, namespace: &str, value: &Value) -> CmdResult<Secret> {
    let bytes = if let Some(text) = &value.from_literal {
        text.clone().into_bytes()
    } else if let Some(file) = &value.from_file {
        std::fs::read(file)
            .map_err(|e| Failure::input(format!("cannot read {}: {e}", file.display())))?
    } else {
        if std::io::stdin().is_terminal() {
            eprintln!("Reading the value of {name} from stdin - end it with Ctrl-D");
        }
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::input(format!("cannot read stdin: {e}")))?;
        buf
    };
    let mut secret = Secret {
        name: name.to_string(),
        namespace: namespace.to_string(),
        ..Secret::default()
    };
    match String::from_utf8(bytes) {
        Ok(text) => {
            secret.value = if value.no_trim {
                text
            } else {
                text.trim().to_string()
            }
        }
        Err(e) => {
            secret.raw_value = base64::engine::general_purpose::STANDARD.encode(e.into_bytes())
        }
    }
    if secret.value.is_empty() && secret.raw_value.is_empty() {
        return Err(Failure::input(format!(
            "the value of secret {name} is empty"
        )));
    }
    Ok(secret)
}

async fn call(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Secret>,
) -> CmdResult<(http::StatusCode, Bytes)> {
    let json = body
        .map(serde_json::to_vec)
        .transpose()
        .map_err(|e| Failure::failed(e.to_string()))?;
    let headers = [("content-type".to_string(), "application/json".to_string())];
    let answer = client
        .send(
            method,
            path,
            &headers,
            full(Bytes::from(json.unwrap_or_default())),
            Duration::from_secs(30),
        )
        .await?;
    let status = answer.status;
    let text = answer
        .body
        .collect()
        .await
        .map_err(|e| Failure::failed(e.to_string()))?
        .to_bytes();
    if status.is_success() {
        Ok((status, text))
    } else {
        Err(Failure::failed(
            String::from_utf8_lossy(&text).trim().to_string(),
        ))
    }
}

pub(super) async fn run(args: SecretArgs) -> CmdResult {
    let client = args.gateway.client(None)?;
    let namespace = args.namespace.namespace.clone();
    match &args.command {
        SecretCommand::Create { name, value } => {
            call(
                &client,
                Method::POST,
                "/system/secrets",
                Some(&with_value(name, &namespace, value)?),
            )
            .await?;
            eprintln!("created secret {name}");
        }
        SecretCommand::Update { name, value } => {
            call(
                &client,
                Method::PUT,
                "/system/secrets",
                Some(&with_value(name, &namespace, value)?),
            )
            .await?;
            eprintln!("updated secret {name} (replicas started from now on see the new value)");
        }
        SecretCommand::Remove { name } => {
            let secret = Secret {
                name: name.clone(),
                namespace,
                ..Secret::default()
            };
            call(&client, Method::DELETE, "/system/secrets", Some(&secret)).await?;
            eprintln!("removed secret {name}");
        }
        SecretCommand::List { json } => {
            let (_, body) = call(
                &client,
                Method::GET,
                &format!("/system/secrets?namespace={namespace}"),
                None,
            )
            .await?;
            let secrets: Vec<Secret> =
                serde_json::from_slice(&body).map_err(|e| Failure::failed(e.to_string()))?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&secrets)
                        .map_err(|e| Failure::failed(e.to_string()))?
                );
            } else {
                let rows: Vec<Vec<String>> = secrets
                    .iter()
                    .map(|s| vec![s.name.clone(), s.namespace.clone()])
                    .collect();
                print!("{}", table(&["SECRET", "NAMESPACE"], &rows));
            }
        }
    }
    Ok(())
}
