//! Memory and CPU quantities as stack files write them (Kubernetes style): `128Mi`, `1G`,
//! plain bytes; `500m`, `0.5`, `2` cores.

/// Why a memory or CPU quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a memory size.
    #[error(
        "'{0}' is not a memory size: write a number with a unit such as '128Mi', '512M', \
         '1Gi' or '1G', or plain bytes like '134217728'"
    )]
    Memory(String),
    /// Not a CPU amount.
    #[error("'{0}' is not a CPU amount: write millicores like '500m', or cores like '0.5' or '2'")]
    Cpu(String),
}

/// Parses a memory size into bytes: an optional binary (`Ki`..`Ei`) or decimal (`k`..`E`)
/// suffix on a whole or decimal number; fractions of a byte round up.
pub fn parse_memory(text: &str) -> Result<u64, QuantityError> {
    let err = || QuantityError::Memory(text.to_string());
    let s = text.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return Err(err()),
    };
    to_whole(number, multiplier).ok_or_else(err)
}

/// Parses a CPU amount into millicores: `500m`, or cores as a whole or decimal number;
/// fractions of a millicore round up.
pub fn parse_cpu_millis(text: &str) -> Result<u64, QuantityError> {
    let s = text.trim();
    let (number, multiplier) = match s.strip_suffix('m') {
        Some(millis) if !millis.contains('.') => (millis, 1.0),
        Some(_) => return Err(QuantityError::Cpu(text.to_string())),
        None => (s, 1000.0),
    };
    to_whole(number, multiplier).ok_or_else(|| QuantityError::Cpu(text.to_string()))
}

/// `number` (digits with at most one `.`, a digit on each side) times `multiplier`, rounded up.
fn to_whole(number: &str, multiplier: f64) -> Option<u64> {
    let well_formed = match number.split_once('.') {
        Some((whole, fraction)) => is_digits(whole) && is_digits(fraction),
        None => is_digits(number),
    };
    if !well_formed {
        return None;
    }
    let value = number.parse::<f64>().ok()? * multiplier;
    (value.is_finite() && value < u64::MAX as f64).then(|| value.ceil() as u64)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("128Mi"), Ok(128 << 20));
        assert_eq!(parse_memory("1Gi"), Ok(1 << 30));
        assert_eq!(parse_memory("1G"), Ok(1_000_000_000));
        assert_eq!(parse_memory("512M"), Ok(512_000_000));
        assert_eq!(parse_memory("64k"), Ok(64_000));
        assert_eq!(parse_memory("134217728"), Ok(134_217_728));
        assert_eq!(parse_memory("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_memory(" 0 "), Ok(0));
    }

    #[test]
    fn bad_memory_sizes() {
        for bad in [
            "", "Mi", "128MB", "128 Mi", "1.Gi", ".5Gi", "-1Mi", "128m", "1e9", "12K",
        ] {
            let err = parse_memory(bad).expect_err(bad);
            assert!(err.to_string().contains("'128Mi'"), "{err}");
        }
        assert!(parse_memory("99999999E").is_err());
    }

    #[test]
    fn cpu_amounts() {
        assert_eq!(parse_cpu_millis("500m"), Ok(500));
        assert_eq!(parse_cpu_millis("0.5"), Ok(500));
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.0001"), Ok(1));
    }

    #[test]
    fn bad_cpu_amounts() {
        for bad in ["", "m", "1.5m", "half", "2 cores", "-1", "100M"] {
            let err = parse_cpu_millis(bad).expect_err(bad);
            assert!(err.to_string().contains("'500m'"), "{err}");
        }
    }
}
