//! Typed tensors and the signatures models declare for them.

use serde::{Deserialize, Serialize};

use crate::{Result, RuntimeError};

mod rows;
mod spec;

pub(crate) use spec::output_spec;
pub use spec::{TensorSpec, batch_rows, concat_f32};

/// Element type of a tensor, named as the V2 protocol names it (`FP32`, `INT64`, `BYTES`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// One byte per element, 0 or 1.
    #[serde(rename = "BOOL")]
    Bool,
    /// Unsigned 8-bit integer.
    #[serde(rename = "UINT8")]
    U8,
    /// Unsigned 16-bit integer.
    #[serde(rename = "UINT16")]
    U16,
    /// Unsigned 32-bit integer.
    #[serde(rename = "UINT32")]
    U32,
    /// Unsigned 64-bit integer.
    #[serde(rename = "UINT64")]
    U64,
    /// Signed 8-bit integer.
    #[serde(rename = "INT8")]
    I8,
    /// Signed 16-bit integer.
    #[serde(rename = "INT16")]
    I16,
    /// Signed 32-bit integer.
    #[serde(rename = "INT32")]
    I32,
    /// Signed 64-bit integer.
    #[serde(rename = "INT64")]
    I64,
    /// IEEE half precision.
    #[serde(rename = "FP16")]
    F16,
    /// bfloat16.
    #[serde(rename = "BF16")]
    BF16,
    /// IEEE single precision.
    #[serde(rename = "FP32")]
    F32,
    /// IEEE double precision.
    #[serde(rename = "FP64")]
    F64,
    /// Variable-length byte strings.
    #[serde(rename = "BYTES")]
    Bytes,
}

impl DType {
    /// Every datatype, for parsing and tests.
    pub const ALL: [DType; 14] = [
        DType::Bool,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::Bytes,
    ];

    /// The V2 protocol name, e.g. `FP32`.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::Bool => "BOOL",
            DType::U8 => "UINT8",
            DType::U16 => "UINT16",
            DType::U32 => "UINT32",
            DType::U64 => "UINT64",
            DType::I8 => "INT8",
            DType::I16 => "INT16",
            DType::I32 => "INT32",
            DType::I64 => "INT64",
            DType::F16 => "FP16",
            DType::BF16 => "BF16",
            DType::F32 => "FP32",
            DType::F64 => "FP64",
            DType::Bytes => "BYTES",
        }
    }

    /// Parses a V2 protocol name; `None` for anything else.
    pub fn parse(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// Size of one element in the raw little-endian encoding; `None` for BYTES, whose
    /// elements carry their own length.
    pub fn size_bytes(self) -> Option<usize> {
        Some(match self {
            DType::Bool | DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
            DType::Bytes => return None,
        })
    }

    /// Whether the type holds numbers (everything but BYTES).
    pub fn is_numeric(self) -> bool {
        self != DType::Bytes
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tensor's elements, row-major, in their own type. F16 and BF16 keep their raw bits.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// BOOL elements.
    Bool(Vec<bool>),
    /// UINT8 elements.
    U8(Vec<u8>),
    /// UINT16 elements.
    U16(Vec<u16>),
    /// UINT32 elements.
    U32(Vec<u32>),
    /// UINT64 elements.
    U64(Vec<u64>),
    /// INT8 elements.
    I8(Vec<i8>),
    /// INT16 elements.
    I16(Vec<i16>),
    /// INT32 elements.
    I32(Vec<i32>),
    /// INT64 elements.
    I64(Vec<i64>),
    /// FP16 elements as raw bits.
    F16(Vec<u16>),
    /// BF16 elements as raw bits.
    BF16(Vec<u16>),
    /// FP32 elements.
    F32(Vec<f32>),
    /// FP64 elements.
    F64(Vec<f64>),
    /// BYTES elements.
    Bytes(Vec<Vec<u8>>),
}

/// Applies `$body` to the vector inside any numeric variant, binding it to `$v`.
macro_rules! numeric_dispatch {
    ($data:expr, $v:ident => $body:expr, bytes => $bytes:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::F16($v) => $body,
            TensorData::BF16($v) => $body,
            TensorData::F32($v) => $body,
            TensorData::F64($v) => $body,
            TensorData::Bytes(_) => $bytes,
        }
    };
}

impl TensorData {
    /// The datatype of the elements.
    pub fn dtype(&self) -> DType {
        match self {
            TensorData::Bool(_) => DType::Bool,
            TensorData::U8(_) => DType::U8,
            TensorData::U16(_) => DType::U16,
            TensorData::U32(_) => DType::U32,
            TensorData::U64(_) => DType::U64,
            TensorData::I8(_) => DType::I8,
            TensorData::I16(_) => DType::I16,
            TensorData::I32(_) => DType::I32,
            TensorData::I64(_) => DType::I64,
            TensorData::F16(_) => DType::F16,
            TensorData::BF16(_) => DType::BF16,
            TensorData::F32(_) => DType::F32,
            TensorData::F64(_) => DType::F64,
            TensorData::Bytes(_) => DType::Bytes,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        numeric_dispatch!(self, v => v.len(), bytes => match self {
            TensorData::Bytes(v) => v.len(),
            _ => 0,
        })
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f64 (booleans as 0 and 1, 64-bit integers rounded); empty for
    /// BYTES. For comparing answers, not for the hot path.
    pub fn to_f64(&self) -> Vec<f64> {
        (0..self.len()).filter_map(|i| self.get_f64(i)).collect()
    }

    /// Element `i` as f64 (`None` past the end, and for BYTES).
    pub fn get_f64(&self, i: usize) -> Option<f64> {
        Some(match self {
            TensorData::Bool(v) => f64::from(u8::from(*v.get(i)?)),
            TensorData::U8(v) => f64::from(*v.get(i)?),
            TensorData::U16(v) => f64::from(*v.get(i)?),
            TensorData::U32(v) => f64::from(*v.get(i)?),
            TensorData::U64(v) => *v.get(i)? as f64,
            TensorData::I8(v) => f64::from(*v.get(i)?),
            TensorData::I16(v) => f64::from(*v.get(i)?),
            TensorData::I32(v) => f64::from(*v.get(i)?),
            TensorData::I64(v) => *v.get(i)? as f64,
            TensorData::F16(v) => f64::from(half::f16::from_bits(*v.get(i)?).to_f32()),
            TensorData::BF16(v) => f64::from(half::bf16::from_bits(*v.get(i)?).to_f32()),
            TensorData::F32(v) => f64::from(*v.get(i)?),
            TensorData::F64(v) => *v.get(i)?,
            TensorData::Bytes(_) => return None,
        })
    }

    /// Index of the first NaN element, if the type can hold NaN and one is present.
    pub fn first_nan(&self) -> Option<usize> {
        self.first_where(f32::is_nan, f64::is_nan)
    }

    /// Index of the first NaN or infinite element, if the type can hold them.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.first_where(|x| !x.is_finite(), |x| !x.is_finite())
    }

    fn first_where(&self, f32_is: fn(f32) -> bool, f64_is: fn(f64) -> bool) -> Option<usize> {
        match self {
            TensorData::F32(v) => v.iter().position(|&x| f32_is(x)),
            TensorData::F64(v) => v.iter().position(|&x| f64_is(x)),
            TensorData::F16(v) => v
                .iter()
                .position(|&b| f32_is(half::f16::from_bits(b).to_f32())),
            TensorData::BF16(v) => v
                .iter()
                .position(|&b| f32_is(half::bf16::from_bits(b).to_f32())),
            _ => None,
        }
    }

    /// Copies the elements of a `[rows, width]` tensor into columns
    /// `col..col + width` of a row-major f32 matrix with `stride` columns, converting each
    /// element as XGBoost does (to single precision). Returns `None` for BYTES.
    pub fn copy_into_f32(
        &self,
        width: usize,
        dst: &mut [f32],
        stride: usize,
        col: usize,
    ) -> Option<()> {
        fn scatter<T: Copy>(
            src: &[T],
            width: usize,
            dst: &mut [f32],
            stride: usize,
            col: usize,
            f: impl Fn(T) -> f32,
        ) {
            if width == 0 {
                return;
            }
            for (row, chunk) in src.chunks_exact(width).enumerate() {
                let out = &mut dst[row * stride + col..row * stride + col + width];
                for (o, &x) in out.iter_mut().zip(chunk) {
                    *o = f(x);
                }
            }
        }
        match self {
            TensorData::Bool(v) => {
                scatter(v, width, dst, stride, col, |x| if x { 1.0 } else { 0.0 })
            }
            TensorData::U8(v) => scatter(v, width, dst, stride, col, f32::from),
            TensorData::U16(v) => scatter(v, width, dst, stride, col, f32::from),
            TensorData::U32(v) => scatter(v, width, dst, stride, col, |x| x as f32),
            TensorData::U64(v) => scatter(v, width, dst, stride, col, |x| x as f32),
            TensorData::I8(v) => scatter(v, width, dst, stride, col, f32::from),
            TensorData::I16(v) => scatter(v, width, dst, stride, col, f32::from),
            TensorData::I32(v) => scatter(v, width, dst, stride, col, |x| x as f32),
            TensorData::I64(v) => scatter(v, width, dst, stride, col, |x| x as f32),
            TensorData::F16(v) => scatter(v, width, dst, stride, col, |b| {
                half::f16::from_bits(b).to_f32()
            }),
            TensorData::BF16(v) => scatter(v, width, dst, stride, col, |b| {
                half::bf16::from_bits(b).to_f32()
            }),
            TensorData::F32(v) => scatter(v, width, dst, stride, col, |x| x),
            TensorData::F64(v) => scatter(v, width, dst, stride, col, |x| x as f32),
            TensorData::Bytes(_) => return None,
        }
        Some(())
    }

    /// Converts f32 values to the given float datatype (FP32 or FP64); `None` for others.
    pub fn from_f32(values: Vec<f32>, dtype: DType) -> Option<TensorData> {
        match dtype {
            DType::F32 => Some(TensorData::F32(values)),
            DType::F64 => Some(TensorData::F64(values.into_iter().map(f64::from).collect())),
            DType::F16 => Some(TensorData::F16(
                values
                    .into_iter()
                    .map(|x| half::f16::from_f32(x).to_bits())
                    .collect(),
            )),
            _ => None,
        }
    }
}

/// A tensor: a shape and row-major elements whose count is the product of the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// The elements.
    pub data: TensorData,
}

impl Tensor {
    /// Builds a tensor, checking that the element count matches the shape.
    pub fn new(shape: Vec<usize>, data: TensorData) -> Result<Tensor> {
        let expected = element_count(&shape)
            .ok_or_else(|| RuntimeError::input("", format!("shape {shape:?} is too large")))?;
        if expected != data.len() {
            return Err(RuntimeError::input(
                "",
                format!(
                    "shape {shape:?} needs {expected} elements, got {}",
                    data.len()
                ),
            ));
        }
        Ok(Tensor { shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// A tensor of zeros (empty strings for BYTES), e.g. to warm a model up.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Result<Tensor> {
        let n = element_count(&shape).ok_or_else(|| RuntimeError::input("", "shape too large"))?;
        let data = match dtype {
            DType::Bool => TensorData::Bool(vec![false; n]),
            DType::U8 => TensorData::U8(vec![0; n]),
            DType::U16 => TensorData::U16(vec![0; n]),
            DType::U32 => TensorData::U32(vec![0; n]),
            DType::U64 => TensorData::U64(vec![0; n]),
            DType::I8 => TensorData::I8(vec![0; n]),
            DType::I16 => TensorData::I16(vec![0; n]),
            DType::I32 => TensorData::I32(vec![0; n]),
            DType::I64 => TensorData::I64(vec![0; n]),
            DType::F16 => TensorData::F16(vec![0; n]),
            DType::BF16 => TensorData::BF16(vec![0; n]),
            DType::F32 => TensorData::F32(vec![0.0; n]),
            DType::F64 => TensorData::F64(vec![0.0; n]),
            DType::Bytes => TensorData::Bytes(vec![Vec::new(); n]),
        };
        Tensor::new(shape, data)
    }
}

/// Product of the dimensions, or `None` on overflow.
pub fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(shape: Vec<i64>, allow_nan: bool) -> TensorSpec {
        TensorSpec {
            name: "x".into(),
            datatype: DType::F32,
            shape,
            allow_nan,
        }
    }

    #[test]
    fn dtype_names_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::parse(d.as_str()), Some(d));
        }
        assert_eq!(DType::parse("FLOAT32"), None);
    }

    #[test]
    fn check_rejects_wrong_dtype_rank_dim_and_nan() {
        let t = Tensor::new(
            vec![2, 3],
            TensorData::F32(vec![0.0, 1.0, 2.0, 3.0, f32::NAN, 5.0]),
        )
        .unwrap();
        assert!(spec(vec![-1, 3], true).check(&t).is_ok());
        let e = spec(vec![-1, 4], true).check(&t).unwrap_err().to_string();
        assert!(e.contains("input 'x'") && e.contains("[-1, 4]"), "{e}");
        assert!(spec(vec![-1], true).check(&t).is_err());
        let e = spec(vec![-1, 3], false).check(&t).unwrap_err().to_string();
        assert!(e.contains("element 4 is NaN"), "{e}");
        for inf in [f32::INFINITY, f32::NEG_INFINITY] {
            let t = Tensor::new(vec![1, 3], TensorData::F32(vec![0.0, inf, 1.0])).unwrap();
            let e = spec(vec![-1, 3], false).check(&t).unwrap_err().to_string();
            assert!(e.contains("element 1 is infinite"), "{e}");
            assert!(
                spec(vec![-1, 3], true).check(&t).is_ok(),
                "trees take infinities"
            );
        }
        let t = Tensor::new(vec![1, 2], TensorData::F64(vec![1.0, f64::INFINITY])).unwrap();
        assert!(spec(vec![-1, 2], false).check(&t).is_err());
        let ints = Tensor::new(vec![1, 3], TensorData::I32(vec![1, 2, 3])).unwrap();
        let e = spec(vec![-1, 3], true)
            .check(&ints)
            .unwrap_err()
            .to_string();
        assert!(e.contains("INT32") && e.contains("FP32"), "{e}");
    }

    #[test]
    fn new_checks_element_count() {
        assert!(Tensor::new(vec![2, 2], TensorData::F32(vec![1.0; 3])).is_err());
        assert!(Tensor::new(vec![usize::MAX, 2], TensorData::F32(vec![])).is_err());
    }

    #[test]
    fn copy_into_f32_scatters_columns() {
        let mut dst = vec![0.0f32; 6];
        TensorData::I64(vec![1, 2])
            .copy_into_f32(1, &mut dst, 3, 2)
            .unwrap();
        TensorData::F64(vec![0.5, 0.25, 1.5, 2.5])
            .copy_into_f32(2, &mut dst, 3, 0)
            .unwrap();
        assert_eq!(dst, vec![0.5, 0.25, 1.0, 1.5, 2.5, 2.0]);
    }
}
