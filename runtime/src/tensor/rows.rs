//! Stacking tensors along their first dimension and splitting them back: how requests
//! from different callers share one model execution (the server's dynamic batcher).

use super::{Tensor, TensorData};
use crate::{Result, RuntimeError};

/// Applies `$body` to the vector of any variant and wraps the result in the same variant.
macro_rules! map_same {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => TensorData::Bool($body),
            TensorData::U8($v) => TensorData::U8($body),
            TensorData::U16($v) => TensorData::U16($body),
            TensorData::U32($v) => TensorData::U32($body),
            TensorData::U64($v) => TensorData::U64($body),
            TensorData::I8($v) => TensorData::I8($body),
            TensorData::I16($v) => TensorData::I16($body),
            TensorData::I32($v) => TensorData::I32($body),
            TensorData::I64($v) => TensorData::I64($body),
            TensorData::F16($v) => TensorData::F16($body),
            TensorData::BF16($v) => TensorData::BF16($body),
            TensorData::F32($v) => TensorData::F32($body),
            TensorData::F64($v) => TensorData::F64($body),
            TensorData::Bytes($v) => TensorData::Bytes($body),
        }
    };
}

/// Appends `src` to `dst` when both hold the same type; false otherwise.
fn extend(dst: &mut TensorData, src: &TensorData) -> bool {
    macro_rules! pairs {
        ($($var:ident),*) => {
            match (dst, src) {
                $((TensorData::$var(d), TensorData::$var(s)) => d.extend_from_slice(s),)*
                _ => return false,
            }
        };
    }
    pairs!(
        Bool, U8, U16, U32, U64, I8, I16, I32, I64, F16, BF16, F32, F64, Bytes
    );
    true
}

impl Tensor {
    /// Rows: the first dimension (a scalar counts as one).
    pub fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Stacks `parts` along their first dimension. They must share the type and every
    /// other dimension.
    pub fn concat_rows(parts: &[&Tensor]) -> Result<Tensor> {
        let Some(first) = parts.first() else {
            return Err(RuntimeError::input("", "nothing to stack"));
        };
        let inner = first.shape.get(1..).unwrap_or_default();
        let total: usize = parts.iter().map(|t| t.data.len()).sum();
        let mut data = map_same!(&first.data, v => {
            let mut out = Vec::with_capacity(total);
            out.extend_from_slice(v);
            out
        });
        let mut rows = first.rows();
        for part in &parts[1..] {
            if part.shape.get(1..).unwrap_or_default() != inner || !extend(&mut data, &part.data) {
                return Err(RuntimeError::input(
                    "",
                    format!(
                        "cannot stack a {} {:?} tensor on a {} {:?} one",
                        part.dtype(),
                        part.shape,
                        first.dtype(),
                        first.shape
                    ),
                ));
            }
            rows += part.rows();
        }
        let mut shape = first.shape.clone();
        if let Some(r) = shape.first_mut() {
            *r = rows;
        }
        Tensor::new(shape, data)
    }

    /// Splits the tensor along its first dimension into pieces of `rows[i]` rows, in
    /// order; the pieces must add up to its rows.
    pub fn split_rows(&self, rows: &[usize]) -> Result<Vec<Tensor>> {
        let total: usize = rows.iter().sum();
        if self.shape.is_empty() || total != self.rows() {
            return Err(RuntimeError::input(
                "",
                format!(
                    "an output of shape {:?} cannot be split into {total} rows",
                    self.shape
                ),
            ));
        }
        let width = self.data.len().checked_div(total).unwrap_or(0);
        let mut start = 0;
        rows.iter()
            .map(|&n| {
                let range = start * width..(start + n) * width;
                start += n;
                let mut shape = self.shape.clone();
                shape[0] = n;
                Tensor::new(shape, map_same!(&self.data, v => v[range.clone()].to_vec()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacking_and_splitting_give_back_the_parts() {
        let a = Tensor::new(vec![1, 2], TensorData::F32(vec![1.0, 2.0])).expect("a");
        let b = Tensor::new(vec![2, 2], TensorData::F32(vec![3.0, 4.0, 5.0, 6.0])).expect("b");
        let ab = Tensor::concat_rows(&[&a, &b]).expect("stack");
        assert_eq!(ab.shape, [3, 2]);
        assert_eq!(ab.split_rows(&[1, 2]).expect("split"), [a, b]);
        let t = Tensor::new(vec![1], TensorData::Bytes(vec![b"hi".to_vec()])).expect("t");
        let u = Tensor::new(
            vec![2],
            TensorData::Bytes(vec![b"a".to_vec(), b"b".to_vec()]),
        )
        .expect("u");
        let tu = Tensor::concat_rows(&[&t, &u]).expect("stack bytes");
        assert_eq!(tu.split_rows(&[1, 2]).expect("split"), [t, u]);
    }

    #[test]
    fn mismatched_parts_are_refused() {
        let a = Tensor::new(vec![1, 2], TensorData::F32(vec![1.0, 2.0])).expect("a");
        let wide = Tensor::new(vec![1, 3], TensorData::F32(vec![1.0; 3])).expect("wide");
        let ints = Tensor::new(vec![1, 2], TensorData::I64(vec![1, 2])).expect("ints");
        assert!(Tensor::concat_rows(&[&a, &wide]).is_err());
        assert!(Tensor::concat_rows(&[&a, &ints]).is_err());
        assert!(a.split_rows(&[2]).is_err());
    }
}
