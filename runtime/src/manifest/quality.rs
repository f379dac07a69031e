//! The manifest's `quality` section: how a prediction is judged once its outcome is known,
//! and when it is old enough to be judged (its maturity).
//!
//! ```json
//! "quality": {"kind": "binary", "window": "90d"}
//! "quality": {"kind": "forecast"}
//! "quality": {"kind": "classification"}
//! ```
//!
//! - `binary`: a prediction made at `t` is labelled 1 if an outcome with value 1 falls in
//!   `(t, t + window]`, 0 once `t + window` has passed without one, and is not judged
//!   before that. The window is a duration: `90d`, `12h`, `30m`, `30s`.
//! - `forecast`: the prediction for day `d` is judged by the actual of `d`.
//! - `classification`: the label a person confirmed, by request id or entity.
//!
//! Beside it, `"log_sampling": 0.25`: the share of this model's calls the prediction log
//! keeps (the server's `[prediction_log.sampling]` overrides it).

use serde::{Deserialize, Serialize};

use super::Manifest;
use crate::{Result, RuntimeError};

/// How a model's predictions are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityKind {
    /// A probability against a yes/no outcome within a window.
    Binary,
    /// A day's forecast against that day's actual.
    Forecast,
    /// A label against the one a person confirmed.
    Classification,
}

impl QualityKind {
    /// The kind's name, as the manifest spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityKind::Binary => "binary",
            QualityKind::Forecast => "forecast",
            QualityKind::Classification => "classification",
        }
    }
}

/// The `quality` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quality {
    /// How predictions are judged.
    pub kind: QualityKind,
    /// For `binary`: how long after a prediction its outcome may come (`90d`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub window: String,
}

impl Quality {
    /// Parses and checks the section, if the manifest has one.
    pub fn of(manifest: &Manifest) -> Result<Option<Quality>> {
        let Some(v) = manifest.extra.get("quality") else {
            return Ok(None);
        };
        let q: Quality = serde_json::from_value(v.clone())
            .map_err(|e| RuntimeError::Signature(format!("quality: {e}")))?;
        q.check()?;
        Ok(Some(q))
    }

    /// Checks the window against the kind.
    pub fn check(&self) -> Result<()> {
        match (self.kind, self.window.is_empty()) {
            (QualityKind::Binary, true) => Err(RuntimeError::Signature(
                "quality.window: a binary model needs its outcome window, e.g. \"90d\"".into(),
            )),
            (QualityKind::Binary, false) => parse_duration(&self.window)
                .map(|_| ())
                .map_err(|e| RuntimeError::Signature(format!("quality.window: {e}"))),
            (_, true) => Ok(()),
            (kind, false) => Err(RuntimeError::Signature(format!(
                "quality.window: a {} model is judged by its own day or label, not a window",
                kind.as_str()
            ))),
        }
    }

    /// The outcome window in microseconds (0 for kinds without one).
    pub fn window_micros(&self) -> i64 {
        parse_duration(&self.window).unwrap_or(0)
    }
}

/// The manifest's `log_sampling`, if it has one: a share from 0 to 1.
pub fn log_sampling(manifest: &Manifest) -> Result<Option<f64>> {
    let Some(v) = manifest.extra.get("log_sampling") else {
        return Ok(None);
    };
    match v.as_f64() {
        Some(f) if (0.0..=1.0).contains(&f) => Ok(Some(f)),
        _ => Err(RuntimeError::Signature(format!(
            "log_sampling: {v} is not a share from 0 to 1"
        ))),
    }
}

/// `90d`, `12h`, `30m`, `30s` (a whole number and a unit) in microseconds.
pub fn parse_duration(text: &str) -> std::result::Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{text}' has no unit: write 90d, 12h, 30m or 30s"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("'{text}' does not start with a whole number"))?;
    let seconds: i64 = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(format!("'{text}': the unit must be d, h, m or s")),
    };
    if n <= 0 {
        return Err(format!("'{text}' must be longer than zero"));
    }
    n.checked_mul(seconds)
        .and_then(|s| s.checked_mul(1_000_000))
        .ok_or_else(|| format!("'{text}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_bad_ones_say_why() {
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400 * 1_000_000));
        assert_eq!(parse_duration("30s"), Ok(30_000_000));
        assert_eq!(parse_duration("12h"), Ok(12 * 3_600_000_000));
        for bad in ["", "90", "d", "0d", "9w", "1.5d", "-1d", "99999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_binary_model_needs_a_window_and_the_others_none() {
        let q = |kind, window: &str| Quality {
            kind,
            window: window.into(),
        };
        assert!(q(QualityKind::Binary, "90d").check().is_ok());
        assert!(q(QualityKind::Binary, "").check().is_err());
        assert!(q(QualityKind::Forecast, "").check().is_ok());
        assert!(q(QualityKind::Forecast, "3d").check().is_err());
        assert!(q(QualityKind::Classification, "").check().is_ok());
    }
}
