//! Kernel settings that help a gateway making many connections (to its replicas over
//! loopback, to callbacks, to NATS and S3): what each is here, what doctor recommends, why, and
//! what a value below the recommendation should be raised to (never lowered).

use std::path::PathBuf;

use super::{Check, Status};

/// What a setting should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recommended {
    /// At least this number.
    AtLeast(u64),
    /// A range (`LOW HIGH`) that reaches down to `low` and up to `high`.
    Range {
        /// The highest lower bound recommended.
        low: u64,
        /// The lowest upper bound recommended.
        high: u64,
    },
}

impl Recommended {
    /// As doctor shows it: `>= 4096`, `10240 65535 or wider`.
    pub fn text(self) -> String {
        match self {
            Recommended::AtLeast(n) => format!(">= {n}"),
            Recommended::Range { low, high } => format!("{low} {high} or wider"),
        }
    }
}

/// A kernel setting doctor checks.
#[derive(Debug, Clone, Copy)]
pub struct Tunable {
    /// Its sysctl name, e.g. `net.core.somaxconn`.
    pub name: &'static str,
    /// What doctor recommends.
    pub recommended: Recommended,
    /// Why it matters for ironfaas.
    pub why: &'static str,
    /// What its absence means (a module not loaded).
    pub absent: &'static str,
}

/// The settings doctor checks and `doctor --apply` raises.
pub const TUNABLES: [Tunable; 5] = [
    Tunable {
        name: "net.ipv4.ip_local_port_range",
        recommended: Recommended::Range {
            low: 10240,
            high: 65535,
        },
        why: "the ports outgoing connections take: the gateway's to replicas over loopback \
              TCP, to callbacks, NATS and S3; a closed connection keeps its port for 60 s \
              (TIME_WAIT), so under connection churn a narrow range runs out and connects fail \
              with 'Cannot assign requested address'. 10240 leaves the usual service ports \
              below it free",
        absent: "this kernel has no IPv4",
    },
    Tunable {
        name: "net.core.somaxconn",
        recommended: Recommended::AtLeast(4096),
        why: "caps every listening socket's queue of connections not yet accepted: the \
              gateway's (it asks for 4096) and each replica's; when a burst fills it, new \
              connections are dropped and clients retry only after a second",
        absent: "this kernel has no such setting",
    },
    Tunable {
        name: "net.netfilter.nf_conntrack_max",
        recommended: Recommended::AtLeast(262144),
        why: "connection tracking (loaded by a firewall) records every connection, loopback \
              ones to replicas included; when its table is full the kernel drops new \
              connections ('nf_conntrack: table full, dropping packet')",
        absent: "nf_conntrack is not loaded: no connections are tracked",
    },
    Tunable {
        name: "net.core.rmem_max",
        recommended: Recommended::AtLeast(16 << 20),
        why: "the largest receive buffer a program may set on a socket (SO_RCVBUF): proxies, \
              NATS and S3 clients that size their buffers for large bodies are silently capped \
              by it (TCP's automatic sizing follows net.ipv4.tcp_rmem instead)",
        absent: "this kernel has no such setting",
    },
    Tunable {
        name: "net.core.wmem_max",
        recommended: Recommended::AtLeast(16 << 20),
        why: "the largest send buffer a program may set on a socket (SO_SNDBUF): streaming \
              large answers through sockets sized by their program is capped by it (TCP's \
              automatic sizing follows net.ipv4.tcp_wmem instead)",
        absent: "this kernel has no such setting",
    },
];

/// Where a setting is read and written: `/proc/sys/net/core/somaxconn`.
pub fn proc_path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

/// A setting's current value with its whitespace normalised (`32768 60999`), `None` when this
/// kernel does not have it.
pub fn read(name: &str) -> Option<String> {
    std::fs::read_to_string(proc_path(name))
        .ok()
        .map(|text| normalise(&text))
}

/// The words of a value, separated by single spaces.
pub fn normalise(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What `current` should become to meet the recommendation: `None` when it already does.
/// Only what is below is raised: a range is widened, never narrowed.
pub fn raised(recommended: Recommended, current: &str) -> Result<Option<String>, String> {
    let numbers: Vec<u64> = current
        .split_whitespace()
        .map(|word| word.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("'{current}' is not a number"))?;
    match (recommended, numbers.as_slice()) {
        (Recommended::AtLeast(min), [value]) => Ok((*value < min).then(|| min.to_string())),
        (Recommended::Range { low, high }, [from, to]) => {
            let wider = ((*from).min(low), (*to).max(high));
            Ok((wider != (*from, *to)).then(|| format!("{} {}", wider.0, wider.1)))
        }
        (Recommended::AtLeast(_), _) => Err(format!("'{current}' is not one number")),
        (Recommended::Range { .. }, _) => Err(format!("'{current}' is not a range LOW HIGH")),
    }
}

/// One check per tunable, from this machine's values.
pub fn checks() -> Vec<Check> {
    TUNABLES
        .iter()
        .map(|tunable| check(tunable, read(tunable.name).as_deref()))
        .collect()
}

/// The check of `tunable` whose value is `current` (`None`: absent).
fn check(tunable: &Tunable, current: Option<&str>) -> Check {
    let Some(current) = current else {
        return Check::new(tunable.name, Status::NotApplicable, "absent")
            .why(tunable.absent)
            .recommended(tunable.recommended.text());
    };
    let check =
        Check::new(tunable.name, Status::Ok, current).recommended(tunable.recommended.text());
    match raised(tunable.recommended, current) {
        Ok(None) => check,
        Ok(Some(value)) => Check {
            status: Status::Warn,
            ..check
        }
        .why(tunable.why)
        .fix(format!(
            "`ironfaas doctor --apply` (as root; writes a file in /etc/sysctl.d/), or `sysctl \
             -w {}=\"{value}\"` and the same line in /etc/sysctl.d/60-ironfaas.conf to keep it",
            tunable.name
        )),
        Err(e) => Check {
            status: Status::Warn,
            ..check
        }
        .fix(format!("cannot judge {}: {e}", tunable.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_below_the_recommendation_are_raised_and_never_lowered() {
        let at_least = Recommended::AtLeast(4096);
        assert_eq!(raised(at_least, "128").unwrap().as_deref(), Some("4096"));
        assert_eq!(raised(at_least, "4096\n").unwrap(), None);
        assert_eq!(raised(at_least, "65535").unwrap(), None);
        let range = Recommended::Range {
            low: 10240,
            high: 65535,
        };
        assert_eq!(
            raised(range, "32768\t60999\n").unwrap().as_deref(),
            Some("10240 65535")
        );
        assert_eq!(
            raised(range, "1024 60999").unwrap().as_deref(),
            Some("1024 65535"),
            "a lower start is kept"
        );
        assert_eq!(raised(range, "1024 65535").unwrap(), None);
        assert!(raised(range, "1024").unwrap_err().contains("LOW HIGH"));
        assert!(
            raised(at_least, "lots")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn settings_are_files_under_proc_sys() {
        assert_eq!(
            proc_path("net.core.somaxconn"),
            PathBuf::from("/proc/sys/net/core/somaxconn")
        );
        assert_eq!(normalise("32768\t60999\n"), "32768 60999");
    }

    #[test]
    fn each_finding_says_current_recommended_and_fix() {
        let [ports, somaxconn, conntrack, ..] = TUNABLES;
        let low = check(&ports, Some("32768 60999"));
        assert_eq!(low.status, Status::Warn);
        assert_eq!(low.found, "32768 60999");
        assert_eq!(low.recommended.as_deref(), Some("10240 65535 or wider"));
        assert!(
            low.fix
                .as_deref()
                .unwrap()
                .contains("sysctl -w net.ipv4.ip_local_port_range=\"10240 65535\""),
            "{low:?}"
        );
        assert!(low.why.as_deref().unwrap().contains("TIME_WAIT"));
        let fine = check(&somaxconn, Some("8192"));
        assert_eq!((fine.status, fine.fix), (Status::Ok, None));
        let absent = check(&conntrack, None);
        assert_eq!(absent.status, Status::NotApplicable);
        assert!(absent.why.as_deref().unwrap().contains("not loaded"));
    }
}
