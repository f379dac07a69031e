//! Slots: the details a support bot needs before it can act on an intent (which order,
//! which code, which day), found in the message by the manifest's patterns and
//! normalised so the backend can use them as they are.
//!
//! ```json
//! "slots": {
//!   "order_number": {"patterns": ["(?i)order\\s*(?:number|no\\.?)?\\s*#?\\s*(?P<value>\\d[\\d ]{2,10}\\d)",
//!                                 "#\\s*(?P<value>\\d[\\d ]{2,10}\\d)"],
//!                    "normalize": "digits"},
//!   "email": {"normalize": "email"},
//!   "delivery_date": {"normalize": "date"}
//! },
//! "intent_slots": {"order_status": ["order_number"], "change_delivery_address": ["order_number", "postcode"]}
//! ```
//!
//! A pattern is a regular expression (Rust's `regex` syntax: no look-around or
//! back-references, so matching is linear in the message); the slot's text is the group
//! named `value` when the pattern has one, else the whole match. Patterns are tried in
//! order and the first that matches wins. Normalisations:
//! - `digits`: the digits alone (`#58 213` → `58213`);
//! - `upper`: upper case, spaces removed (a discount code, a SKU);
//! - `postcode`: upper case, one space before the last three characters (`sw1a1aa` →
//!   `SW1A 1AA`);
//! - `lower`, `text`: lower case, or as written, trimmed;
//! - `email`: lower case (a built-in pattern when none is given);
//! - `amount`: a decimal with two places, and the currency when one is written
//!   (`£12,5` → `12.50 GBP`; built-in pattern);
//! - `date`: an ISO date relative to the caller's reference date (built-in pattern:
//!   `today`, `tomorrow`, `yesterday`, `in 3 days`, a weekday — `tuesday`, `on tuesday`,
//!   `this tuesday` and `next tuesday` are the first Tuesday after the reference date,
//!   `last tuesday` the last before it — `2026-12-24`, `24/12/2026` (day first),
//!   `24 December`, `December 24th`, the year defaulting to the reference date's).
//!
//! Checked at registration: a pattern that does not compile, a slot without a pattern
//! whose normalisation has none built in, an intent slot that names no slot or an intent
//! that is not a label refuses the version, naming the slot.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, Weekday};
use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use crate::{Result, RuntimeError};

/// How a slot's text becomes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalize {
    /// The digits alone.
    Digits,
    /// Upper case, spaces removed.
    Upper,
    /// Upper case, a space before the last three characters.
    Postcode,
    /// Lower case, trimmed.
    Lower,
    /// As written, trimmed.
    Text,
    /// Lower case.
    Email,
    /// A decimal with two places, and the currency.
    Amount,
    /// An ISO date relative to the reference date.
    Date,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotDoc {
    #[serde(default)]
    patterns: Vec<String>,
    normalize: Normalize,
}

/// One checked slot.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Its name.
    pub name: String,
    /// Its patterns, compiled.
    pub patterns: Vec<Regex>,
    /// How its text becomes its value.
    pub normalize: Normalize,
}

/// A slot found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The slot.
    pub name: String,
    /// Its normalised value.
    pub value: String,
    /// The text it was read from.
    pub text: String,
    /// Where that text starts and ends, in characters of the message.
    pub start: usize,
    /// End (exclusive).
    pub end: usize,
    /// Given in an earlier turn of the conversation (its span is then empty).
    pub remembered: bool,
}

/// The manifest's slots and which intents need which.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    /// Every slot, in the manifest's order.
    pub slots: Vec<Slot>,
    /// The slots each intent needs, in the order the bot asks for them.
    pub needs: BTreeMap<String, Vec<String>>,
}

impl PartialEq for Slots {
    fn eq(&self, other: &Self) -> bool {
        let key = |s: &Slots| {
            s.slots
                .iter()
                .map(|x| {
                    (
                        x.name.clone(),
                        x.normalize,
                        x.patterns
                            .iter()
                            .map(|p| p.as_str().to_string())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        };
        key(self) == key(other) && self.needs == other.needs
    }
}

/// Most compiled size one pattern may take (the regex crate's own bound on memory).
const PATTERN_BYTES: usize = 1 << 20;

const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}";
const AMOUNT: &str = r"(?i)(?:(?P<before>[£$€])\s*(?P<a>\d{1,9}(?:[.,]\d{1,2})?)|(?P<b>\d{1,9}(?:[.,]\d{1,2})?)\s*(?P<after>€|eur(?:os?)?\b|gbp\b|pounds?\b|usd\b|dollars?\b))";
const MONTHS: &str = "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
const WEEKDAYS: &str = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|tues|wed|thu|thurs|fri|sat|sun";

fn date_pattern() -> String {
    format!(
        r"(?i)\b(?:(?P<rel>today|tomorrow|yesterday|day after tomorrow)|in (?P<n>\d{{1,3}}) days?|(?P<which>next |this |on |last )?(?P<wd>{WEEKDAYS})\b|(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})|(?P<dmy>\d{{1,2}})/(?P<mm>\d{{1,2}})/(?P<yyyy>\d{{4}})|(?P<d1>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<m1>{MONTHS})\b(?: (?P<y1>\d{{4}}))?|(?P<m2>{MONTHS}) (?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,? (?P<y2>\d{{4}}))?)"
    )
}

/// The built-in date pattern, for reading what a slot's own date pattern found.
static BUILT_IN_DATE: std::sync::LazyLock<Option<Regex>> =
    std::sync::LazyLock::new(|| Regex::new(&date_pattern()).ok());

fn compile(slot: &str, k: usize, pattern: &str) -> Result<Regex> {
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_BYTES)
        .build()
        .map_err(|e| RuntimeError::Signature(format!("slots.{slot}.patterns[{k}]: {e}")))
}

impl Slots {
    /// Parses and checks the manifest's `slots` and `intent_slots` against `labels`.
    pub fn of(
        extra: &BTreeMap<String, serde_json::Value>,
        labels: &[String],
    ) -> Result<Option<Slots>> {
        let (Some(doc), needs) = (extra.get("slots"), extra.get("intent_slots")) else {
            if extra.contains_key("intent_slots") {
                return Err(RuntimeError::Signature(
                    "intent_slots: name slots the manifest declares in 'slots'".into(),
                ));
            }
            return Ok(None);
        };
        let docs: BTreeMap<String, SlotDoc> = serde_json::from_value(doc.clone())
            .map_err(|e| RuntimeError::Signature(format!("slots: {e}")))?;
        let mut slots = Vec::with_capacity(docs.len());
        for (name, d) in docs {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(RuntimeError::Signature(format!(
                    "slots.{name}: a slot's name is letters, digits and '_'"
                )));
            }
            let mut patterns = Vec::with_capacity(d.patterns.len().max(1));
            for (k, p) in d.patterns.iter().enumerate() {
                patterns.push(compile(&name, k, p)?);
            }
            if patterns.is_empty() {
                let built_in = match d.normalize {
                    Normalize::Email => EMAIL.to_string(),
                    Normalize::Amount => AMOUNT.to_string(),
                    Normalize::Date => date_pattern(),
                    other => {
                        return Err(RuntimeError::Signature(format!(
                            "slots.{name}.patterns: give at least one pattern (\"{other:?}\" has none built in)"
                        )));
                    }
                };
                patterns.push(compile(&name, 0, &built_in)?);
            }
            slots.push(Slot {
                name,
                patterns,
                normalize: d.normalize,
            });
        }
        let needs: BTreeMap<String, Vec<String>> = match needs {
            None => BTreeMap::new(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                RuntimeError::Signature(format!(
                    "intent_slots: {e} (write {{\"intent\": [\"slot\", …]}})"
                ))
            })?,
        };
        for (intent, names) in &needs {
            if !labels.contains(intent) {
                return Err(RuntimeError::Signature(format!(
                    "intent_slots.{intent}: not one of the labels"
                )));
            }
            for n in names {
                if !slots.iter().any(|s| &s.name == n) {
                    return Err(RuntimeError::Signature(format!(
                        "intent_slots.{intent}: '{n}' is not a declared slot"
                    )));
                }
            }
        }
        Ok(Some(Slots { slots, needs }))
    }

    /// Every slot found in `message`, each once (its first pattern that matches, at its
    /// first match whose text normalises), dates relative to `reference`.
    pub fn find(&self, message: &str, reference: NaiveDate) -> Vec<Found> {
        let mut found = Vec::new();
        'slots: for slot in &self.slots {
            for pattern in &slot.patterns {
                for caps in pattern.captures_iter(message) {
                    let whole = caps.get(0).expect("group 0 is the match");
                    let part = caps.name("value").unwrap_or(whole);
                    let Some(value) = normalize(slot.normalize, &caps, part.as_str(), reference)
                    else {
                        continue;
                    };
                    found.push(Found {
                        name: slot.name.clone(),
                        value,
                        text: part.as_str().to_string(),
                        start: message[..part.start()].chars().count(),
                        end: message[..part.end()].chars().count(),
                        remembered: false,
                    });
                    continue 'slots;
                }
            }
        }
        found
    }

    /// The slots `intent` needs that `have` lacks, in the order the bot asks for them.
    pub fn missing<'a>(&'a self, intent: &str, have: &[Found]) -> Vec<&'a str> {
        self.needs
            .get(intent)
            .map(|names| {
                names
                    .iter()
                    .filter(|n| !have.iter().any(|f| &f.name == *n))
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn normalize(
    how: Normalize,
    caps: &regex::Captures<'_>,
    text: &str,
    reference: NaiveDate,
) -> Option<String> {
    let trimmed = text.trim();
    let value = match how {
        Normalize::Digits => trimmed.chars().filter(char::is_ascii_digit).collect(),
        Normalize::Upper => trimmed
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect(),
        Normalize::Postcode => {
            let compact: String = trimmed
                .chars()
                .filter(|c| !c.is_whitespace())
                .flat_map(char::to_uppercase)
                .collect();
            let cut = compact
                .len()
                .checked_sub(3)
                .filter(|&c| c > 0 && compact.is_ascii())?;
            format!("{} {}", &compact[..cut], &compact[cut..])
        }
        Normalize::Lower | Normalize::Email => trimmed.to_lowercase(),
        Normalize::Text => trimmed.to_string(),
        Normalize::Amount => amount(caps, trimmed)?,
        // A slot's own pattern finds where; the built-in one reads what it found.
        Normalize::Date => date(caps, reference)
            .or_else(|| {
                let built_in = BUILT_IN_DATE.as_ref()?.captures(trimmed)?;
                date(&built_in, reference)
            })?
            .format("%Y-%m-%d")
            .to_string(),
    };
    (!value.is_empty()).then_some(value)
}

fn amount(caps: &regex::Captures<'_>, text: &str) -> Option<String> {
    let number = caps
        .name("a")
        .or_else(|| caps.name("b"))
        .map_or(text, |m| m.as_str())
        .replace(',', ".");
    let value: f64 = number.parse().ok()?;
    let currency = caps
        .name("before")
        .or_else(|| caps.name("after"))
        .map(|m| m.as_str().to_lowercase());
    let code = match currency.as_deref() {
        Some("£") | Some("gbp") | Some("pound") | Some("pounds") => Some("GBP"),
        Some("$") | Some("usd") | Some("dollar") | Some("dollars") => Some("USD"),
        Some(c) if c == "€" || c.starts_with("eur") => Some("EUR"),
        _ => None,
    };
    Some(match code {
        Some(code) => format!("{value:.2} {code}"),
        None => format!("{value:.2}"),
    })
}

fn month(name: &str) -> Option<u32> {
    let m = name.get(..3)?.to_lowercase();
    let at = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|x| *x == m)?;
    Some(at as u32 + 1)
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.get(..3)?.to_lowercase().as_str() {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}

fn date(caps: &regex::Captures<'_>, reference: NaiveDate) -> Option<NaiveDate> {
    let text = |name: &str| caps.name(name).map(|m| m.as_str().to_lowercase());
    let number = |name: &str| text(name).and_then(|t| t.parse::<u32>().ok());
    if let Some(rel) = text("rel") {
        return match rel.as_str() {
            "today" => Some(reference),
            "tomorrow" => reference.checked_add_days(Days::new(1)),
            "yesterday" => reference.checked_sub_days(Days::new(1)),
            _ => reference.checked_add_days(Days::new(2)),
        };
    }
    if let Some(n) = number("n") {
        return reference.checked_add_days(Days::new(u64::from(n)));
    }
    if let Some(wd) = text("wd").as_deref().and_then(weekday) {
        let now = reference.weekday().num_days_from_monday() as i64;
        let want = wd.num_days_from_monday() as i64;
        return if text("which").as_deref().map(str::trim) == Some("last") {
            let back = (now - want).rem_euclid(7);
            reference.checked_sub_days(Days::new(if back == 0 { 7 } else { back } as u64))
        } else {
            let ahead = (want - now).rem_euclid(7);
            reference.checked_add_days(Days::new(if ahead == 0 { 7 } else { ahead } as u64))
        };
    }
    if let Some(iso) = text("iso") {
        return NaiveDate::parse_from_str(&iso, "%Y-%m-%d").ok();
    }
    if let (Some(d), Some(m), Some(y)) = (number("dmy"), number("mm"), number("yyyy")) {
        return NaiveDate::from_ymd_opt(y as i32, m, d);
    }
    let (d, m, y) = match (number("d1"), text("m1"), number("d2"), text("m2")) {
        (Some(d), Some(m), _, _) => (d, m, number("y1")),
        (_, _, Some(d), Some(m)) => (d, m, number("y2")),
        _ => return None,
    };
    let year = y.map_or(reference.year(), |y| y as i32);
    NaiveDate::from_ymd_opt(year, month(&m)?, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(doc: serde_json::Value) -> Result<Option<Slots>> {
        let extra: BTreeMap<String, serde_json::Value> =
            serde_json::from_value(doc).expect("an object");
        Slots::of(&extra, &["order_status".into(), "discount_code".into()])
    }

    fn demo() -> Slots {
        slots(serde_json::json!({
            "slots": {
                "order_number": {"patterns": [r"(?i)order\s*(?:number|no\.?)?\s*#?\s*(?P<value>\d[\d ]{2,10}\d)", r"#\s*(?P<value>\d[\d ]{2,10}\d)"], "normalize": "digits"},
                "email": {"normalize": "email"},
                "code": {"patterns": [r"(?i)code\s+(?P<value>[a-z0-9]{4,12})"], "normalize": "upper"},
                "postcode": {"patterns": [r"(?i)\b(?P<value>[a-z]{1,2}\d[a-z\d]?\s*\d[a-z]{2})\b"], "normalize": "postcode"},
                "amount": {"normalize": "amount"},
                "when": {"normalize": "date"}
            },
            "intent_slots": {"order_status": ["order_number", "email"]}
        }))
        .expect("valid")
        .expect("present")
    }

    fn value(found: &[Found], name: &str) -> Option<String> {
        found
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.clone())
    }

    #[test]
    fn slots_are_found_normalised_and_placed() {
        let s = demo();
        // Monday 7 December 2026.
        let monday = NaiveDate::from_ymd_opt(2026, 12, 7).expect("date");
        let f = s.find("Where is order #58 213? Mail Me@Example.COM", monday);
        assert_eq!(value(&f, "order_number").as_deref(), Some("58213"));
        assert_eq!(value(&f, "email").as_deref(), Some("me@example.com"));
        let order = f.iter().find(|x| x.name == "order_number").expect("found");
        assert_eq!(
            (order.text.as_str(), order.start, order.end),
            ("58 213", 16, 22)
        );
        // Characters, not bytes: the accent before it counts once.
        let f = s.find("café order 12345", monday);
        let order = f.iter().find(|x| x.name == "order_number").expect("found");
        assert_eq!((order.start, order.end), (11, 16));
        assert!(s.missing("order_status", &f) == ["email"]);
        assert!(s.missing("discount_code", &f).is_empty());
        let f = s.find("code summer20 to sw1a1aa, £12,5 next tuesday", monday);
        assert_eq!(value(&f, "code").as_deref(), Some("SUMMER20"));
        assert_eq!(value(&f, "postcode").as_deref(), Some("SW1A 1AA"));
        assert_eq!(value(&f, "amount").as_deref(), Some("12.50 GBP"));
        assert_eq!(value(&f, "when").as_deref(), Some("2026-12-08"));
        for (text, want) in [
            ("today", "2026-12-07"),
            ("tomorrow please", "2026-12-08"),
            ("in 10 days", "2026-12-17"),
            ("on monday", "2026-12-14"),
            ("last friday", "2026-12-04"),
            ("2027-01-02", "2027-01-02"),
            ("24/12/2026", "2026-12-24"),
            ("the 24th of December", "2026-12-24"),
            ("Jan 3rd, 2027", "2027-01-03"),
        ] {
            assert_eq!(
                value(&s.find(text, monday), "when").as_deref(),
                Some(want),
                "{text}"
            );
        }
        assert_eq!(
            value(&s.find("31/02/2026", monday), "when"),
            None,
            "no such day"
        );
        assert_eq!(
            value(&s.find("30 euros", monday), "amount").as_deref(),
            Some("30.00 EUR")
        );
        // A date slot with a pattern of its own: the built-in reading of what it found.
        let own = slots(serde_json::json!({"slots": {"due": {"patterns": [r"due (?P<value>\w+)"], "normalize": "date"}}}))
            .expect("valid")
            .expect("present");
        assert_eq!(
            value(&own.find("it is due tomorrow", monday), "due").as_deref(),
            Some("2026-12-08")
        );
    }

    #[test]
    fn bad_slots_are_refused_naming_the_slot() {
        for (doc, says) in [
            (
                serde_json::json!({"slots": {"order_number": {"patterns": ["(unclosed"], "normalize": "digits"}}}),
                "slots.order_number.patterns[0]",
            ),
            (
                serde_json::json!({"slots": {"sku": {"normalize": "upper"}}}),
                "slots.sku.patterns: give at least one",
            ),
            (
                serde_json::json!({"slots": {"x": {"normalize": "roman"}}}),
                "slots: unknown variant",
            ),
            (
                serde_json::json!({"slots": {"email": {"normalize": "email"}}, "intent_slots": {"refund": ["email"]}}),
                "intent_slots.refund: not one of the labels",
            ),
            (
                serde_json::json!({"slots": {"email": {"normalize": "email"}}, "intent_slots": {"order_status": ["phone"]}}),
                "intent_slots.order_status: 'phone'",
            ),
            (
                serde_json::json!({"intent_slots": {"order_status": ["email"]}}),
                "intent_slots: name slots",
            ),
            (
                serde_json::json!({"slots": {"a b": {"normalize": "email"}}}),
                "slots.a b",
            ),
        ] {
            let err = slots(doc).expect_err(says).to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
        assert!(slots(serde_json::json!({})).expect("none").is_none());
    }
}
