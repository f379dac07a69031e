//! Building a version's training profile: read the model's input columns from a table
//! (the training data), run the model over it, and profile the inputs and the model's
//! own predictions ([`mercator_runtime::drift`]).

use mercator_features::FieldType;
use mercator_features::Value;
use mercator_features::ingest::parse_value;
use mercator_features::table::{TableColumn, read_columns};
use mercator_runtime::drift::columns::{Kind, SUMMARY_DAYS, Source, finite_mean};
use mercator_runtime::drift::{Columns, Profile, Values};
use mercator_runtime::forecast::{self, Forecaster, Series};
use mercator_runtime::manifest::sections::HistoryBinding;
use mercator_runtime::{DType, Manifest, Model, Tensor, TensorData};

/// Why a profile could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProfilingError {
    /// The data cannot be read, or lacks a column the model needs.
    #[error(transparent)]
    Data(#[from] mercator_features::FeatureError),
    /// The model cannot be fed from a table, or failed on the data.
    #[error("{0}")]
    Model(String),
}

/// What feeds one model input from the table.
enum Feed {
    /// Numeric columns (indexes into the feature columns), `width` per row.
    Numbers { columns: Vec<usize>, dtype: DType },
    /// A text column (index into the extra text columns), shaped `[n]` or `[n, 1]`.
    Text(usize, bool),
}

/// Profiles `model` on the table at `location` (CSV or Parquet, URL or path): each input
/// column is read from the table column of its name, BYTES inputs from the column named
/// like the input; then the model predicts in batches of `batch` rows.
pub async fn profile_table(
    manifest: &Manifest,
    model: &dyn Model,
    location: &str,
    bins: usize,
    batch: usize,
) -> Result<Profile, ProfilingError> {
    let _progress = super::progress::Progress::spinner(format!("profiling on {location}"));
    let columns = Columns::of(manifest);
    if let Some(forecaster) = model.forecaster() {
        return profile_forecaster(manifest, forecaster, &columns, location, bins).await;
    }
    let mut feeds = Vec::new();
    let mut text_inputs: Vec<&str> = Vec::new();
    for (i, input) in manifest.inputs.iter().enumerate() {
        let mine: Vec<usize> = columns
            .features
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c.source, Source::Input { input, .. } if input == i))
            .map(|(k, _)| k)
            .collect();
        match (input.datatype, input.shape.as_slice()) {
            (DType::Bytes, [-1] | [-1, 1]) => {
                feeds.push(Feed::Text(text_inputs.len(), input.shape.len() == 2));
                text_inputs.push(&input.name);
            }
            (DType::F32 | DType::F64, _) if !mine.is_empty() => feeds.push(Feed::Numbers {
                columns: mine,
                dtype: input.datatype,
            }),
            _ => {
                return Err(ProfilingError::Model(format!(
                    "input '{}' ({} {:?}) cannot be read from a table's columns; profiles of \
                     such models (e.g. forecasters, whose input is a history) are not supported",
                    input.name,
                    input.datatype.as_str(),
                    input.shape
                )));
            }
        }
    }
    let wanted: Vec<(&str, bool)> = columns
        .features
        .iter()
        .map(|c| (c.name.as_str(), c.kind == Kind::Numeric))
        .chain(text_inputs.iter().map(|n| (*n, false)))
        .collect();
    let mut table = read_columns(location, &wanted).await?;
    let texts: Vec<Vec<Option<String>>> = table
        .split_off(columns.features.len())
        .into_iter()
        .map(|c| match c {
            TableColumn::Text(v) => v,
            TableColumn::Numeric(v) => v.into_iter().map(|x| Some(x.to_string())).collect(),
        })
        .collect();
    // Values as the model and the live windows see them: an FP32 input's in single
    // precision (so CSV text and Parquet floats profile alike).
    let features: Vec<Values> = table
        .into_iter()
        .zip(&columns.features)
        .map(|(c, column)| match c {
            TableColumn::Numeric(v) => {
                let single = matches!(column.source, Source::Input { input, .. }
                    if manifest.inputs[input].datatype == DType::F32);
                Values::Numeric(if single {
                    v.into_iter().map(|x| f64::from(x as f32)).collect()
                } else {
                    v
                })
            }
            TableColumn::Text(v) => Values::Categorical(v),
        })
        .collect();
    let rows = features
        .first()
        .map(values_len)
        .or(texts.first().map(Vec::len))
        .unwrap_or(0);
    if rows == 0 {
        return Err(ProfilingError::Model(
            "the data has no rows to profile".into(),
        ));
    }
    let mut predictions: Vec<Values> = columns
        .predictions
        .iter()
        .map(|c| match c.kind {
            Kind::Numeric => Values::Numeric(Vec::with_capacity(rows)),
            Kind::Categorical => Values::Categorical(Vec::with_capacity(rows)),
        })
        .collect();
    let wanted_outputs: Vec<usize> = (0..model.outputs().len()).collect();
    let batch = batch.max(1);
    for start in (0..rows).step_by(batch) {
        let end = (start + batch).min(rows);
        let inputs = feeds
            .iter()
            .map(|feed| tensor(feed, &features, &texts, start, end))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = model
            .infer(&inputs, &wanted_outputs)
            .map_err(|e| ProfilingError::Model(format!("rows {}-{end}: {e}", start + 1)))?;
        for (column, values) in columns.predictions.iter().zip(&mut predictions) {
            collect(&column.source, &outputs, end - start, values);
        }
    }
    Ok(Profile::build(&columns, &features, &predictions, bins))
}

/// Profiles a forecaster on a table of one series a row, as the feature store keeps
/// them: the key columns (named like the model's key inputs, e.g. `sku_id`,
/// `location_id`), the daily values (the column named by the manifest's `history`
/// binding, else `history`; numbers separated by `;`) and the last value's date (likewise,
/// else `last_date`). Each series is forecast [`SUMMARY_DAYS`] ahead and summarized as
/// the live windows summarize a request.
async fn profile_forecaster(
    manifest: &Manifest,
    forecaster: &dyn Forecaster,
    columns: &Columns,
    location: &str,
    bins: usize,
) -> Result<Profile, ProfilingError> {
    let binding = HistoryBinding::of(manifest).map_err(|e| ProfilingError::Model(e.to_string()))?;
    let (values_column, date_column) = binding
        .as_ref()
        .map_or(("history", forecast::LAST_DATE_INPUT), |b| {
            (b.values_field(), b.last_date_field())
        });
    let key_columns: Vec<&str> = manifest
        .inputs
        .iter()
        .filter(|i| i.datatype == DType::Bytes && i.name != forecast::LAST_DATE_INPUT)
        .map(|i| i.name.as_str())
        .take(forecaster.key_parts())
        .collect();
    if key_columns.len() < forecaster.key_parts() {
        return Err(ProfilingError::Model(format!(
            "the forecaster keys series by {} parts but the manifest names {} key inputs",
            forecaster.key_parts(),
            key_columns.len()
        )));
    }
    let wanted: Vec<(&str, bool)> = key_columns
        .iter()
        .chain([&values_column, &date_column])
        .map(|c| (*c, false))
        .collect();
    let table = read_columns(location, &wanted).await?;
    let text: Vec<Vec<Option<String>>> = table
        .into_iter()
        .map(|c| match c {
            TableColumn::Text(v) => v,
            TableColumn::Numeric(v) => v.into_iter().map(|x| Some(x.to_string())).collect(),
        })
        .collect();
    let rows = text.first().map_or(0, Vec::len);
    if rows == 0 {
        return Err(ProfilingError::Model(
            "the data has no rows to profile".into(),
        ));
    }
    let (keys, rest) = text.split_at(key_columns.len());
    let cell = |column: &[Option<String>], name: &str, r: usize| {
        column[r].clone().filter(|c| !c.is_empty()).ok_or_else(|| {
            ProfilingError::Model(format!("row {}: column '{name}' is empty", r + 1))
        })
    };
    let mut history_means = Vec::with_capacity(rows);
    let mut forecast_means = Vec::with_capacity(rows);
    for r in 0..rows {
        let key = keys
            .iter()
            .zip(&key_columns)
            .map(|(column, name)| cell(column, name, r))
            .collect::<Result<Vec<_>, _>>()?;
        let bad = |message: String| {
            ProfilingError::Model(format!(
                "row {} (series {}): {message}",
                r + 1,
                key.join("/")
            ))
        };
        // Parsed as the feature store keeps a float32_list, so the numbers are the ones
        // live requests read back.
        let text = cell(&rest[0], values_column, r)?;
        let values: Vec<f64> = match parse_value(FieldType::Float32List, &text) {
            Ok(Value::Float32List(v)) => v.into_iter().map(f64::from).collect(),
            Ok(_) => Vec::new(),
            Err(e) => {
                // The operator's own file, read by this process: quoting the item helps.
                let item = text
                    .trim_matches(|c| c == '[' || c == ']')
                    .split([',', ';', ' '])
                    .find(|s| !s.is_empty() && s.parse::<f32>().is_err())
                    .unwrap_or_default();
                return Err(bad(format!("column '{values_column}': '{item}': {e}")));
            }
        };
        let date = cell(&rest[1], date_column, r)?;
        let last_date = forecast::parse_date(&date).ok_or_else(|| {
            bad(format!(
                "column '{date_column}': '{date}' is not a YYYY-MM-DD date"
            ))
        })?;
        let series = Series {
            key: &key,
            values: &values,
            last_date: Some(last_date),
        };
        let mut f = forecaster
            .forecast(&series, SUMMARY_DAYS, &[])
            .map_err(|e| bad(e.to_string()))?;
        forecast::finish(&mut f, &[], true).map_err(|e| bad(e.to_string()))?;
        history_means.push(finite_mean(
            values[values.len().saturating_sub(SUMMARY_DAYS)..]
                .iter()
                .copied(),
        ));
        forecast_means.push(finite_mean(f.mean.iter().copied()));
    }
    Ok(Profile::build(
        columns,
        &[Values::Numeric(history_means)],
        &[Values::Numeric(forecast_means)],
        bins,
    ))
}

fn values_len(v: &Values) -> usize {
    match v {
        Values::Numeric(v) => v.len(),
        Values::Categorical(v) => v.len(),
    }
}

/// Rows `start..end` of one input.
fn tensor(
    feed: &Feed,
    features: &[Values],
    texts: &[Vec<Option<String>>],
    start: usize,
    end: usize,
) -> Result<Tensor, ProfilingError> {
    let n = end - start;
    let built = match feed {
        Feed::Numbers { columns, dtype } => {
            let mut data = Vec::with_capacity(n * columns.len());
            for r in start..end {
                for &c in columns {
                    data.push(match &features[c] {
                        Values::Numeric(v) => v[r],
                        Values::Categorical(_) => f64::NAN,
                    });
                }
            }
            let data = match dtype {
                DType::F64 => TensorData::F64(data),
                _ => TensorData::F32(data.into_iter().map(|x| x as f32).collect()),
            };
            Tensor::new(vec![n, columns.len()], data)
        }
        Feed::Text(t, two_dims) => Tensor::new(
            if *two_dims { vec![n, 1] } else { vec![n] },
            TensorData::Bytes(
                texts[*t][start..end]
                    .iter()
                    .map(|s| s.clone().unwrap_or_default().into_bytes())
                    .collect(),
            ),
        ),
    };
    built.map_err(|e| ProfilingError::Model(e.to_string()))
}

/// Appends one prediction column's values for `n` rows of `outputs`.
fn collect(source: &Source, outputs: &[Tensor], n: usize, values: &mut Values) {
    match (source, values) {
        (
            Source::Output {
                output,
                column,
                width,
            },
            Values::Numeric(v),
        ) => {
            let all = outputs[*output].data.to_f64();
            v.extend((0..n).map(|r| all.get(r * width + column).copied().unwrap_or(f64::NAN)));
        }
        (Source::Output { output, .. }, Values::Categorical(v)) => {
            if let TensorData::Bytes(b) = &outputs[*output].data {
                v.extend(
                    b.iter()
                        .take(n)
                        .map(|e| Some(String::from_utf8_lossy(e).into_owned())),
                );
            }
        }
        (Source::TopLabel { output, labels }, Values::Categorical(v)) => {
            let all = outputs[*output].data.to_f64();
            let w = labels.len().max(1);
            v.extend(all.chunks(w).take(n).map(|row| {
                row.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .and_then(|(i, _)| labels.get(i).cloned())
            }));
        }
        _ => {}
    }
}
