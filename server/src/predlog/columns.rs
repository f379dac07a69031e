//! The columns particular to a model: the inputs as the model saw them. A call hands the
//! log what it already holds (the feature rows it read, the tensors it decoded and
//! answered), shared by its instances; the writer spreads them into columns off the
//! request path, so logging costs a call a move or a copy, never a column per row.
//!
//! - A bound feature `view:field` gives three columns: its value as the model saw it
//!   (the default or NaN where none was usable), `view:field:missing` and
//!   `view:field:expired`.
//! - A tensor gives a list column per row, named `input:<name>` or `output:<name>`:
//!   numbers as float64, BYTES as text.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Float64Builder, ListBuilder, StringBuilder,
};
use arrow_schema::{DataType, Field};
use mercator_runtime::{Tensor, TensorData};

/// A bound feature's state in one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeatureState {
    /// A value the model used.
    #[default]
    Present,
    /// No value: the binding's default (or NaN) was used.
    Missing,
    /// A value older than the view's TTL: the default was used.
    Expired,
}

/// What a call holds about its inputs, shared by its instances.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Feature rows read from the store, `names.len()` values per row.
    Features {
        /// The bound features, `view:field`, in the input's order.
        names: Arc<[String]>,
        /// Row-major values as the model saw them.
        values: Vec<f64>,
        /// The state of each value.
        states: Vec<FeatureState>,
    },
    /// A tensor whose first dimension is the row.
    Tensor {
        /// The column's name (`input:<name>`, `output:<name>`).
        column: String,
        /// The tensor.
        tensor: Tensor,
    },
}

/// An instance's place in its call's sources.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The call's sources.
    pub sources: Arc<[Source]>,
    /// The instance's row in each.
    pub row: usize,
}

impl Seen {
    /// Row `row` of `sources`.
    pub fn row(sources: &Arc<[Source]>, row: usize) -> Seen {
        Seen {
            sources: Arc::clone(sources),
            row,
        }
    }
}

/// One column being built, by kind.
enum Built {
    Number(Float64Builder),
    Flag(BooleanBuilder),
    Numbers(ListBuilder<Float64Builder>),
    Texts(ListBuilder<StringBuilder>),
}

impl Built {
    fn data_type(&self) -> DataType {
        let item = |t| DataType::List(Arc::new(Field::new("item", t, true)));
        match self {
            Built::Number(_) => DataType::Float64,
            Built::Flag(_) => DataType::Boolean,
            Built::Numbers(_) => item(DataType::Float64),
            Built::Texts(_) => item(DataType::Utf8),
        }
    }

    fn len(&self) -> usize {
        match self {
            Built::Number(b) => b.len(),
            Built::Flag(b) => b.len(),
            Built::Numbers(b) => b.len(),
            Built::Texts(b) => b.len(),
        }
    }

    fn null(&mut self) {
        match self {
            Built::Number(b) => b.append_null(),
            Built::Flag(b) => b.append_null(),
            Built::Numbers(b) => b.append(false),
            Built::Texts(b) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Built::Number(b) => Arc::new(b.finish()),
            Built::Flag(b) => Arc::new(b.finish()),
            Built::Numbers(b) => Arc::new(b.finish()),
            Built::Texts(b) => Arc::new(b.finish()),
        }
    }
}

/// The model's columns of a file's rows, in order of first appearance.
#[derive(Default)]
pub(super) struct Columns {
    columns: Vec<(String, Built)>,
    rows: usize,
}

impl Columns {
    /// The column `name` of kind `fresh`'s, created (null in earlier rows) on first use.
    /// A name already used by a column of another kind is not written again.
    fn column(&mut self, name: &str, fresh: impl FnOnce() -> Built) -> Option<&mut Built> {
        let at = match self.columns.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                let mut built = fresh();
                for _ in 0..self.rows {
                    built.null();
                }
                self.columns.push((name.to_string(), built));
                self.columns.len() - 1
            }
        };
        let built = &mut self.columns[at].1;
        // Each column takes at most one value per row: a second is a clash of names.
        (built.len() == self.rows).then_some(built)
    }

    /// Adds a row: `seen`'s values (the other columns null).
    pub(super) fn push(&mut self, seen: Option<&Seen>) {
        if let Some(seen) = seen {
            for source in seen.sources.iter() {
                self.push_source(source, seen.row);
            }
        }
        self.rows += 1;
        for (_, built) in &mut self.columns {
            if built.len() < self.rows {
                built.null();
            }
        }
    }

    fn push_source(&mut self, source: &Source, row: usize) {
        match source {
            Source::Features {
                names,
                values,
                states,
            } => {
                let width = names.len();
                let at = row * width;
                let (Some(values), Some(states)) =
                    (values.get(at..at + width), states.get(at..at + width))
                else {
                    return;
                };
                for ((name, &value), &state) in names.iter().zip(values).zip(states) {
                    if let Some(Built::Number(b)) =
                        self.column(name, || Built::Number(Float64Builder::new()))
                    {
                        b.append_value(value);
                    }
                    for (suffix, flag) in [
                        ("missing", state == FeatureState::Missing),
                        ("expired", state == FeatureState::Expired),
                    ] {
                        let column = format!("{name}:{suffix}");
                        if let Some(Built::Flag(b)) =
                            self.column(&column, || Built::Flag(BooleanBuilder::new()))
                        {
                            b.append_value(flag);
                        }
                    }
                }
            }
            Source::Tensor { column, tensor } => push_tensor_row(self, column, tensor, row),
        }
    }

    /// The columns' fields and arrays.
    pub(super) fn finish(mut self) -> Vec<(Field, ArrayRef)> {
        self.columns
            .iter_mut()
            .map(|(name, built)| {
                (
                    Field::new(name.as_str(), built.data_type(), true),
                    built.finish(),
                )
            })
            .collect()
    }
}

/// Row `row` of `tensor` into the list column `column`.
fn push_tensor_row(columns: &mut Columns, column: &str, tensor: &Tensor, row: usize) {
    let rows = tensor.shape.first().copied().unwrap_or(1).max(1);
    let width = tensor.data.len() / rows;
    let (start, end) = (row * width, (row + 1) * width);
    if end > tensor.data.len() {
        return;
    }
    match &tensor.data {
        TensorData::Bytes(elements) => {
            if let Some(Built::Texts(b)) = columns.column(column, || {
                Built::Texts(ListBuilder::new(StringBuilder::new()))
            }) {
                for e in &elements[start..end] {
                    b.values().append_value(String::from_utf8_lossy(e));
                }
                b.append(true);
            }
        }
        data => {
            if let Some(Built::Numbers(b)) = columns.column(column, || {
                Built::Numbers(ListBuilder::new(Float64Builder::new()))
            }) {
                for i in start..end {
                    b.values().append_option(data.get_f64(i));
                }
                b.append(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array};

    #[test]
    fn features_and_tensors_spread_into_columns_with_nulls_where_a_row_has_none() {
        let features: Arc<[Source]> = Arc::from(vec![Source::Features {
            names: Arc::from(vec!["v:a".to_string(), "v:b".to_string()]),
            values: vec![1.0, f64::NAN, 3.0, 4.0],
            states: vec![
                FeatureState::Present,
                FeatureState::Missing,
                FeatureState::Expired,
                FeatureState::Present,
            ],
        }]);
        let tensor: Arc<[Source]> = Arc::from(vec![Source::Tensor {
            column: "input:text".into(),
            tensor: Tensor::new(vec![1], TensorData::Bytes(vec![b"hi".to_vec()])).expect("t"),
        }]);
        let mut columns = Columns::default();
        columns.push(Some(&Seen::row(&features, 1)));
        columns.push(None);
        columns.push(Some(&Seen::row(&tensor, 0)));
        columns.push(Some(&Seen::row(&features, 0)));
        let built = columns.finish();
        let names: Vec<&str> = built.iter().map(|(f, _)| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "v:a",
                "v:a:missing",
                "v:a:expired",
                "v:b",
                "v:b:missing",
                "v:b:expired",
                "input:text"
            ]
        );
        for (_, array) in &built {
            assert_eq!(array.len(), 4);
        }
        let a = built[0]
            .1
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("f64");
        assert_eq!(a.value(0), 3.0);
        assert!(a.is_null(1) && a.is_null(2));
        assert_eq!(a.value(3), 1.0);
        let expired = built[2]
            .1
            .as_any()
            .downcast_ref::<arrow_array::BooleanArray>()
            .expect("bool");
        assert!(expired.value(0) && !expired.value(3));
        let missing_b = built[4]
            .1
            .as_any()
            .downcast_ref::<arrow_array::BooleanArray>()
            .expect("bool");
        assert!(!missing_b.value(0) && missing_b.value(3));
        assert_eq!(built[6].1.null_count(), 3);
    }
}
