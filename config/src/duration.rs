//! Authelia's duration forms: `90` (seconds), `90s`, `5m`, `1h`, `1d`, `1w`, `1M`, `1y`, long unit names
//! (`5 minutes`), and sums (`1h30m`).

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const YEAR: u64 = 365 * DAY;
const MONTH: u64 = YEAR / 12;

/// Why a duration was refused. The text is kept for the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing but blanks.
    #[error("empty duration")]
    Empty,
    /// A unit without its number, or a character that is neither.
    #[error("invalid duration {0:?}: expected a number")]
    ExpectedNumber(String),
    /// A number without its unit in a sum (`1h30`).
    #[error("invalid duration {text:?}: missing unit after {number}")]
    MissingUnit {
        /// The duration as written.
        text: String,
        /// The number that has no unit.
        number: u64,
    },
    /// A unit Authelia does not know.
    #[error("invalid duration {text:?}: unknown unit {unit:?}")]
    UnknownUnit {
        /// The duration as written.
        text: String,
        /// The unit.
        unit: String,
    },
    /// More seconds than fit in 64 bits.
    #[error("invalid duration {0:?}: too large")]
    TooLarge(String),
}

/// Parse a duration in seconds. Negative values are not durations (callers handle `-1` themselves).
pub fn parse_duration(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(seconds);
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::ExpectedNumber(text.to_owned()));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::TooLarge(text.to_owned()))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let factor = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => MINUTE,
            "h" | "hr" | "hrs" | "hour" | "hours" => HOUR,
            "d" | "day" | "days" => DAY,
            "w" | "week" | "weeks" => 7 * DAY,
            "M" | "month" | "months" => MONTH,
            "y" | "year" | "years" => YEAR,
            "" => {
                return Err(DurationError::MissingUnit {
                    text: text.to_owned(),
                    number,
                });
            }
            other => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_owned(),
                    unit: other.to_owned(),
                });
            }
        };
        total = number
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| DurationError::TooLarge(text.to_owned()))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authelia_forms() {
        let cases = [
            ("90", 90),
            ("90s", 90),
            ("5m", 300),
            ("1h", 3600),
            ("1d", 86400),
            ("1w", 604800),
            ("1M", 2_628_000),
            ("1y", 31_536_000),
            ("1h30m", 5400),
            ("2 hours", 7200),
            ("1 day 2h", 93600),
            ("0", 0),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        for bad in ["", "5x", "m", "-1", "1.5h", "5m x"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
