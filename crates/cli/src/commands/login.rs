//! `ironfaas login` / `logout`: keep the gateway's credentials for later commands (in the
//! faas-cli login file, keyed by the gateway's exact URL).

use std::io::{IsTerminal, Read};
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use http::{Method, StatusCode};

use super::GatewayArgs;
use crate::client::{Client, full};
use crate::credentials::{Login, forget, save};
use crate::failure::{CmdResult, Failure};
use crate::settings;

/// Arguments of `login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The user.
    #[arg(short, long, default_value = "admin")]
    username: String,
    /// The password (visible in the shell's history: prefer --password-stdin).
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(short = 's', long)]
    password_stdin: bool,
    #[command(flatten)]
    gateway: GatewayArgs,
}

/// Arguments of `logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
}

pub(super) async fn login(args: LoginArgs) -> CmdResult {
    let password = match (&args.password, args.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::input(format!("cannot read stdin: {e}")))?;
            text.trim().to_string()
        }
        (None, false) => {
            return Err(Failure::input(if std::io::stdin().is_terminal() {
                "give the password with --password-stdin (e.g. `cat pw | ironfaas login -s`) or --password"
            } else {
                "give the password with --password-stdin or --password"
            }));
        }
    };
    if password.is_empty() {
        return Err(Failure::input("the password is empty"));
    }
    let url = settings::gateway_url(args.gateway.gateway.as_deref(), None)?;
    let login = Login {
        user: args.username.clone(),
        password,
    };
    let client = Client::new(&url, Some(&login));
    let answer = client
        .send(
            Method::GET,
            "/system/functions",
            &[],
            full(Bytes::new()),
            Duration::from_secs(10),
        )
        .await?;
    match answer.status {
        StatusCode::UNAUTHORIZED => Err(Failure::failed(format!(
            "{url} refused user {} with that password",
            args.username
        ))),
        StatusCode::TOO_MANY_REQUESTS => Err(Failure::failed(format!(
            "{url} says too many failed logins; wait a minute"
        ))),
        s if s.is_success() => {
            let path = save(&url, &login)?;
            eprintln!(
                "logged in to {url} as {} (credentials kept in {})",
                args.username,
                path.display()
            );
            Ok(())
        }
        s => Err(Failure::failed(format!(
            "{url} answered {s} when checking the credentials"
        ))),
    }
}

pub(super) async fn logout(args: LogoutArgs) -> CmdResult {
    let url = settings::gateway_url(args.gateway.gateway.as_deref(), None)?;
    if forget(&url)? {
        eprintln!("logged out of {url}");
    } else {
        eprintln!("no login was kept for {url}");
    }
    Ok(())
}
