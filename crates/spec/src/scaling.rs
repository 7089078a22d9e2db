//! The `com.openfaas.scale.*` labels, parsed into a typed policy (compat §6.1).

use std::time::Duration;

use crate::duration::{format_duration, parse_duration};
use crate::wire::StringMap;

/// Label: replicas kept at least (and started on deploy).
pub const LABEL_MIN: &str = "com.openfaas.scale.min";
/// Label: replicas allowed at most.
pub const LABEL_MAX: &str = "com.openfaas.scale.max";
/// Label: load per replica the autoscaler aims for.
pub const LABEL_TARGET: &str = "com.openfaas.scale.target";
/// Label: what load means: `rps` or `capacity` (calls in flight).
pub const LABEL_TYPE: &str = "com.openfaas.scale.type";
/// Label: the share of the target at which to scale up already.
pub const LABEL_PROPORTION: &str = "com.openfaas.scale.target-proportion";
/// Label: whether an idle function goes down to zero replicas.
pub const LABEL_ZERO: &str = "com.openfaas.scale.zero";
/// Label: how long a function must be idle before it goes to zero.
pub const LABEL_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";

/// Replicas a function starts with when no `com.openfaas.scale.min` is set.
pub const DEFAULT_MIN: u64 = 1;
/// Replicas a function may have when no `com.openfaas.scale.max` is set.
pub const DEFAULT_MAX: u64 = 20;
/// The most replicas one function may have (`min` and `max` above it are refused): a count a
/// single label can set must not exhaust the machine.
pub const MAX_REPLICAS: u64 = 1000;
/// Load per replica when no `com.openfaas.scale.target` is set.
pub const DEFAULT_TARGET: f64 = 50.0;
/// Share of the target when no `com.openfaas.scale.target-proportion` is set.
pub const DEFAULT_PROPORTION: f64 = 0.90;
/// Idle time before scaling to zero when no `com.openfaas.scale.zero-duration` is set.
pub const DEFAULT_ZERO_DURATION: Duration = Duration::from_secs(15 * 60);

/// What the autoscaler measures as load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleType {
    /// Calls per second.
    Rps,
    /// Calls in flight.
    Capacity,
}

/// A function's scaling policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalePolicy {
    /// The fewest replicas while the function is in use.
    pub min: u64,
    /// The most replicas.
    pub max: u64,
    /// Load per replica to aim for.
    pub target: f64,
    /// What load is.
    pub kind: ScaleType,
    /// Scale up at this share of the target.
    pub proportion: f64,
    /// Go to zero replicas after `zero_duration` without calls.
    pub zero: bool,
    /// Idle time before going to zero.
    pub zero_duration: Duration,
}

impl Default for ScalePolicy {
    fn default() -> Self {
        ScalePolicy {
            min: DEFAULT_MIN,
            max: DEFAULT_MAX,
            target: DEFAULT_TARGET,
            kind: ScaleType::Rps,
            proportion: DEFAULT_PROPORTION,
            zero: false,
            zero_duration: DEFAULT_ZERO_DURATION,
        }
    }
}

fn parse_count(labels: &StringMap, key: &str, default: u64) -> Result<u64, String> {
    let Some(v) = labels.get(key) else {
        return Ok(default);
    };
    let text = v.trim();
    match text.parse::<u64>() {
        Ok(n) if n <= MAX_REPLICAS => Ok(n),
        _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => Err(format!(
            "label {key}='{v}' is above {MAX_REPLICAS}, the most replicas a function may have"
        )),
        _ => Err(format!(
            "label {key}='{v}' is not a whole number ≥ 0; write e.g. {key}: \"2\""
        )),
    }
}

fn parse_positive(
    labels: &StringMap,
    key: &str,
    default: f64,
    example: &str,
) -> Result<f64, String> {
    match labels.get(key) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
            _ => Err(format!(
                "label {key}='{v}' must be a number above 0, e.g. {key}: \"{example}\""
            )),
        },
    }
}

impl ScalePolicy {
    /// Reads the policy from a function's labels; the error says which label is wrong.
    pub fn from_labels(labels: Option<&StringMap>) -> Result<ScalePolicy, String> {
        let empty = StringMap::new();
        let labels = labels.unwrap_or(&empty);
        let min = parse_count(labels, LABEL_MIN, DEFAULT_MIN)?;
        let max = parse_count(labels, LABEL_MAX, DEFAULT_MAX.max(min))?;
        if max == 0 {
            return Err(format!(
                "label {LABEL_MAX}=0 allows no replicas; set it to 1 or more"
            ));
        }
        if min > max {
            return Err(format!(
                "label {LABEL_MIN}={min} is above {LABEL_MAX}={max}; make min ≤ max"
            ));
        }
        let target = parse_positive(labels, LABEL_TARGET, DEFAULT_TARGET, "50")?;
        let proportion = parse_positive(labels, LABEL_PROPORTION, DEFAULT_PROPORTION, "0.9")?;
        if proportion > 1.0 {
            return Err(format!(
                "label {LABEL_PROPORTION}={proportion} must be at most 1 (a share of the target)"
            ));
        }
        let kind = match labels.get(LABEL_TYPE).map(|v| v.trim()) {
            None | Some("rps") => ScaleType::Rps,
            Some("capacity") => ScaleType::Capacity,
            Some(other) => {
                return Err(format!(
                    "label {LABEL_TYPE}='{other}' is not supported: use rps (calls per second) or \
                     capacity (calls in flight)"
                ));
            }
        };
        let zero = match labels
            .get(LABEL_ZERO)
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => false,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(v) => return Err(format!("label {LABEL_ZERO}='{v}' must be true or false")),
        };
        let zero_duration = match labels.get(LABEL_ZERO_DURATION) {
            None => DEFAULT_ZERO_DURATION,
            Some(v) => {
                let d =
                    parse_duration(v).map_err(|e| format!("label {LABEL_ZERO_DURATION}: {e}"))?;
                if d.is_zero() {
                    return Err(format!(
                        "label {LABEL_ZERO_DURATION} must be longer than 0, e.g. 5m"
                    ));
                }
                d
            }
        };
        Ok(ScalePolicy {
            min,
            max,
            target,
            kind,
            proportion,
            zero,
            zero_duration,
        })
    }

    /// Whether the autoscaler changes the replicas at all (min == max turns it off).
    pub fn autoscales(&self) -> bool {
        self.min != self.max
    }

    /// The replicas a function starts with from zero: `min`, but at least one.
    pub fn wake_replicas(&self) -> u64 {
        self.min.max(1)
    }

    /// The replicas for `load` in total: `ceil(load / (target × proportion))`, clamped to
    /// [min, max], and never below one while there is load.
    pub fn desired_for(&self, load: f64) -> u64 {
        let per_replica = self.target * self.proportion;
        let raw = (load / per_replica).ceil();
        let wanted = if raw.is_finite() && raw > 0.0 {
            raw as u64
        } else {
            0
        };
        let floor = if load > 0.0 {
            self.min.max(1)
        } else {
            self.min
        };
        wanted.clamp(floor, self.max)
    }

    /// A one-line summary for `describe`.
    pub fn summary(&self) -> String {
        let kind = match self.kind {
            ScaleType::Rps => "rps",
            ScaleType::Capacity => "capacity",
        };
        let mut text = format!(
            "min {} max {}, target {} {kind} per replica (at {:.0}%)",
            self.min,
            self.max,
            self.target,
            self.proportion * 100.0
        );
        if !self.autoscales() {
            text.push_str(", autoscaling off (min = max)");
        }
        if self.zero {
            text.push_str(&format!(
                ", to zero after {} idle",
                format_duration(self.zero_duration)
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> StringMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let p = ScalePolicy::from_labels(None).unwrap();
        assert_eq!(p, ScalePolicy::default());
        assert_eq!(
            (p.min, p.max, p.kind, p.zero),
            (1, 20, ScaleType::Rps, false)
        );
        let big_min = labels(&[(LABEL_MIN, "30")]);
        let p = ScalePolicy::from_labels(Some(&big_min)).unwrap();
        assert_eq!((p.min, p.max), (30, 30));
        assert!(!p.autoscales());
    }

    #[test]
    fn reads_labels() {
        let l = labels(&[
            (LABEL_MIN, "0"),
            (LABEL_MAX, " 5 "),
            (LABEL_TARGET, "10"),
            (LABEL_TYPE, "capacity"),
            (LABEL_PROPORTION, "0.5"),
            (LABEL_ZERO, "true"),
            (LABEL_ZERO_DURATION, "2m"),
        ]);
        let p = ScalePolicy::from_labels(Some(&l)).unwrap();
        assert_eq!(
            (p.min, p.max, p.target, p.kind),
            (0, 5, 10.0, ScaleType::Capacity)
        );
        assert_eq!(
            (p.proportion, p.zero, p.zero_duration),
            (0.5, true, Duration::from_secs(120))
        );
        assert_eq!(p.wake_replicas(), 1);
        assert!(
            p.summary().contains("to zero after 2m idle"),
            "{}",
            p.summary()
        );
    }

    #[test]
    fn refuses_bad_labels() {
        let bad =
            |pairs: &[(&str, &str)]| ScalePolicy::from_labels(Some(&labels(pairs))).unwrap_err();
        assert!(bad(&[(LABEL_MIN, "two")]).contains("com.openfaas.scale.min='two'"));
        assert!(bad(&[(LABEL_MIN, "3"), (LABEL_MAX, "2")]).contains("above"));
        assert!(bad(&[(LABEL_MAX, "0")]).contains("allows no replicas"));
        assert!(bad(&[(LABEL_MIN, "-1")]).contains("whole number"));
        for huge in ["1001", "2305843009213693952", "99999999999999999999999"] {
            assert!(
                bad(&[(LABEL_MIN, huge)]).contains("above 1000, the most replicas"),
                "min {huge}"
            );
            assert!(
                bad(&[(LABEL_MAX, huge)]).contains("above 1000, the most replicas"),
                "max {huge}"
            );
        }
        let most = labels(&[(LABEL_MIN, "1000")]);
        let p = ScalePolicy::from_labels(Some(&most)).unwrap();
        assert_eq!((p.min, p.max), (1000, 1000));
        assert!(bad(&[(LABEL_TYPE, "cpu")]).contains("use rps"));
        assert!(bad(&[(LABEL_TARGET, "0")]).contains("above 0"));
        assert!(bad(&[(LABEL_PROPORTION, "1.5")]).contains("at most 1"));
        assert!(bad(&[(LABEL_ZERO, "yes")]).contains("true or false"));
        assert!(bad(&[(LABEL_ZERO_DURATION, "soon")]).contains("zero-duration"));
    }

    #[test]
    fn desired_replicas() {
        let p = ScalePolicy {
            min: 1,
            max: 5,
            target: 10.0,
            proportion: 1.0,
            ..Default::default()
        };
        assert_eq!(p.desired_for(0.0), 1);
        assert_eq!(p.desired_for(10.0), 1);
        assert_eq!(p.desired_for(11.0), 2);
        assert_eq!(p.desired_for(1000.0), 5, "never above max");
        let zero = ScalePolicy { min: 0, ..p };
        assert_eq!(zero.desired_for(0.0), 0);
        assert_eq!(zero.desired_for(0.1), 1, "load keeps at least one replica");
        let proportional = ScalePolicy {
            proportion: 0.5,
            ..p
        };
        assert_eq!(
            proportional.desired_for(10.0),
            2,
            "scale before the full target"
        );
    }
}
