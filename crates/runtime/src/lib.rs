//! The local provider: functions run as processes on this machine, started from unpacked
//! bundles, restarted when they crash, routed to only once ready. Also the watchdog that
//! runs a command per request for fork-mode templates.

pub mod local;
pub mod process;
pub mod sandbox;
#[cfg(test)]
mod testutil;
pub mod watchdog;
