//! The `com.openfaas.scale.*` labels, parsed into a typed policy.

use crate::wire::StringMap;

/// Label: replicas kept at least (and started on deploy).
pub const LABEL_MIN: &str = "com.openfaas.scale.min";
/// Label: replicas allowed at most.
pub const LABEL_MAX: &str = "com.openfaas.scale.max";

/// Replicas a function starts with when no `com.openfaas.scale.min` is set.
pub const DEFAULT_MIN: u64 = 1;
/// Replicas a function may have when no `com.openfaas.scale.max` is set.
pub const DEFAULT_MAX: u64 = 20;

/// A function's replica bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalePolicy {
    /// The fewest replicas.
    pub min: u64,
    /// The most replicas.
    pub max: u64,
}

fn parse_count(labels: &StringMap, key: &str, default: u64) -> Result<u64, String> {
    match labels.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            format!("label {key}='{v}' is not a whole number ≥ 0; write e.g. {key}: \"2\"")
        }),
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
        Ok(ScalePolicy { min, max })
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
        assert_eq!(
            ScalePolicy::from_labels(None),
            Ok(ScalePolicy { min: 1, max: 20 })
        );
        let big_min = labels(&[(LABEL_MIN, "30")]);
        assert_eq!(
            ScalePolicy::from_labels(Some(&big_min)),
            Ok(ScalePolicy { min: 30, max: 30 })
        );
    }

    #[test]
    fn reads_labels() {
        let l = labels(&[(LABEL_MIN, "0"), (LABEL_MAX, " 5 ")]);
        assert_eq!(
            ScalePolicy::from_labels(Some(&l)),
            Ok(ScalePolicy { min: 0, max: 5 })
        );
    }

    #[test]
    fn refuses_bad_labels() {
        let e = ScalePolicy::from_labels(Some(&labels(&[(LABEL_MIN, "two")]))).unwrap_err();
        assert!(e.contains("com.openfaas.scale.min='two'"), "{e}");
        let e = ScalePolicy::from_labels(Some(&labels(&[(LABEL_MIN, "3"), (LABEL_MAX, "2")])))
            .unwrap_err();
        assert!(e.contains("above"), "{e}");
        assert!(ScalePolicy::from_labels(Some(&labels(&[(LABEL_MAX, "0")]))).is_err());
        assert!(ScalePolicy::from_labels(Some(&labels(&[(LABEL_MIN, "-1")]))).is_err());
    }
}
