//! The prediction log read back for judging: the answered rows of one model over a span
//! of days, only the columns judging needs (a file without one of them gives nulls).

use std::sync::Arc;

use arrow_array::{
    Array, BooleanArray, Float64Array, ListArray, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::error::ServeError;

/// One answered instance, as judging reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logged {
    /// The call's request id.
    pub request_id: String,
    /// When it was asked, microseconds since the epoch.
    pub time_micros: i64,
    /// The version that answered.
    pub version: String,
    /// How it was reached.
    pub route: String,
    /// Its entity.
    pub entity: String,
    /// A probability (a churn score's, or a V2 model's first prediction output).
    pub probability: Option<f64>,
    /// The top intent.
    pub intent: Option<String>,
    /// Whether it went to a person.
    pub handoff: Option<bool>,
    /// A forecast's day.
    pub date: Option<String>,
    /// A forecast day's mean.
    pub mean: Option<f64>,
    /// Its quantiles.
    pub quantiles: Vec<f64>,
    /// Their levels.
    pub levels: Vec<f64>,
    /// The runbook rule that chose an action.
    pub rule: Option<String>,
    /// The action (the one that would have been taken, in control).
    pub action: Option<String>,
    /// Whether the customer was held out as the rule's control.
    pub control: Option<bool>,
    /// The rule's experiment.
    pub experiment: Option<String>,
    /// The customer's uplift, when the runbook's uplift model scored them.
    pub uplift: Option<f64>,
}

/// Reads the OK rows of `model` logged on the days from `from_micros` to `to_micros`
/// (each day's folder, `model=<name>/date=<d>/`), with times in that span. `output`: the
/// V2 output whose first element stands for the probability where a row has none.
pub async fn read(
    store: &Arc<dyn ObjectStore>,
    model: &str,
    from_micros: i64,
    to_micros: i64,
    output: Option<&str>,
) -> Result<Vec<Logged>, ServeError> {
    let unavailable =
        |e: object_store::Error| ServeError::Unavailable(format!("the prediction log: {e}"));
    let mut rows = Vec::new();
    let day = 86_400_000_000i64;
    let mut at = from_micros.div_euclid(day) * day;
    while at <= to_micros {
        let date = chrono::DateTime::from_timestamp_micros(at)
            .unwrap_or_default()
            .format("%Y-%m-%d");
        let prefix = Path::from(format!(
            "model={}/date={date}",
            crate::predlog::file_safe(model)
        ));
        let files: Vec<Path> = store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(unavailable)?;
        for path in files.iter().filter(|p| p.as_ref().ends_with(".parquet")) {
            let bytes = store
                .get(path)
                .await
                .map_err(unavailable)?
                .bytes()
                .await
                .map_err(unavailable)?;
            let output = output.map(|o| format!("output:{o}"));
            let read = tokio::task::spawn_blocking(move || decode(bytes, output.as_deref()))
                .await
                .map_err(|e| ServeError::Internal(e.to_string()))?
                .map_err(|e| ServeError::Internal(format!("{path}: {e}")))?;
            rows.extend(
                read.into_iter()
                    .filter(|r| (from_micros..=to_micros).contains(&r.time_micros)),
            );
        }
        at += day;
    }
    Ok(rows)
}

/// The columns judging reads, with `output` when given.
fn decode(bytes: bytes::Bytes, output: Option<&str>) -> Result<Vec<Logged>, String> {
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| e.to_string())?;
    let wanted = [
        "request_id",
        "time",
        "version",
        "route",
        "entity",
        "code",
        "probability",
        "intent",
        "handoff",
        "forecast_date",
        "mean",
        "quantiles",
        "quantile_levels",
        "rule",
        "action",
        "control",
        "experiment",
        "uplift",
    ];
    let schema = builder.schema().clone();
    let indexes: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| wanted.contains(&f.name().as_str()) || Some(f.name().as_str()) == output)
        .map(|(i, _)| i)
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), indexes);
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        read_batch(&batch, output, &mut out);
    }
    Ok(out)
}

fn read_batch(batch: &RecordBatch, output: Option<&str>, out: &mut Vec<Logged>) {
    fn col<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Option<&'a T> {
        batch.column_by_name(name)?.as_any().downcast_ref::<T>()
    }
    let text = |name: &str| col::<StringArray>(batch, name);
    let number = |name: &str| col::<Float64Array>(batch, name);
    let list = |name: &str| col::<ListArray>(batch, name);
    let (Some(code), Some(time)) = (
        text("code"),
        col::<TimestampMicrosecondArray>(batch, "time"),
    ) else {
        return;
    };
    let get_text = |a: Option<&StringArray>, r: usize| {
        a.filter(|a| !a.is_null(r)).map(|a| a.value(r).to_string())
    };
    let get_number =
        |a: Option<&Float64Array>, r: usize| a.filter(|a| !a.is_null(r)).map(|a| a.value(r));
    let get_list = |a: Option<&ListArray>, r: usize| -> Vec<f64> {
        a.filter(|a| !a.is_null(r))
            .and_then(|a| {
                let v = a.value(r);
                let any = v.as_any();
                any.downcast_ref::<Float64Array>()
                    .map(|f| f.iter().map(|x| x.unwrap_or(f64::NAN)).collect())
                    .or_else(|| {
                        any.downcast_ref::<arrow_array::Float32Array>()
                            .map(|f| f.iter().map(|x| x.map_or(f64::NAN, f64::from)).collect())
                    })
            })
            .unwrap_or_default()
    };
    let handoff = col::<BooleanArray>(batch, "handoff");
    let control = col::<BooleanArray>(batch, "control");
    for r in 0..batch.num_rows() {
        if code.value(r) != "OK" {
            continue;
        }
        let probability = get_number(number("probability"), r)
            .or_else(|| output.and_then(|o| get_list(list(o), r).first().copied()));
        out.push(Logged {
            request_id: get_text(text("request_id"), r).unwrap_or_default(),
            time_micros: time.value(r),
            version: get_text(text("version"), r).unwrap_or_default(),
            route: get_text(text("route"), r).unwrap_or_default(),
            entity: get_text(text("entity"), r).unwrap_or_default(),
            probability,
            intent: get_text(text("intent"), r),
            handoff: handoff.filter(|h| !h.is_null(r)).map(|h| h.value(r)),
            date: get_text(text("forecast_date"), r),
            mean: get_number(number("mean"), r),
            quantiles: get_list(list("quantiles"), r),
            levels: get_list(list("quantile_levels"), r),
            rule: get_text(text("rule"), r),
            action: get_text(text("action"), r),
            control: control.filter(|c| !c.is_null(r)).map(|c| c.value(r)),
            experiment: get_text(text("experiment"), r),
            uplift: get_number(number("uplift"), r),
        });
    }
}
