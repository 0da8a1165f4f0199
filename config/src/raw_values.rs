//! Values as a configuration file writes them, before validation: shared by every server's raw
//! (serde) configuration types.

use serde::Deserialize;

/// A duration as written: an integer (seconds) or a string in Authelia's forms (`90s`, `1h30m`),
/// for [`parse_duration`](crate::parse_duration).
///
/// ```
/// let d: portcullis_config::RawDuration = serde_yaml_ng::from_str("90").unwrap();
/// assert_eq!(portcullis_config::parse_duration(&d.0), Ok(90));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDuration(pub String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Int(i64),
            Text(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Int(i) => RawDuration(i.to_string()),
            Either::Text(t) => RawDuration(t),
        })
    }
}

/// A secret as written in the file: `Debug` never shows it.
///
/// ```
/// let s: portcullis_config::RawSecret = serde_yaml_ng::from_str("hunter2").unwrap();
/// assert_eq!(format!("{s:?}"), "[redacted]");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RawSecret(pub String);

impl std::fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}
