//! Times as Authelia's SQLite driver writes them (`2006-01-02 15:04:05.999999999+00:00`, UTC) and
//! as its API shows them (RFC 3339), from Unix seconds.

use time::OffsetDateTime;

fn at(unix_seconds: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix_seconds).ok()
}

/// `2026-08-22 11:24:05+00:00` — the form Authelia's rows carry (whole seconds, so no fraction).
pub fn sqlite_datetime(unix_seconds: i64) -> String {
    match at(unix_seconds) {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00:00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => String::new(),
    }
}

/// `2026-08-22T11:24:05Z`.
pub fn rfc3339(unix_seconds: i64) -> String {
    match at(unix_seconds) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => String::new(),
    }
}

/// Unix seconds of a stored time: `YYYY-MM-DD HH:MM:SS[.fraction][±HH:MM|Z]` (a space or `T`
/// between date and time), the forms Authelia's driver and Portcullis write. `None` otherwise.
pub fn parse_sqlite_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !(bytes[10] == b' ' || bytes[10] == b'T') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if bytes[4] != b'-' || bytes[7] != b'-' || bytes[13] != b':' || bytes[16] != b':' {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = &rest[1..];
            if zone.len() != 5 || zone.as_bytes()[2] != b':' {
                return None;
            }
            let hours: i64 = zone.get(0..2)?.parse().ok()?;
            let minutes: i64 = zone.get(3..5)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?)
            .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    )
    .ok()?;
    Some(date.with_time(clock).assume_utc().unix_timestamp() - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_and_read_back() {
        assert_eq!(sqlite_datetime(0), "1970-01-01 00:00:00+00:00");
        assert_eq!(sqlite_datetime(1_796_136_461), "2026-12-01 14:47:41+00:00");
        assert_eq!(rfc3339(1_796_136_461), "2026-12-01T14:47:41Z");
        for text in [
            "2026-12-01 14:47:41+00:00",
            "2026-12-01 14:47:41.123456789+00:00",
            "2026-12-01T14:47:41Z",
            "2026-12-01 15:47:41+01:00",
            "2026-12-01 09:47:41.5-05:00",
            "2026-12-01 14:47:41",
        ] {
            assert_eq!(parse_sqlite_datetime(text), Some(1_796_136_461), "{text}");
        }
        for bad in [
            "",
            "2026-12-01",
            "2026-13-01 00:00:00",
            "2026-12-01 14:47:41+0100",
            "x026-12-01 14:47:41",
        ] {
            assert_eq!(parse_sqlite_datetime(bad), None, "{bad}");
        }
    }
}
