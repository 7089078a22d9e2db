//! RFC 3339 timestamps as the OpenFaaS API writes them: `2024-05-01T12:00:00Z`, and with
//! nanoseconds in log entries (`2024-05-01T12:00:00.123456789Z`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil-from-days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn split(t: SystemTime) -> (String, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    (text, since.subsec_nanos())
}

/// Formats a time as RFC 3339 in UTC with second precision (`2024-05-01T12:00:00Z`).
pub fn format_rfc3339(t: SystemTime) -> String {
    format!("{}Z", split(t).0)
}

/// Formats a time as RFC 3339 in UTC with nanoseconds (`2024-05-01T12:00:00.000000001Z`).
pub fn format_rfc3339_nanos(t: SystemTime) -> String {
    let (text, nanos) = split(t);
    format!("{text}.{nanos:09}Z")
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an RFC 3339 time; write e.g. 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00"
)]
pub struct TimestampError(pub String);

/// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, TimestampError> {
    let err = || TimestampError(text.to_string());
    let s = text.trim();
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, TimestampError> {
        let part = s.get(range).ok_or_else(err)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| err())
        } else {
            Err(err())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(err());
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let padded = format!("{:0<9}", &frac[..digits.min(9)]);
        nanos = padded.parse().map_err(|_| err())?;
        rest = &frac[digits..];
    }
    // Byte-wise: the offset may hold any character, and slicing the text inside one panics.
    let offset_secs: i64 = match rest.as_bytes() {
        b"Z" | b"z" => 0,
        &[sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(u8::is_ascii_digit) =>
        {
            let two = |tens: u8, ones: u8| i64::from((tens - b'0') * 10 + (ones - b'0'));
            let (hours, minutes) = (two(h1, h2), two(m1, m2));
            if hours > 23 || minutes > 59 {
                return Err(err());
            }
            let sign = if sign == b'-' { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(err()),
    };
    let days = days_from_civil(i64::from(year), month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
        - offset_secs;
    let secs = u64::try_from(secs).map_err(|_| err())?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_688_487_444);
        assert_eq!(format_rfc3339(t), "2023-07-04T16:17:24Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(format_rfc3339(leap), "2000-02-29T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_688_487_444, 5);
        assert_eq!(format_rfc3339_nanos(t), "2023-07-04T16:17:24.000000005Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        let t = UNIX_EPOCH + Duration::new(1_688_487_444, 123_000_000);
        assert_eq!(parse_rfc3339(&format_rfc3339_nanos(t)), Ok(t));
        assert_eq!(parse_rfc3339("2023-07-04T16:17:24.123Z"), Ok(t));
        assert_eq!(
            parse_rfc3339("2023-07-04T18:17:24+02:00"),
            Ok(UNIX_EPOCH + Duration::from_secs(1_688_487_444))
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Ok(UNIX_EPOCH + Duration::from_secs(951_782_400))
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-07-04 16:17:24",
            "2023-07-04T16:17:24+0200",
            "2023-07-04T16:17:24.Z",
            "2023-07-04T16:17:24+02:60",
            "2023-07-04T16:17:24+-1:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_offsets_with_multibyte_characters() {
        // A `?since=` query reaches this unchecked: slicing "+0é00" at byte 3 panicked.
        for bad in [
            "2024-01-01T00:00:00+0é00",
            "2024-01-01T00:00:00+é:00",
            "2024-01-01T00:00:00é",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
