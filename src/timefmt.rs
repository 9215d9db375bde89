//! UTC timestamps in the two text forms the crate reads and writes: RFC 3339
//! (`2026-11-25T06:15:04Z`, registry records and task times) and the basic
//! ISO 8601 form of Huawei's `X-Sdk-Date` header (`20261125T061504Z`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a number of days since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

/// `t` as `YYYY-MM-DDThh:mm:ssZ`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `t` as `YYYY-MM-DDThh:mm:ss.mmmZ` (milliseconds, so that events of the
/// same second keep their order).
pub fn rfc3339_utc_millis(t: SystemTime) -> String {
    let millis = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_millis());
    let whole = rfc3339_utc(t);
    format!("{}.{millis:03}Z", &whole[..whole.len() - 1])
}

/// `t` as `YYYYMMDDThhmmssZ`, the form of `X-Sdk-Date`.
pub fn sdk_date(t: SystemTime) -> String {
    rfc3339_utc(t).replace(['-', ':'], "")
}

/// Parses `YYYYMMDDThhmmssZ` (exactly; the form of `X-Sdk-Date`).
pub fn parse_sdk_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_between_both_forms() {
        for secs in [
            0u64,
            951_782_400,
            1_767_225_600,
            1_795_587_304,
            4_102_444_799,
        ] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(parse_sdk_date(&sdk_date(t)), Some(t), "{secs}");
        }
        assert_eq!(
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(parse_sdk_date("20250229T000000Z"), None);
        assert!(parse_sdk_date("20240229T235959Z").is_some());
    }
}

#[cfg(test)]
mod doc_examples {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_writes_utc_seconds() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_587_304);
        assert_eq!(rfc3339_utc(t), "2026-11-25T06:15:04Z");
    }

    #[test]
    fn sdk_dates_parse_exactly_their_own_form() {
        assert_eq!(
            parse_sdk_date("20260101T000000Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        );
        assert_eq!(parse_sdk_date("2026-01-01T00:00:00Z"), None);
        assert_eq!(parse_sdk_date("20261301T000000Z"), None);
    }
}

/// Microseconds since 1970-01-01 UTC of a date or timestamp written as
/// text: `YYYY-MM-DD`, or that with ` ` or `T`, `HH:MM[:SS[.f…]]` and an
/// optional `Z`, `+00`, `+00:00` or `+0000` (other offsets are `None`:
/// they would name another instant than their digits say).
pub(crate) fn text_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &[u8]| -> Option<i64> {
        // Digits only, and few enough that they cannot overflow.
        (!s.is_empty() && s.len() <= 9 && s.iter().all(u8::is_ascii_digit))
            .then(|| s.iter().fold(0, |n, &c| n * 10 + i64::from(c - b'0')))
    };
    let (y, m, d) = (num(&b[..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Byte 9 is a digit, so byte 10 starts a character.
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(days * 86_400_000_000);
    }
    let time = rest.strip_prefix(['T', ' '])?;
    let time = ["Z", "+00:00", "+0000", "+00"]
        .iter()
        .find_map(|z| time.strip_suffix(z))
        .unwrap_or(time);
    let (hms, fraction) = match time.split_once('.') {
        Some((_, "")) => return None,
        Some(split) => split,
        None => (time, ""),
    };
    let mut parts = hms.split(':');
    let h = num(parts.next()?.as_bytes())?;
    let mi = num(parts.next()?.as_bytes())?;
    let s = parts.next().map_or(Some(0), |s| num(s.as_bytes()))?;
    if parts.next().is_some() || h > 23 || mi > 59 || s > 60 || fraction.len() > 9 {
        return None;
    }
    let micros = if fraction.is_empty() {
        0
    } else {
        let digits = &fraction.as_bytes()[..fraction.len().min(6)];
        let scale = 10_i64.pow(6 - digits.len() as u32);
        // The rest of the fraction must be digits too.
        num(fraction.as_bytes())?;
        num(digits)? * scale
    };
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + micros)
}

#[cfg(test)]
mod text_micros_tests {
    use super::text_micros;

    #[test]
    fn dates_and_timestamps_in_their_usual_spellings_are_one_instant() {
        let hour = text_micros("2013-01-01T06:00:00Z").unwrap();
        for same in [
            "2013-01-01 06:00:00",
            "2013-01-01T06:00",
            "2013-01-01 06:00:00+00",
            "2013-01-01T06:00:00.000+00:00",
        ] {
            assert_eq!(text_micros(same), Some(hour), "{same}");
        }
        assert_eq!(text_micros("1970-01-02"), Some(86_400_000_000));
        assert_eq!(text_micros("2013-01-01 06:00:00.25"), Some(hour + 250_000));
        for not in [
            "2013-01-01T06:00:00+01:00",
            "2013-13-01",
            "N/A",
            "2013-01-01x",
            "2013-01-0é",
            "2013-01-01 06:00:00.2x",
            "2013-01-01 06:00:00.",
            "2013-01-01 6é:00",
        ] {
            assert_eq!(text_micros(not), None, "{not}");
        }
    }
}
