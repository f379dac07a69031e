//! V2 tensor contents, both ways: `raw_input_contents` (row-major little-endian bytes;
//! BYTES elements each prefixed by a 4-byte little-endian length) and typed `contents`.
//! Every length is checked before anything is allocated from it.

use mercator_proto::inference::InferTensorContents;
use mercator_runtime::{DType, TensorData};

fn le_chunks<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// Decodes raw little-endian contents holding `count` elements.
pub fn decode_raw(dtype: DType, bytes: &[u8], count: usize) -> Result<TensorData, String> {
    let Some(size) = dtype.size_bytes() else {
        return decode_bytes_elements(bytes, count).map(TensorData::Bytes);
    };
    let expected = count.checked_mul(size).ok_or("shape is too large")?;
    if bytes.len() != expected {
        return Err(format!(
            "raw contents hold {} bytes, but {count} {dtype} elements need {expected}",
            bytes.len()
        ));
    }
    Ok(match dtype {
        DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DType::U8 => TensorData::U8(bytes.to_vec()),
        DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U16 => TensorData::U16(le_chunks(bytes, u16::from_le_bytes)),
        DType::I16 => TensorData::I16(le_chunks(bytes, i16::from_le_bytes)),
        DType::F16 => TensorData::F16(le_chunks(bytes, u16::from_le_bytes)),
        DType::BF16 => TensorData::BF16(le_chunks(bytes, u16::from_le_bytes)),
        DType::U32 => TensorData::U32(le_chunks(bytes, u32::from_le_bytes)),
        DType::I32 => TensorData::I32(le_chunks(bytes, i32::from_le_bytes)),
        DType::F32 => TensorData::F32(le_chunks(bytes, f32::from_le_bytes)),
        DType::U64 => TensorData::U64(le_chunks(bytes, u64::from_le_bytes)),
        DType::I64 => TensorData::I64(le_chunks(bytes, i64::from_le_bytes)),
        DType::F64 => TensorData::F64(le_chunks(bytes, f64::from_le_bytes)),
        DType::Bytes => return Err("unreachable: BYTES has no fixed size".into()),
    })
}

/// Splits raw BYTES contents: each element is a 4-byte little-endian length and then
/// that many bytes. The element count must match the shape exactly.
pub fn decode_bytes_elements(bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    let mut rest = bytes;
    while !rest.is_empty() {
        if out.len() == count {
            return Err(format!(
                "raw BYTES contents hold more than the {count} elements the shape gives"
            ));
        }
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| {
            format!(
                "raw BYTES element {} has a truncated 4-byte length prefix",
                out.len()
            )
        })?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(format!(
                "raw BYTES element {} claims {len} bytes but only {} remain",
                out.len(),
                tail.len()
            ));
        }
        let (element, tail) = tail.split_at(len);
        out.push(element.to_vec());
        rest = tail;
    }
    if out.len() != count {
        return Err(format!(
            "raw BYTES contents hold {} elements, the shape gives {count}",
            out.len()
        ));
    }
    Ok(out)
}

/// Decodes typed contents holding `count` elements of `dtype`; any other field that
/// holds values is an error, as is a value out of the type's range.
pub fn decode_contents(
    dtype: DType,
    c: InferTensorContents,
    count: usize,
) -> Result<TensorData, String> {
    let InferTensorContents {
        bool_contents,
        int_contents,
        int64_contents,
        uint_contents,
        uint64_contents,
        fp32_contents,
        fp64_contents,
        bytes_contents,
    } = c;
    let lens = [
        ("bool_contents", bool_contents.len()),
        ("int_contents", int_contents.len()),
        ("int64_contents", int64_contents.len()),
        ("uint_contents", uint_contents.len()),
        ("uint64_contents", uint64_contents.len()),
        ("fp32_contents", fp32_contents.len()),
        ("fp64_contents", fp64_contents.len()),
        ("bytes_contents", bytes_contents.len()),
    ];
    let field = match dtype {
        DType::Bool => "bool_contents",
        DType::I8 | DType::I16 | DType::I32 => "int_contents",
        DType::I64 => "int64_contents",
        DType::U8 | DType::U16 | DType::U32 => "uint_contents",
        DType::U64 => "uint64_contents",
        DType::F32 => "fp32_contents",
        DType::F64 => "fp64_contents",
        DType::Bytes => "bytes_contents",
        DType::F16 | DType::BF16 => {
            return Err(format!(
                "{dtype} has no typed contents field; send raw_input_contents"
            ));
        }
    };
    if let Some((other, _)) = lens.iter().find(|(name, len)| *name != field && *len > 0) {
        return Err(format!(
            "{dtype} data belongs in contents.{field}, but contents.{other} holds values"
        ));
    }
    let given = lens
        .iter()
        .find(|(name, _)| *name == field)
        .map_or(0, |(_, l)| *l);
    if given != count {
        return Err(format!(
            "contents.{field} holds {given} elements, the shape gives {count}"
        ));
    }
    fn narrow<S: Copy + std::fmt::Display, T: TryFrom<S>>(
        v: Vec<S>,
        dtype: DType,
    ) -> Result<Vec<T>, String> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| {
                T::try_from(x).map_err(|_| format!("element {i} ({x}) is out of range for {dtype}"))
            })
            .collect()
    }
    Ok(match dtype {
        DType::Bool => TensorData::Bool(bool_contents),
        DType::I8 => TensorData::I8(narrow(int_contents, dtype)?),
        DType::I16 => TensorData::I16(narrow(int_contents, dtype)?),
        DType::I32 => TensorData::I32(int_contents),
        DType::I64 => TensorData::I64(int64_contents),
        DType::U8 => TensorData::U8(narrow(uint_contents, dtype)?),
        DType::U16 => TensorData::U16(narrow(uint_contents, dtype)?),
        DType::U32 => TensorData::U32(uint_contents),
        DType::U64 => TensorData::U64(uint64_contents),
        DType::F32 => TensorData::F32(fp32_contents),
        DType::F64 => TensorData::F64(fp64_contents),
        DType::Bytes => TensorData::Bytes(bytes_contents),
        DType::F16 | DType::BF16 => return Err(format!("{dtype} has no typed contents field")),
    })
}

/// Encodes a tensor's elements as raw little-endian bytes (BYTES length-prefixed).
pub fn encode_raw(data: &TensorData) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * N);
        for &x in v {
            out.extend_from_slice(&f(x));
        }
        out
    }
    match data {
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::U16(v) | TensorData::F16(v) | TensorData::BF16(v) => le(v, u16::to_le_bytes),
        TensorData::I16(v) => le(v, i16::to_le_bytes),
        TensorData::U32(v) => le(v, u32::to_le_bytes),
        TensorData::I32(v) => le(v, i32::to_le_bytes),
        TensorData::F32(v) => le(v, f32::to_le_bytes),
        TensorData::U64(v) => le(v, u64::to_le_bytes),
        TensorData::I64(v) => le(v, i64::to_le_bytes),
        TensorData::F64(v) => le(v, f64::to_le_bytes),
        TensorData::Bytes(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|e| e.len() + 4).sum());
            for e in v {
                out.extend_from_slice(&(e.len() as u32).to_le_bytes());
                out.extend_from_slice(e);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trips_every_datatype() {
        let samples = [
            TensorData::Bool(vec![true, false]),
            TensorData::U8(vec![0, 255]),
            TensorData::I8(vec![-128, 127]),
            TensorData::U16(vec![1, 65535]),
            TensorData::I16(vec![-32768, 7]),
            TensorData::U32(vec![u32::MAX, 3]),
            TensorData::I32(vec![i32::MIN, 9]),
            TensorData::U64(vec![u64::MAX, 0]),
            TensorData::I64(vec![i64::MIN, 1]),
            TensorData::F16(vec![0x3c00, 0xc000]),
            TensorData::BF16(vec![0x3f80, 0x0000]),
            TensorData::F32(vec![1.5, -0.25]),
            TensorData::F64(vec![1e300, -2.5]),
            TensorData::Bytes(vec![b"hello".to_vec(), vec![]]),
        ];
        for data in samples {
            let bytes = encode_raw(&data);
            assert_eq!(
                decode_raw(data.dtype(), &bytes, 2).unwrap(),
                data,
                "{}",
                data.dtype()
            );
        }
    }

    #[test]
    fn raw_lengths_are_checked() {
        let e = decode_raw(DType::F32, &[0; 7], 2).unwrap_err();
        assert!(e.contains("7 bytes") && e.contains("need 8"), "{e}");
        assert!(decode_raw(DType::F64, &[0; 8], usize::MAX).is_err());
    }

    #[test]
    fn bytes_elements_are_bounds_checked() {
        let mut ok = 3u32.to_le_bytes().to_vec();
        ok.extend_from_slice(b"abc");
        assert_eq!(
            decode_bytes_elements(&ok, 1).unwrap(),
            vec![b"abc".to_vec()]
        );
        assert!(
            decode_bytes_elements(&ok, 2)
                .unwrap_err()
                .contains("1 elements")
        );
        assert!(
            decode_bytes_elements(&ok, 0)
                .unwrap_err()
                .contains("more than")
        );
        let mut lying = 1000u32.to_le_bytes().to_vec();
        lying.extend_from_slice(b"abc");
        assert!(
            decode_bytes_elements(&lying, 1)
                .unwrap_err()
                .contains("claims 1000")
        );
        assert!(
            decode_bytes_elements(&[1, 0], 1)
                .unwrap_err()
                .contains("truncated")
        );
        assert!(decode_bytes_elements(&[], 0).unwrap().is_empty());
    }

    #[test]
    fn typed_contents_are_checked() {
        let c = InferTensorContents {
            int_contents: vec![1, 300],
            ..Default::default()
        };
        assert!(
            decode_contents(DType::I8, c.clone(), 2)
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(
            decode_contents(DType::I16, c.clone(), 2).unwrap(),
            TensorData::I16(vec![1, 300])
        );
        assert!(
            decode_contents(DType::I32, c.clone(), 3)
                .unwrap_err()
                .contains("holds 2")
        );
        assert!(
            decode_contents(DType::F32, c, 2)
                .unwrap_err()
                .contains("int_contents")
        );
        assert!(decode_contents(DType::F16, InferTensorContents::default(), 0).is_err());
    }

    proptest::proptest! {
        /// Whatever bytes, datatype and element count a client sends, decoding returns a
        /// tensor or an error, never a panic, and a decoded tensor has exactly `count`
        /// elements.
        #[test]
        fn raw_decoding_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            dtype in proptest::sample::select(DType::ALL.to_vec()),
            count in proptest::prop_oneof![0usize..80, proptest::prelude::Just(usize::MAX)],
        ) {
            if let Ok(data) = decode_raw(dtype, &bytes, count) {
                proptest::prop_assert_eq!(data.len(), count);
                proptest::prop_assert_eq!(data.dtype(), dtype);
            }
        }
    }
}
