//! `ironfaas watchdog`: serve HTTP and run `fprocess` per request (fork-mode replicas).

use ironfaas_runtime::watchdog::{WatchdogConfig, serve};

use crate::failure::{CmdResult, Failure};
use crate::platform::shutdown_signal;

pub(super) async fn run() -> CmdResult {
    let config =
        WatchdogConfig::from_env(&|key| std::env::var(key).ok()).map_err(Failure::input)?;
    serve(config, shutdown_signal())
        .await
        .map_err(|e| Failure::failed(format!("watchdog: {e}")))
}
