//! `ironfaas deploy`: deploy the stack's functions, or one image given on the command line.

use std::time::Instant;

use clap::Args;
use ironfaas_spec::names::FunctionRef;
use ironfaas_spec::stack::StackFunction;
use ironfaas_spec::wire::{FunctionDeployment, FunctionSpec};

use super::{GatewayArgs, NamespaceArgs, StackArgs, function_url, load_stack};
use crate::client::{Client, Deployed};
use crate::failure::{CmdResult, Failure};
use crate::output::{Progress, took};

/// Arguments of `deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    gateway: GatewayArgs,
    /// Deploy this image from the function store instead of the stack (needs --name).
    #[arg(long, requires = "name")]
    image: Option<String>,
    /// The function's name, with --image.
    #[arg(long, requires = "image")]
    name: Option<String>,
    /// The start command, with --image (overrides the template's).
    #[arg(long, requires = "image")]
    fprocess: Option<String>,
    /// An environment variable KEY=VALUE, with --image (repeatable).
    #[arg(
        short = 'e',
        long = "env",
        requires = "image",
        value_name = "KEY=VALUE"
    )]
    env: Vec<String>,
    /// A label KEY=VALUE, with --image (repeatable).
    #[arg(
        short = 'l',
        long = "label",
        requires = "image",
        value_name = "KEY=VALUE"
    )]
    labels: Vec<String>,
    #[command(flatten)]
    namespace: NamespaceArgs,
}

/// Splits `KEY=VALUE`.
pub fn key_value(text: &str, what: &str) -> CmdResult<(String, String)> {
    text.split_once('=')
        .filter(|(k, _)| !k.trim().is_empty())
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| Failure::input(format!("{what} '{text}' is not KEY=VALUE")))
}

/// Deploys each of `deployments`, reporting progress; the URLs go to stdout. Every function is
/// tried; the first failure is returned at the end.
pub async fn deploy_all(client: &Client, deployments: Vec<FunctionDeployment>) -> CmdResult {
    let mut first_failure = None;
    for d in deployments {
        let function = FunctionRef::new(&d.service, &d.spec.namespace);
        let progress = Progress::start(&d.service);
        progress.step(&format!("deploying {} to {}", d.spec.image, client.base()));
        let started = Instant::now();
        match client.deploy(&d).await {
            Ok(outcome) => {
                let verb = match outcome {
                    Deployed::Created => "deployed",
                    Deployed::Updated => "updated",
                };
                progress.finish(&format!("{verb} and ready in {}", took(started.elapsed())));
                println!("{}", function_url(client.base(), &function));
            }
            Err(e) => {
                progress.finish("failed");
                eprintln!("error: {e}");
                first_failure.get_or_insert(e);
            }
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// The API body for a stack function.
pub fn stack_deployment(f: &StackFunction) -> FunctionDeployment {
    f.deployment(f.fprocess.clone().unwrap_or_default())
}

pub(super) async fn run(args: DeployArgs) -> CmdResult {
    if let (Some(image), Some(name)) = (&args.image, &args.name) {
        let client = args.gateway.client(None)?;
        let pairs = |items: &[String], what: &str| -> CmdResult<_> {
            items
                .iter()
                .map(|t| key_value(t, what))
                .collect::<CmdResult<_>>()
        };
        let labels: std::collections::BTreeMap<String, String> = pairs(&args.labels, "label")?;
        let d = FunctionDeployment {
            service: name.clone(),
            spec: FunctionSpec {
                image: image.clone(),
                namespace: args.namespace.namespace.clone(),
                env_process: args.fprocess.clone().unwrap_or_default(),
                env_vars: pairs(&args.env, "environment variable")?,
                labels: (!labels.is_empty()).then_some(labels),
                ..FunctionSpec::default()
            },
        };
        return deploy_all(&client, vec![d]).await;
    }
    let stack = load_stack(&args.stack, None, false)?;
    let client = args.gateway.client(Some(&stack))?;
    let deployments = stack
        .functions
        .iter()
        .map(|f| {
            let mut d = stack_deployment(f);
            if !args.namespace.namespace.is_empty() {
                d.spec.namespace = args.namespace.namespace.clone();
            }
            d
        })
        .collect();
    deploy_all(&client, deployments).await
}
