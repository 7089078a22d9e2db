//! Which credentials the CLI sends to a gateway, and where `ironfaas login` keeps them.
//!
//! In order: `$IRONFAAS_PASSWORD` (user `$IRONFAAS_USER`, default `admin`), then the entry for
//! the gateway's exact URL in `~/.openfaas/config.yml` (the file faas-cli uses; the folder can be
//! moved with `$OPENFAAS_CONFIG`), then, for a gateway on this machine, the password file in the
//! data dir (readable by root or the platform's user).

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::failure::{CmdResult, Failure};

/// A user name and password.
#[derive(Clone)]
pub struct Login {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl Login {
    /// The `Authorization` header value.
    pub fn header(&self) -> String {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.user, self.password));
        format!("Basic {token}")
    }
}

/// The file of the platform's admin user, in a data dir.
pub fn user_file(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("basic-auth-user")
}

/// The file of the platform's admin password, in a data dir.
pub fn password_file(data_dir: &Path) -> PathBuf {
    data_dir.join("auth").join("basic-auth-password")
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    /// `auths:` with nothing under it reads as null: no entries.
    #[serde(default)]
    auths: Option<Vec<AuthEntry>>,
}

#[derive(Debug, Deserialize)]
struct AuthEntry {
    gateway: String,
    #[serde(default)]
    auth: String,
    #[serde(default)]
    token: String,
}

/// Where logins are kept: `$OPENFAAS_CONFIG/config.yml`, else `~/.openfaas/config.yml`.
pub fn config_path() -> PathBuf {
    let dir = std::env::var_os("OPENFAAS_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".openfaas")
        });
    dir.join("config.yml")
}

fn read_config(path: &Path) -> CmdResult<Vec<AuthEntry>> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
        Ok(text) => serde_saphyr::from_str::<ConfigFile>(&text)
            .map(|c| c.auths.unwrap_or_default())
            .map_err(|e| {
                Failure::input(format!("{} is not a valid login file: {e}", path.display()))
            }),
        Err(_) => Ok(Vec::new()),
    }
}

fn decode(token: &str) -> Option<Login> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Login {
        user: user.into(),
        password: password.into(),
    })
}

/// The credentials for `gateway` (a normalised URL), if any are known.
pub fn for_gateway(gateway: &str, data_dir: &Path) -> CmdResult<Option<Login>> {
    if let Some(password) = std::env::var("IRONFAAS_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty())
    {
        let user = std::env::var("IRONFAAS_USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "admin".into());
        return Ok(Some(Login { user, password }));
    }
    let saved = read_config(&config_path())?
        .into_iter()
        .find(|e| {
            e.gateway.trim_end_matches('/') == gateway && (e.auth.is_empty() || e.auth == "basic")
        })
        .and_then(|e| decode(&e.token));
    if saved.is_some() {
        return Ok(saved);
    }
    let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| gateway.starts_with(p));
    if local && let Ok(password) = std::fs::read_to_string(password_file(data_dir)) {
        let user = std::fs::read_to_string(user_file(data_dir)).unwrap_or_else(|_| "admin".into());
        return Ok(Some(Login {
            user: user.trim().to_string(),
            password: password.trim().to_string(),
        }));
    }
    Ok(None)
}

/// Stores `login` for `gateway` (replacing an earlier one), in a file only the user can read.
pub fn save(gateway: &str, login: &Login) -> CmdResult<PathBuf> {
    let path = config_path();
    let mut kept: Vec<AuthEntry> = read_config(&path)?
        .into_iter()
        .filter(|e| e.gateway.trim_end_matches('/') != gateway)
        .collect();
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", login.user, login.password));
    kept.push(AuthEntry {
        gateway: gateway.to_string(),
        auth: "basic".into(),
        token,
    });
    write_config(&path, &kept)?;
    Ok(path)
}

/// Forgets the login for `gateway`; whether there was one.
pub fn forget(gateway: &str) -> CmdResult<bool> {
    let path = config_path();
    let all = read_config(&path)?;
    let before = all.len();
    let kept: Vec<AuthEntry> = all
        .into_iter()
        .filter(|e| e.gateway.trim_end_matches('/') != gateway)
        .collect();
    let removed = kept.len() != before;
    if removed {
        write_config(&path, &kept)?;
    }
    Ok(removed)
}

fn write_config(path: &Path, entries: &[AuthEntry]) -> CmdResult {
    let mut text = String::from(if entries.is_empty() {
        "auths: []\n"
    } else {
        "auths:\n"
    });
    for e in entries {
        text.push_str(&format!(
            "- gateway: {}\n  auth: {}\n  token: {}\n",
            e.gateway, e.auth, e.token
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::failed(format!("cannot create {}: {e}", dir.display())))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let tmp = path.with_extension("yml.new");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Failure::failed(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let login = Login {
            user: "admin".into(),
            password: "p:w".into(),
        };
        let token = login.header().strip_prefix("Basic ").unwrap().to_string();
        let back = decode(&token).unwrap();
        assert_eq!(
            (back.user.as_str(), back.password.as_str()),
            ("admin", "p:w")
        );
    }

    #[test]
    fn reads_faas_cli_files() {
        let entries: ConfigFile = serde_saphyr::from_str(
            "auths:\n- gateway: http://127.0.0.1:8080\n  auth: basic\n  token: YWRtaW46cGFzcw==\n",
        )
        .unwrap();
        let login = decode(&entries.auths.unwrap()[0].token).unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("admin", "pass")
        );
        let empty: ConfigFile = serde_saphyr::from_str("auths:\n").unwrap();
        assert!(empty.auths.unwrap_or_default().is_empty());
    }
}
