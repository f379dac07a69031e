//! Reading named columns of a CSV or Parquet file (a URL or a local path, through
//! `object_store`) into memory, for tools that look at a whole dataset at once, such as
//! the training profile of a model. An empty CSV cell and a Parquet null are nulls.

use std::collections::BTreeMap;

use arrow_array::Array;

use crate::ingest::{is_parquet, locate};
use crate::{FeatureError, Result};

/// A column read from a table: numbers (null = NaN) or text (null = `None`).
#[derive(Debug, Clone, PartialEq)]
pub enum TableColumn {
    /// Numbers.
    Numeric(Vec<f64>),
    /// Text.
    Text(Vec<Option<String>>),
}

/// The columns `wanted` (name, numeric?) of the table at `location`, in that order. A
/// missing column or a cell that is not a number in a numeric column is
/// `InvalidRequest` naming it.
pub async fn read_columns(location: &str, wanted: &[(&str, bool)]) -> Result<Vec<TableColumn>> {
    let (store, path) = locate(location)?;
    let bad = |field: &str, message: String| FeatureError::InvalidRequest {
        field: field.to_string(),
        message,
    };
    let bytes = store
        .get(&path)
        .await
        .map_err(|e| bad("data", format!("'{location}': {e}")))?
        .bytes()
        .await
        .map_err(|e| bad("data", format!("'{location}': {e}")))?;
    let text_columns = if is_parquet(location) {
        parquet_columns(bytes, wanted)?
    } else {
        csv_columns(&bytes, wanted)?
    };
    wanted
        .iter()
        .zip(text_columns)
        .map(|((name, numeric), cells)| match cells {
            Cells::Numbers(v) => Ok(TableColumn::Numeric(v)),
            Cells::Text(v) if !*numeric => Ok(TableColumn::Text(v)),
            Cells::Text(v) => {
                v.into_iter()
                    .enumerate()
                    .map(|(row, c)| match c {
                        None => Ok(f64::NAN),
                        // A bool column as the model sees it (1 or 0), read by the rule
                        // `features load` uses.
                        Some(s) => s
                            .trim()
                            .parse::<f64>()
                            .ok()
                            .or_else(|| {
                                crate::ingest::parse_bool(&s).map(|b| f64::from(u8::from(b)))
                            })
                            .ok_or_else(|| {
                                bad(
                                    name,
                                    format!("row {}: '{s}' is not a number or a bool", row + 1),
                                )
                            }),
                    })
                    .collect::<Result<Vec<f64>>>()
                    .map(TableColumn::Numeric)
            }
        })
        .collect()
}

enum Cells {
    Numbers(Vec<f64>),
    Text(Vec<Option<String>>),
}

fn missing(name: &str, have: &[String]) -> FeatureError {
    FeatureError::InvalidRequest {
        field: name.to_string(),
        message: format!("the data has no column '{name}' (it has {have:?})"),
    }
}

fn csv_columns(bytes: &[u8], wanted: &[(&str, bool)]) -> Result<Vec<Cells>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| FeatureError::InvalidRequest {
            field: "data".into(),
            message: e.to_string(),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let at = wanted
        .iter()
        .map(|(name, _)| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| missing(name, &headers))
        })
        .collect::<Result<Vec<usize>>>()?;
    let mut out: Vec<Vec<Option<String>>> = vec![Vec::new(); wanted.len()];
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| FeatureError::InvalidRequest {
            field: "data".into(),
            message: format!("row {}: {e}", row + 1),
        })?;
        for (column, &i) in out.iter_mut().zip(&at) {
            let cell = record.get(i).unwrap_or("");
            column.push((!cell.is_empty()).then(|| cell.to_string()));
        }
    }
    Ok(out.into_iter().map(Cells::Text).collect())
}

fn parquet_columns(bytes: bytes::Bytes, wanted: &[(&str, bool)]) -> Result<Vec<Cells>> {
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let not_parquet = |e: String| FeatureError::InvalidRequest {
        field: "data".into(),
        message: format!("not a readable Parquet file: {e}"),
    };
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| not_parquet(e.to_string()))?;
    let names: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let at = wanted
        .iter()
        .map(|(name, _)| {
            names
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| missing(name, &names))
        })
        .collect::<Result<Vec<usize>>>()?;
    let mut out: BTreeMap<usize, Cells> = BTreeMap::new();
    for (k, (_, numeric)) in wanted.iter().enumerate() {
        out.insert(
            k,
            if *numeric {
                Cells::Numbers(Vec::new())
            } else {
                Cells::Text(Vec::new())
            },
        );
    }
    for batch in builder.build().map_err(|e| not_parquet(e.to_string()))? {
        let batch = batch.map_err(|e| not_parquet(e.to_string()))?;
        for (k, &i) in at.iter().enumerate() {
            let column = batch.column(i);
            let name = wanted[k].0;
            let cast_error = |e: arrow_schema::ArrowError| FeatureError::InvalidRequest {
                field: name.to_string(),
                message: format!("cannot read column '{name}': {e}"),
            };
            match out.get_mut(&k) {
                Some(Cells::Numbers(v)) => {
                    let cast = arrow_cast::cast(column, &DataType::Float64).map_err(cast_error)?;
                    let f = cast
                        .as_any()
                        .downcast_ref::<arrow_array::Float64Array>()
                        .ok_or_else(|| not_parquet(format!("column '{name}' is not numeric")))?;
                    v.extend(
                        (0..f.len()).map(|r| if f.is_null(r) { f64::NAN } else { f.value(r) }),
                    );
                }
                Some(Cells::Text(v)) => {
                    let cast = arrow_cast::cast(column, &DataType::Utf8).map_err(cast_error)?;
                    let s = cast
                        .as_any()
                        .downcast_ref::<arrow_array::StringArray>()
                        .ok_or_else(|| not_parquet(format!("column '{name}' is not text")))?;
                    v.extend((0..s.len()).map(|r| (!s.is_null(r)).then(|| s.value(r).to_string())));
                }
                None => {}
            }
        }
    }
    Ok(out.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pandas_bool_column_is_read_as_features_load_reads_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.csv");
        // As pandas' to_csv writes a bool column.
        std::fs::write(&path, "id,is_member\na,True\nb,False\nc,\nd,1\n").expect("write");
        let got = read_columns(path.to_str().expect("utf-8"), &[("is_member", true)])
            .await
            .expect("a bool column is numeric");
        let TableColumn::Numeric(x) = &got[0] else {
            panic!("numeric")
        };
        assert_eq!((x[0], x[1], x[3]), (1.0, 0.0, 1.0));
        assert!(x[2].is_nan());
        std::fs::write(&path, "id,is_member\na,maybe\n").expect("write");
        let err = read_columns(path.to_str().expect("utf-8"), &[("is_member", true)])
            .await
            .expect_err("not a bool");
        assert!(err.to_string().contains("row 1"), "{err}");
        for (cell, want) in [("True", true), ("FALSE", false), ("1", true), ("0", false)] {
            assert_eq!(
                crate::ingest::parse_value(crate::FieldType::Bool, cell),
                Ok(crate::Value::Bool(want))
            );
        }
    }

    #[tokio::test]
    async fn csv_and_parquet_give_the_same_columns() {
        let dir = tempfile::tempdir().expect("dir");
        let csv_path = dir.path().join("t.csv");
        std::fs::write(&csv_path, "id,x,seg\na,1.5,p\nb,,q\nc,3,\n").expect("write");
        let wanted = [("x", true), ("seg", false)];
        let from_csv = read_columns(csv_path.to_str().expect("utf-8"), &wanted)
            .await
            .expect("csv");
        let TableColumn::Numeric(x) = &from_csv[0] else {
            panic!("numeric")
        };
        assert_eq!((x[0], x[2]), (1.5, 3.0));
        assert!(x[1].is_nan());
        assert_eq!(
            from_csv[1],
            TableColumn::Text(vec![Some("p".into()), Some("q".into()), None])
        );

        let parquet_path = dir.path().join("t.parquet");
        let batch = arrow_array::RecordBatch::try_from_iter([
            (
                "x",
                std::sync::Arc::new(arrow_array::Float32Array::from(vec![
                    Some(1.5),
                    None,
                    Some(3.0),
                ])) as arrow_array::ArrayRef,
            ),
            (
                "seg",
                std::sync::Arc::new(arrow_array::StringArray::from(vec![
                    Some("p"),
                    Some("q"),
                    None,
                ])) as arrow_array::ArrayRef,
            ),
        ])
        .expect("batch");
        let file = std::fs::File::create(&parquet_path).expect("create");
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("w");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let from_parquet = read_columns(parquet_path.to_str().expect("utf-8"), &wanted)
            .await
            .expect("parquet");
        assert_eq!(from_parquet[1], from_csv[1]);
        let TableColumn::Numeric(y) = &from_parquet[0] else {
            panic!("numeric")
        };
        assert_eq!((y[0], y[2]), (1.5, 3.0));
        assert!(y[1].is_nan());

        let err = read_columns(csv_path.to_str().expect("utf-8"), &[("nope", true)])
            .await
            .expect_err("missing");
        assert!(err.to_string().contains("no column 'nope'"), "{err}");
        std::fs::write(&csv_path, "x\n1\nabc\n").expect("write");
        let err = read_columns(csv_path.to_str().expect("utf-8"), &[("x", true)])
            .await
            .expect_err("not a number");
        assert!(err.to_string().contains("row 2: 'abc'"), "{err}");
    }
}
