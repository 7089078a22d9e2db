//! Durations as OpenFaaS writes them: a bare integer is seconds, otherwise a Go duration
//! string such as `1m30s`, `500ms` or `1.5h`.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a number of seconds nor a Go duration.
    #[error(
        "'{0}' is not a duration: write seconds as a number ('30') or a Go duration such as \
         '500ms', '45s', '1m30s' or '2h'"
    )]
    Invalid(String),
    /// Longer than [`MAX_DURATION`].
    #[error("'{0}' is longer than the longest duration, 2562047h (about 292 years)")]
    TooLong(String),
}

/// The longest duration, Go's (`math.MaxInt64` nanoseconds): anything added to a clock or
/// multiplied by a small factor stays in range.
pub const MAX_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);

/// Parses `30`, `30s`, `1m30s`, `500ms`, `1.5h`, `250us`; negative values and durations above
/// [`MAX_DURATION`] are refused.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError::Invalid(text.to_string());
    let s = text.trim();
    if s.is_empty() {
        return Err(err());
    }
    let within = |d: Duration| {
        if d > MAX_DURATION {
            Err(DurationError::TooLong(text.to_string()))
        } else {
            Ok(d)
        }
    };
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<u64>() {
            Ok(secs) => within(Duration::from_secs(secs)),
            Err(_) => Err(DurationError::TooLong(text.to_string())),
        };
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total_nanos += number * nanos_per_unit;
    }
    if !total_nanos.is_finite() {
        return Err(err());
    }
    if total_nanos > u64::MAX as f64 {
        return Err(DurationError::TooLong(text.to_string()));
    }
    within(Duration::from_nanos(total_nanos.round() as u64))
}

/// Formats a duration the way Go prints it, in its largest natural units (`1m30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        return if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        };
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let frac = d.subsec_millis();
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 || (h > 0 && (s > 0 || frac > 0)) {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || frac > 0 || out.is_empty() {
        if frac > 0 {
            let frac = format!("{frac:03}");
            out.push_str(&format!("{s}.{}s", frac.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}s"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_integers_are_seconds() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2h45m"), Ok(Duration::from_secs(9900)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_garbage() {
        for bad in ["", "s", "10x", "-5s", "1m30", "abc", "1..5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_durations_longer_than_go_allows() {
        assert_eq!(
            parse_duration("9223372036"),
            Ok(Duration::from_secs(9_223_372_036))
        );
        assert_eq!(
            parse_duration("2562047h"),
            Ok(Duration::from_secs(9_223_369_200))
        );
        for long in [
            "9223372037",
            "10000000000000000000",
            "99999999999999999999999",
            "2562048h",
            "100000000000000000000000000000h",
        ] {
            let e = parse_duration(long).unwrap_err();
            assert_eq!(e, DurationError::TooLong(long.to_string()), "{long}");
            assert!(e.to_string().contains("292 years"), "{e}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
