//! The columns particular to a model: the inputs as the model saw them. A call hands the
//! log what it already holds (the feature rows it read, the tensors it decoded and
//! answered), shared by its instances; the writer spreads them into columns off the
//! request path, so logging costs a call a move or a copy, never a column per row.
//!
//! - A bound feature `view:field` gives three columns: its value as the model saw it
//!   (the default or NaN where none was usable), `view:field:missing` and
//!   `view:field:expired`.
//! - A tensor gives a list column per row, named `input:<name>` or `output:<name>`:
//!   FP32 as float32 (as the model saw them), other numbers as float64, BYTES as text.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Float32Builder, Float64Builder, ListBuilder, StringBuilder,
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
    /// FP32 tensors, kept as the model saw them (and half the bytes).
    Singles(ListBuilder<Float32Builder>),
    Texts(ListBuilder<StringBuilder>),
}

impl Built {
    fn data_type(&self) -> DataType {
        let item = |t| DataType::List(Arc::new(Field::new("item", t, true)));
        match self {
            Built::Number(_) => DataType::Float64,
            Built::Flag(_) => DataType::Boolean,
            Built::Numbers(_) => item(DataType::Float64),
            Built::Singles(_) => item(DataType::Float32),
            Built::Texts(_) => item(DataType::Utf8),
        }
    }

    fn len(&self) -> usize {
        match self {
            Built::Number(b) => b.len(),
            Built::Flag(b) => b.len(),
            Built::Numbers(b) => b.len(),
            Built::Singles(b) => b.len(),
            Built::Texts(b) => b.len(),
        }
    }

    fn null(&mut self) {
        match self {
            Built::Number(b) => b.append_null(),
            Built::Flag(b) => b.append_null(),
            Built::Numbers(b) => b.append(false),
            Built::Singles(b) => b.append(false),
            Built::Texts(b) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Built::Number(b) => Arc::new(b.finish()),
            Built::Flag(b) => Arc::new(b.finish()),
            Built::Numbers(b) => Arc::new(b.finish()),
            Built::Singles(b) => Arc::new(b.finish()),
            Built::Texts(b) => Arc::new(b.finish()),
        }
    }
}

/// The model's columns of a file's rows, in order of first appearance.
#[derive(Default)]
pub(super) struct Columns {
    columns: Vec<(String, Built)>,
    rows: usize,
    /// The columns of each list of feature names (by its address: a version's rows share
    /// one list), so a row costs no name lookups: `None` where a name was taken by a
    /// column of another kind.
    feature_slots: std::collections::HashMap<usize, Arc<[Option<usize>]>>,
    /// The column of each tensor column name.
    tensor_slots: std::collections::HashMap<String, Arc<[Option<usize>]>>,
}

/// The kind of column a source's value goes to.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Flag,
    Numbers,
    Singles,
    Texts,
}

impl Built {
    fn kind(&self) -> Kind {
        match self {
            Built::Number(_) => Kind::Number,
            Built::Flag(_) => Kind::Flag,
            Built::Numbers(_) => Kind::Numbers,
            Built::Singles(_) => Kind::Singles,
            Built::Texts(_) => Kind::Texts,
        }
    }

    fn of(kind: Kind) -> Built {
        match kind {
            Kind::Number => Built::Number(Float64Builder::new()),
            Kind::Flag => Built::Flag(BooleanBuilder::new()),
            Kind::Numbers => Built::Numbers(ListBuilder::new(Float64Builder::new())),
            Kind::Singles => Built::Singles(ListBuilder::new(Float32Builder::new())),
            Kind::Texts => Built::Texts(ListBuilder::new(StringBuilder::new())),
        }
    }
}

impl Columns {
    /// The index of column `name` of `kind`, created (null in earlier rows) on first
    /// use; `None` when the name is taken by a column of another kind.
    fn index(&mut self, name: String, kind: Kind) -> Option<usize> {
        if let Some(at) = self.columns.iter().position(|(n, _)| *n == name) {
            return (self.columns[at].1.kind() == kind).then_some(at);
        }
        let mut built = Built::of(kind);
        for _ in 0..self.rows {
            built.null();
        }
        self.columns.push((name, built));
        Some(self.columns.len() - 1)
    }

    /// `source`'s columns, in the order its values come.
    fn slots_of(&mut self, source: &Source) -> Arc<[Option<usize>]> {
        match source {
            Source::Features { names, .. } => {
                let key = Arc::as_ptr(names).cast::<u8>() as usize;
                if let Some(slots) = self.feature_slots.get(&key) {
                    return Arc::clone(slots);
                }
                let slots: Arc<[Option<usize>]> = names
                    .iter()
                    .flat_map(|n| {
                        [
                            (n.clone(), Kind::Number),
                            (format!("{n}:missing"), Kind::Flag),
                            (format!("{n}:expired"), Kind::Flag),
                        ]
                    })
                    .map(|(name, kind)| self.index(name, kind))
                    .collect();
                self.feature_slots.insert(key, Arc::clone(&slots));
                slots
            }
            Source::Tensor { column, tensor } => {
                if let Some(slots) = self.tensor_slots.get(column.as_str()) {
                    return Arc::clone(slots);
                }
                let kind = match tensor.data {
                    TensorData::Bytes(_) => Kind::Texts,
                    TensorData::F32(_) => Kind::Singles,
                    _ => Kind::Numbers,
                };
                let slots: Arc<[Option<usize>]> = Arc::from([self.index(column.clone(), kind)]);
                self.tensor_slots.insert(column.clone(), Arc::clone(&slots));
                slots
            }
        }
    }

    /// The column at `slot`, if it has no value in this row yet (a second value would be
    /// a clash of names).
    fn open(&mut self, slot: Option<usize>) -> Option<&mut Built> {
        let rows = self.rows;
        slot.and_then(|at| self.columns.get_mut(at))
            .map(|(_, b)| b)
            .filter(|b| b.len() == rows)
    }

    /// Adds a row: `seen`'s values (the other columns null).
    pub(super) fn push(&mut self, seen: Option<&Seen>) {
        if let Some(seen) = seen {
            for source in seen.sources.iter() {
                let slots = self.slots_of(source);
                self.push_source(source, &slots, seen.row);
            }
        }
        self.rows += 1;
        for (_, built) in &mut self.columns {
            if built.len() < self.rows {
                built.null();
            }
        }
    }

    fn push_source(&mut self, source: &Source, slots: &[Option<usize>], row: usize) {
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
                for ((&value, &state), slots) in values.iter().zip(states).zip(slots.chunks(3)) {
                    if let Some(Built::Number(b)) = self.open(slots[0]) {
                        b.append_value(value);
                    }
                    for (slot, flag) in [
                        (slots[1], state == FeatureState::Missing),
                        (slots[2], state == FeatureState::Expired),
                    ] {
                        if let Some(Built::Flag(b)) = self.open(slot) {
                            b.append_value(flag);
                        }
                    }
                }
            }
            Source::Tensor { tensor, .. } => {
                if let Some(built) = self.open(slots.first().copied().flatten()) {
                    push_tensor_row(built, tensor, row);
                }
            }
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

/// Row `row` of `tensor` into its list column.
fn push_tensor_row(built: &mut Built, tensor: &Tensor, row: usize) {
    let rows = tensor.shape.first().copied().unwrap_or(1).max(1);
    let width = tensor.data.len() / rows;
    let (start, end) = (row * width, (row + 1) * width);
    if end > tensor.data.len() {
        return;
    }
    match (&tensor.data, built) {
        (TensorData::Bytes(elements), Built::Texts(b)) => {
            for e in &elements[start..end] {
                b.values().append_value(String::from_utf8_lossy(e));
            }
            b.append(true);
        }
        (TensorData::F32(v), Built::Singles(b)) => {
            b.values().append_slice(&v[start..end]);
            b.append(true);
        }
        (TensorData::F64(v), Built::Numbers(b)) => {
            b.values().append_slice(&v[start..end]);
            b.append(true);
        }
        (data, Built::Numbers(b)) => {
            for i in start..end {
                b.values().append_option(data.get_f64(i));
            }
            b.append(true);
        }
        _ => {}
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
