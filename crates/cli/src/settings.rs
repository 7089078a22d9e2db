//! Where things are: the data dir and the gateway URL, with their precedence rules.

use std::path::PathBuf;

use crate::client::normalize_gateway;
use crate::failure::{CmdResult, Failure};

/// The gateway when nothing else says otherwise.
pub const DEFAULT_GATEWAY: &str = "http://127.0.0.1:8080";

/// The data dir: `--data-dir`, else `$IRONFAAS_DATA_DIR` (both arrive as `flag`), else
/// `/var/lib/ironfaas` as root, else `$XDG_DATA_HOME/ironfaas` or `~/.local/share/ironfaas`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = flag {
        return dir;
    }
    if nix_is_root() {
        return PathBuf::from("/var/lib/ironfaas");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("ironfaas");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/ironfaas")
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The gateway URL: `--gateway`, else the stack's `provider.gateway`, else `$OPENFAAS_URL`,
/// else the default; normalised. A flag or stack value equal to the default counts as unset. Only plain `http://` gateways are supported.
pub fn gateway_url(flag: Option<&str>, stack: Option<&str>) -> CmdResult<String> {
    let env = std::env::var("OPENFAAS_URL")
        .ok()
        .filter(|v| !v.trim().is_empty());
    // As faas-cli: a flag or stack value equal to the default does not hide OPENFAAS_URL.
    let set = |v: Option<&str>| {
        v.filter(|v| normalize_gateway(v) != DEFAULT_GATEWAY)
            .map(str::to_string)
    };
    let chosen = set(flag)
        .or_else(|| set(stack))
        .or(env)
        .unwrap_or_else(|| DEFAULT_GATEWAY.to_string());
    let url = normalize_gateway(&chosen);
    if url.starts_with("https://") {
        return Err(Failure::input(format!(
            "{url}: this ironfaas CLI speaks plain HTTP only; reach the gateway through an http:// \
             address (for example over an SSH tunnel)"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_then_stack() {
        assert_eq!(
            gateway_url(Some("10.0.0.1:8080"), Some("http://other")).unwrap(),
            "http://10.0.0.1:8080"
        );
        assert_eq!(
            gateway_url(None, Some("http://Stack:1/")).unwrap(),
            "http://stack:1"
        );
        assert!(gateway_url(Some("https://x"), None).is_err());
    }

    #[test]
    fn explicit_data_dir_wins() {
        assert_eq!(data_dir(Some(PathBuf::from("/d"))), PathBuf::from("/d"));
    }
}
