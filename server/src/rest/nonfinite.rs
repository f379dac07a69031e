//! NaN and ±Infinity in REST JSON, as Python's `json` writes them: bare `NaN`, `Infinity`
//! and `-Infinity`, which are not JSON. tritonclient.http with JSON data (and anything
//! built on Python's `json`) sends a missing feature that way, and XGBoost models take NaN
//! for missing, so a request body may hold them ([`quote`] makes them strings the tensor
//! reader takes for float datatypes) and an answer writes them back the same way
//! ([`Tokens`]) rather than as `null`.

use std::borrow::Cow;
use std::cell::OnceCell;

/// The tokens Python's `json` writes for non-finite floats, longest first.
const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];

/// `text` with every bare `NaN`, `Infinity` and `-Infinity` outside strings quoted
/// (`"NaN"`), so that a JSON parser takes it; borrowed as it is when there is none (the
/// usual case: one pass, no copy).
pub fn quote(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    'scan: while i < text.len() {
        let b = text[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'N' || b == b'I' || b == b'-' {
            let before = i.checked_sub(1).map(|p| text[p]);
            for token in TOKENS {
                let after = text.get(i + token.len()).copied();
                if text[i..].starts_with(token) && opens(before) && closes(after) {
                    let out = out.get_or_insert_with(|| {
                        let mut v = Vec::with_capacity(text.len() + 16);
                        v.extend_from_slice(&text[..i]);
                        v
                    });
                    out.push(b'"');
                    out.extend_from_slice(token);
                    out.push(b'"');
                    i += token.len();
                    continue 'scan;
                }
            }
        }
        if let Some(out) = &mut out {
            out.push(b);
        }
        i += 1;
    }
    match out {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(text),
    }
}

/// Whether a value may start after `b` (the byte before it).
fn opens(b: Option<u8>) -> bool {
    matches!(
        b,
        None | Some(b'[' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r')
    )
}

/// Whether a value may end before `b` (the byte after it).
fn closes(b: Option<u8>) -> bool {
    matches!(
        b,
        None | Some(b']' | b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
    )
}

/// Non-finite floats in an answer: written as sentinel strings while serializing (serde
/// would write `null`), then restored to bare tokens. The sentinel carries a random nonce,
/// so no text output can be mistaken for one; it is made only when an answer holds a
/// non-finite float, so the usual answer costs nothing.
#[derive(Debug, Default)]
pub struct Tokens {
    prefix: OnceCell<String>,
}

impl Tokens {
    fn prefix(&self) -> &str {
        self.prefix
            .get_or_init(|| format!("mercator-nonfinite-{:016x}-", fastrand::u64(..)))
    }

    /// The string standing for a non-finite `x` until [`Tokens::restore`].
    pub fn sentinel(&self, x: f64) -> String {
        let name = if x.is_nan() {
            "NaN"
        } else if x > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        format!("{}{name}", self.prefix())
    }

    /// `json` with each quoted sentinel replaced by its bare token.
    pub fn restore(&self, json: Vec<u8>) -> Vec<u8> {
        let Some(prefix) = self.prefix.get() else {
            return json;
        };
        let quoted = format!("\"{prefix}");
        let mut out = Vec::with_capacity(json.len());
        let mut rest = json.as_slice();
        while let Some(at) = find(rest, quoted.as_bytes()) {
            out.extend_from_slice(&rest[..at]);
            let after = &rest[at + quoted.len()..];
            let token = TOKENS
                .iter()
                .find(|t| after.starts_with(t) && after.get(t.len()) == Some(&b'"'));
            match token {
                Some(token) => {
                    out.extend_from_slice(token);
                    rest = &after[token.len() + 1..];
                }
                None => {
                    out.extend_from_slice(quoted.as_bytes());
                    rest = after;
                }
            }
        }
        out.extend_from_slice(rest);
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_tokens_are_quoted_outside_strings_only() {
        let body = br#"{"data": [NaN, 1.5, -Infinity,Infinity], "s": "NaN, Infinity", "n": -1}"#;
        let quoted = quote(body);
        assert_eq!(
            std::str::from_utf8(&quoted).expect("utf-8"),
            r#"{"data": ["NaN", 1.5, "-Infinity","Infinity"], "s": "NaN, Infinity", "n": -1}"#
        );
        // No token: the body itself, not a copy.
        let plain = br#"{"data": [1, 2], "s": "a \"NaN\" b", "k": "NaNa"}"#;
        assert!(matches!(quote(plain), Cow::Borrowed(_)));
        // Inside a word or a string, left alone.
        assert!(matches!(quote(br#"["xNaN", "NaNx"]"#), Cow::Borrowed(_)));
    }

    #[test]
    fn sentinels_become_bare_tokens_again() {
        let tokens = Tokens::default();
        let values = [
            tokens.sentinel(f64::NAN),
            tokens.sentinel(f64::NEG_INFINITY),
        ];
        let json = serde_json::to_vec(&serde_json::json!({"data": [values[0], 1.5, values[1]],
            "text": "mercator-nonfinite-0000000000000000-NaN"}))
        .expect("json");
        let restored = String::from_utf8(tokens.restore(json)).expect("utf-8");
        assert_eq!(
            restored,
            r#"{"data":[NaN,1.5,-Infinity],"text":"mercator-nonfinite-0000000000000000-NaN"}"#
        );
    }
}
