//! The open-file limit (RLIMIT_NOFILE): every connection, pipe and socket of the gateway and
//! its replicas counts against it.

use std::fmt;

use super::{Check, Status};

/// The soft limit recommended for a gateway under load.
pub const RECOMMENDED_NOFILE: u64 = 65536;

/// A resource limit: a number, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many.
    Finite(u64),
    /// No limit.
    Unlimited,
}

impl Limit {
    fn parse(text: &str) -> Option<Limit> {
        match text {
            "unlimited" => Some(Limit::Unlimited),
            n => n.parse().ok().map(Limit::Finite),
        }
    }

    fn at_least(self, n: u64) -> bool {
        match self {
            Limit::Finite(limit) => limit >= n,
            Limit::Unlimited => true,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Finite(n) => write!(f, "{n}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// The soft and hard limit named `name` ("Max open files") in a `/proc/PID/limits` text.
pub fn parse_limits(text: &str, name: &str) -> Option<(Limit, Limit)> {
    text.lines().find_map(|line| {
        let mut values = line.strip_prefix(name)?.split_whitespace();
        Some((Limit::parse(values.next()?)?, Limit::parse(values.next()?)?))
    })
}

/// The open-file limit of this process (inherited from the shell or unit that started it).
pub fn open_files() -> Check {
    let limits = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| parse_limits(&text, "Max open files"));
    let Some((soft, hard)) = limits else {
        return Check::new("open-files", Status::Warn, "unknown")
            .fix("cannot read /proc/self/limits: check `ulimit -n` by hand");
    };
    check(soft, hard)
}

fn check(soft: Limit, hard: Limit) -> Check {
    let value = format!("soft {soft}, hard {hard}");
    let recommended = format!("soft >= {RECOMMENDED_NOFILE}");
    if soft.at_least(RECOMMENDED_NOFILE) {
        return Check::new("open-files", Status::Ok, value).recommended(recommended);
    }
    let fix = if hard.at_least(RECOMMENDED_NOFILE) {
        format!(
            "LimitNOFILE={RECOMMENDED_NOFILE} in the systemd unit (deploy/ironfaas.service \
             sets it), or `ulimit -n {RECOMMENDED_NOFILE}` in the shell that starts `ironfaas \
             serve`"
        )
    } else {
        format!(
            "LimitNOFILE={RECOMMENDED_NOFILE} in the systemd unit (deploy/ironfaas.service \
             sets it); for a shell, the hard limit ({hard}) must be raised first: `nofile \
             {RECOMMENDED_NOFILE}` in /etc/security/limits.conf, then `ulimit -n \
             {RECOMMENDED_NOFILE}`"
        )
    };
    Check::new("open-files", Status::Warn, value)
        .recommended(recommended)
        .why(
            "each call in flight holds a client connection and a replica connection, and each \
             replica its pipes and sockets: at the limit, new connections fail with 'Too many \
             open files'. This is the limit doctor inherited from your shell; under systemd the \
             unit's LimitNOFILE counts",
        )
        .fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                524288               files
Max locked memory         8388608              8388608              bytes
";

    #[test]
    fn limits_are_read_from_proc() {
        assert_eq!(
            parse_limits(LIMITS, "Max open files"),
            Some((Limit::Finite(20000), Limit::Finite(524288)))
        );
        assert_eq!(
            parse_limits(LIMITS, "Max cpu time"),
            Some((Limit::Unlimited, Limit::Unlimited))
        );
        assert_eq!(parse_limits(LIMITS, "Max processes"), None);
    }

    #[test]
    fn a_low_soft_limit_is_a_warning_with_the_fix() {
        let low = check(Limit::Finite(1024), Limit::Finite(524288));
        assert_eq!(low.status, Status::Warn);
        assert_eq!(low.found, "soft 1024, hard 524288");
        assert!(low.fix.as_deref().unwrap().contains("ulimit -n 65536"));
        let hard = check(Limit::Finite(1024), Limit::Finite(4096));
        assert!(hard.fix.as_deref().unwrap().contains("hard limit (4096)"));
        let fine = check(Limit::Finite(65536), Limit::Unlimited);
        assert_eq!(fine.status, Status::Ok);
        assert_eq!(fine.found, "soft 65536, hard unlimited");
        assert_eq!(fine.fix, None);
    }
}
