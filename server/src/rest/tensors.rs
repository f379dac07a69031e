//! Tensor data in the V2 REST protocol's JSON: a (possibly nested) array of elements in
//! row-major order, each a JSON value of the tensor's datatype — booleans, integers in
//! range, numbers, or strings for BYTES. Read straight from the body's text into the
//! runtime's typed data (which the request then carries as raw contents, so JSON and
//! binary inputs mix), and written back as flat arrays, FP32 printed as FP32 (its shortest
//! form, not a widened double's).
//!
//! Reading never goes through a tree of JSON values (32 bytes and more an element): each
//! element lands in its typed vector as it is read, so memory follows the body (at most 8
//! bytes of data for the 2 or more bytes an element takes in the text), and nothing is
//! reserved from what the shape claims beyond what the text can hold.

use std::fmt;

use mercator_runtime::{DType, TensorData};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use super::nonfinite::Tokens;

/// Nesting deeper than any tensor's rank a client could mean (and than the stack wants).
const MAX_DEPTH: usize = 64;

/// `data` (the JSON text of input `field`'s `data`) as `count` elements of `dtype`.
pub fn from_json(
    dtype: DType,
    data: &str,
    count: usize,
    field: &str,
) -> Result<TensorData, String> {
    // Every element takes at least two bytes of text (a digit and a separator), so no
    // honest body holds more than this many: what the shape claims past it is not reserved.
    let room = count.min(data.len() / 2 + 1);
    let mut flat = Flat {
        data: empty(dtype, room),
        dtype,
        count,
        len: 0,
        field,
        failure: None,
    };
    let mut reader = serde_json::Deserializer::from_str(data);
    let read = Level {
        flat: &mut flat,
        depth: 0,
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end());
    if let Err(e) = read {
        return Err(flat
            .failure
            .take()
            .unwrap_or_else(|| format!("{field}: {e}")));
    }
    if flat.len != count {
        return Err(format!(
            "{field}: holds {} elements, but the shape gives {count}",
            flat.len
        ));
    }
    Ok(flat.data)
}

/// An empty vector of `dtype`'s elements with room for `n`.
fn empty(dtype: DType, n: usize) -> TensorData {
    match dtype {
        DType::Bool => TensorData::Bool(Vec::with_capacity(n)),
        DType::U8 => TensorData::U8(Vec::with_capacity(n)),
        DType::U16 => TensorData::U16(Vec::with_capacity(n)),
        DType::U32 => TensorData::U32(Vec::with_capacity(n)),
        DType::U64 => TensorData::U64(Vec::with_capacity(n)),
        DType::I8 => TensorData::I8(Vec::with_capacity(n)),
        DType::I16 => TensorData::I16(Vec::with_capacity(n)),
        DType::I32 => TensorData::I32(Vec::with_capacity(n)),
        DType::I64 => TensorData::I64(Vec::with_capacity(n)),
        DType::F16 => TensorData::F16(Vec::with_capacity(n)),
        DType::BF16 => TensorData::BF16(Vec::with_capacity(n)),
        DType::F32 => TensorData::F32(Vec::with_capacity(n)),
        DType::F64 => TensorData::F64(Vec::with_capacity(n)),
        DType::Bytes => TensorData::Bytes(Vec::with_capacity(n)),
    }
}

/// One JSON element as the reader met it.
#[derive(Debug)]
enum Scalar<'a> {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(&'a str),
    /// `null`, or anything else that is no element of any datatype.
    Other(&'static str),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::I64(i) => write!(f, "{i}"),
            Scalar::U64(u) => write!(f, "{u}"),
            Scalar::F64(x) => write!(f, "{x}"),
            Scalar::Str(s) => {
                let shown: String = s.chars().take(40).collect();
                write!(f, "{:?}", shown)
            }
            Scalar::Other(what) => f.write_str(what),
        }
    }
}

impl Scalar<'_> {
    fn integer<T: TryFrom<i64> + TryFrom<u64>>(&self) -> Option<T> {
        match *self {
            Scalar::I64(i) => T::try_from(i).ok(),
            Scalar::U64(u) => T::try_from(u).ok(),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match *self {
            Scalar::I64(i) => Some(i as f64),
            Scalar::U64(u) => Some(u as f64),
            Scalar::F64(x) => Some(x),
            // Python's `json` (so tritonclient.http with JSON data) writes these bare;
            // `nonfinite::quote` turns them into these strings before parsing.
            Scalar::Str("NaN") => Some(f64::NAN),
            Scalar::Str("Infinity") => Some(f64::INFINITY),
            Scalar::Str("-Infinity") => Some(f64::NEG_INFINITY),
            _ => None,
        }
    }
}

/// The typed vector being filled, and the first refusal's words.
struct Flat<'f> {
    data: TensorData,
    dtype: DType,
    count: usize,
    len: usize,
    field: &'f str,
    /// Our own message for the error the reader was stopped with.
    failure: Option<String>,
}

impl Flat<'_> {
    /// Appends one element, or says why it cannot be.
    fn push(&mut self, s: Scalar<'_>) -> Result<(), String> {
        if self.len == self.count {
            return Err(format!(
                "{}: holds more than the {} elements the shape gives",
                self.field, self.count
            ));
        }
        let not_a = || {
            format!(
                "{}[{}]: {s} is not a {} value",
                self.field, self.len, self.dtype
            )
        };
        macro_rules! int {
            ($v:expr) => {
                $v.push(s.integer().ok_or_else(not_a)?)
            };
        }
        match &mut self.data {
            TensorData::Bool(v) => match s {
                Scalar::Bool(b) => v.push(b),
                _ => return Err(not_a()),
            },
            TensorData::U8(v) => int!(v),
            TensorData::U16(v) => int!(v),
            TensorData::U32(v) => int!(v),
            TensorData::U64(v) => int!(v),
            TensorData::I8(v) => int!(v),
            TensorData::I16(v) => int!(v),
            TensorData::I32(v) => int!(v),
            TensorData::I64(v) => int!(v),
            TensorData::F16(v) => {
                v.push(half::f16::from_f64(s.number().ok_or_else(not_a)?).to_bits())
            }
            TensorData::BF16(v) => {
                v.push(half::bf16::from_f64(s.number().ok_or_else(not_a)?).to_bits())
            }
            TensorData::F32(v) => v.push(s.number().ok_or_else(not_a)? as f32),
            TensorData::F64(v) => v.push(s.number().ok_or_else(not_a)?),
            TensorData::Bytes(v) => match s {
                Scalar::Str(text) => v.push(text.as_bytes().to_vec()),
                _ => return Err(not_a()),
            },
        }
        self.len += 1;
        Ok(())
    }

    /// Stops the reader with `message` as the answer.
    fn fail<E: de::Error>(&mut self, message: String) -> E {
        let error = E::custom(&message);
        self.failure.get_or_insert(message);
        error
    }
}

/// One level of nesting: an array whose items are arrays (a level down) or elements.
struct Level<'a, 'f> {
    flat: &'a mut Flat<'f>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Level<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Level<'_, '_> {
    fn element<E: de::Error>(self, s: Scalar<'_>) -> Result<(), E> {
        if self.depth == 0 {
            let message = format!("{}: must be an array", self.flat.field);
            return Err(self.flat.fail(message));
        }
        self.flat.push(s).map_err(|m| self.flat.fail(m))
    }
}

impl<'de> Visitor<'de> for Level<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of {} elements", self.flat.dtype)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth >= MAX_DEPTH {
            let message = format!("{}: nested more than {MAX_DEPTH} deep", self.flat.field);
            return Err(self.flat.fail(message));
        }
        while seq
            .next_element_seed(Level {
                flat: &mut *self.flat,
                depth: self.depth + 1,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.element(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.element(Scalar::I64(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.element(Scalar::U64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.element(Scalar::F64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.element(Scalar::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.element(Scalar::Other("null"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        self.element(Scalar::Other("an object"))
    }
}

/// Tensor data written as a flat JSON array. BYTES elements must be UTF-8 (JSON has no
/// bytes): [`check_utf8`] first. Non-finite floats go through `tokens`, to be written as
/// Python's `json` writes them (`NaN`, `Infinity`, `-Infinity`) once serialized.
pub struct JsonData<'a> {
    /// The data.
    pub data: &'a TensorData,
    /// Where non-finite floats are noted.
    pub tokens: &'a Tokens,
}

/// A float as JSON: itself, or a sentinel [`Tokens::restore`] turns into its token.
enum Float<'t, T> {
    Finite(T),
    Not(&'t Tokens, f64),
}

impl<T: Serialize> Serialize for Float<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Float::Finite(x) => x.serialize(serializer),
            Float::Not(tokens, x) => serializer.serialize_str(&tokens.sentinel(*x)),
        }
    }
}

fn float<T: Into<f64> + Copy>(tokens: &Tokens, x: T) -> Float<'_, T> {
    let wide: f64 = x.into();
    if wide.is_finite() {
        Float::Finite(x)
    } else {
        Float::Not(tokens, wide)
    }
}

/// Whether every BYTES element is text; other datatypes always are writable.
pub fn check_utf8(data: &TensorData) -> Result<(), usize> {
    match data {
        TensorData::Bytes(elements) => match elements
            .iter()
            .position(|e| std::str::from_utf8(e).is_err())
        {
            Some(i) => Err(i),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn all<S: Serializer, T: Serialize>(
            s: S,
            v: impl ExactSizeIterator<Item = T>,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(&x)?;
            }
            seq.end()
        }
        let t = self.tokens;
        match self.data {
            TensorData::Bool(v) => all(serializer, v.iter()),
            TensorData::U8(v) => all(serializer, v.iter()),
            TensorData::U16(v) => all(serializer, v.iter()),
            TensorData::U32(v) => all(serializer, v.iter()),
            TensorData::U64(v) => all(serializer, v.iter()),
            TensorData::I8(v) => all(serializer, v.iter()),
            TensorData::I16(v) => all(serializer, v.iter()),
            TensorData::I32(v) => all(serializer, v.iter()),
            TensorData::I64(v) => all(serializer, v.iter()),
            TensorData::F16(v) => all(
                serializer,
                v.iter()
                    .map(|b| float(t, half::f16::from_bits(*b).to_f32())),
            ),
            TensorData::BF16(v) => all(
                serializer,
                v.iter()
                    .map(|b| float(t, half::bf16::from_bits(*b).to_f32())),
            ),
            TensorData::F32(v) => all(serializer, v.iter().map(|x| float(t, *x))),
            TensorData::F64(v) => all(serializer, v.iter().map(|x| float(t, *x))),
            TensorData::Bytes(v) => all(serializer, v.iter().map(|e| String::from_utf8_lossy(e))),
        }
    }
}
