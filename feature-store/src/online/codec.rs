//! Binary encoding of feature values, shared by the write-ahead log and the in-memory
//! rows: a tag byte, then the value little-endian (strings and lists length-prefixed).
//! Every read is bounds-checked: bytes from disk are never trusted.

use crate::value::Value;
use crate::{FeatureError, Result};

const F32: u8 = 1;
const F64: u8 = 2;
const I64: u8 = 3;
const STR: u8 = 4;
const BOOL: u8 = 5;
const F32_LIST: u8 = 6;
/// A field written as null.
const NULL: u8 = 0;

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn put_value(out: &mut Vec<u8>, v: Option<&Value>) {
    match v {
        None => out.push(NULL),
        Some(Value::Float32(x)) => {
            out.push(F32);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Some(Value::Float64(x)) => {
            out.push(F64);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Some(Value::Int64(x)) => {
            out.push(I64);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Some(Value::String(s)) => {
            out.push(STR);
            put_str(out, s);
        }
        Some(Value::Bool(b)) => {
            out.push(BOOL);
            out.push(u8::from(*b));
        }
        Some(Value::Float32List(v)) => {
            out.push(F32_LIST);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            for x in v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
}

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(FeatureError::Corrupt(format!(
                "record ends {} bytes early",
                n - self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| FeatureError::Corrupt("string is not UTF-8".into()))
    }

    pub(crate) fn value(&mut self) -> Result<Option<Value>> {
        Ok(Some(match self.u8()? {
            NULL => return Ok(None),
            F32 => Value::Float32(f32::from_le_bytes(self.array()?)),
            F64 => Value::Float64(f64::from_le_bytes(self.array()?)),
            I64 => Value::Int64(i64::from_le_bytes(self.array()?)),
            STR => Value::String(self.str()?.to_string()),
            BOOL => Value::Bool(self.u8()? != 0),
            F32_LIST => {
                let n = self.u32()? as usize;
                let bytes = self.take(
                    n.checked_mul(4)
                        .ok_or_else(|| FeatureError::Corrupt("list too long".into()))?,
                )?;
                Value::Float32List(
                    bytes
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect(),
                )
            }
            tag => return Err(FeatureError::Corrupt(format!("unknown value tag {tag}"))),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_truncation_is_an_error() {
        let values = [
            None,
            Some(Value::Float32(1.5)),
            Some(Value::Float64(-2.25)),
            Some(Value::Int64(i64::MIN)),
            Some(Value::String("café".into())),
            Some(Value::Bool(true)),
            Some(Value::Float32List(vec![1.0, 2.0, 3.5])),
        ];
        let mut buf = Vec::new();
        for v in &values {
            put_value(&mut buf, v.as_ref());
        }
        let mut r = Reader::new(&buf);
        for v in &values {
            assert_eq!(&r.value().unwrap(), v);
        }
        assert!(r.is_empty());
        for cut in 0..buf.len() {
            let mut r = Reader::new(&buf[..cut]);
            let decoded: Result<Vec<_>> = (0..values.len()).map(|_| r.value()).collect();
            assert!(decoded.is_err(), "a cut at {cut} must not decode");
        }
        assert!(Reader::new(&[9]).value().is_err());
    }
}
