//! `mercator outcomes load MODEL FILE`: ground truth from a CSV or Parquet file, pushed
//! to a running server (`Outcomes/Push`, in batches) for live quality.
//!
//! Columns `entity`, `time` and `value` (or named with `--entity-column`, …). A time is
//! RFC 3339, `YYYY-MM-DD[ HH:MM:SS]` (UTC) or seconds since the epoch; a Parquet
//! timestamp or date column is read as it is. A value is a number, `true`/`false` (1/0),
//! or else a label (a classifier's confirmed intent).

use std::path::PathBuf;

use arrow_array::{Array, Float64Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use clap::{Args, Subcommand};
use mercator_proto::v1::{self as pb, outcomes_client::OutcomesClient};

/// Outcomes sent per call.
const BATCH: usize = 50_000;

/// `mercator outcomes`.
#[derive(Debug, Args)]
pub struct OutcomesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OutcomesCommand,
}

/// The `outcomes` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutcomesCommand {
    /// Load outcomes of a model from a CSV or Parquet file.
    Load(LoadArgs),
}

/// `mercator outcomes load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The model the outcomes judge.
    pub model: String,
    /// A `.csv` or `.parquet` file.
    pub file: PathBuf,
    /// The column naming what each outcome is about (a customer id, `sku|location`, a
    /// session or a request id).
    #[arg(long, default_value = "entity")]
    pub entity_column: String,
    /// The column of when it happened.
    #[arg(long, default_value = "time")]
    pub time_column: String,
    /// The column of its value (1/0, an actual, or a label).
    #[arg(long, default_value = "value")]
    pub value_column: String,
    /// The server's gRPC URL.
    #[arg(long, env = "MERCATOR_SERVER", default_value = "http://127.0.0.1:8001")]
    pub server: String,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
}

/// Runs `mercator outcomes`.
pub async fn run(args: OutcomesArgs) -> anyhow::Result<()> {
    let OutcomesCommand::Load(args) = args.command;
    let outcomes = read(&args)?;
    if outcomes.is_empty() {
        anyhow::bail!("{}: no outcomes", args.file.display());
    }
    let channel = super::remote::connect(&args.server, &args.credential).await?;
    let mut client = OutcomesClient::new(channel);
    let mut accepted = 0;
    for chunk in outcomes.chunks(BATCH) {
        accepted += client
            .push(pb::PushOutcomesRequest {
                model_name: args.model.clone(),
                outcomes: chunk.to_vec(),
            })
            .await
            .map_err(super::call::failed)?
            .into_inner()
            .accepted;
    }
    println!("{accepted} outcomes of {} loaded", args.model);
    Ok(())
}

/// The file's outcomes; a bad cell is named by its row and column.
fn read(args: &LoadArgs) -> anyhow::Result<Vec<pb::Outcome>> {
    let path = &args.file;
    let is_parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if is_parquet {
        read_parquet(args)
    } else {
        read_csv(args)
    }
}

fn read_csv(args: &LoadArgs) -> anyhow::Result<Vec<pb::Outcome>> {
    let mut reader = csv::Reader::from_path(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let headers = reader.headers()?.clone();
    let find = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: no column '{name}' (the columns are {:?})",
                args.file.display(),
                headers.iter().collect::<Vec<_>>()
            )
        })
    };
    let (e, t, v) = (
        find(&args.entity_column)?,
        find(&args.time_column)?,
        find(&args.value_column)?,
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record?;
        let line = i + 2;
        let cell = |c: usize| record.get(c).unwrap_or("");
        let time = parse_time(cell(t))
            .map_err(|m| anyhow::anyhow!("line {line}, {}: {m}", args.time_column))?;
        out.push(outcome(cell(e), time, cell(v)));
    }
    Ok(out)
}

fn outcome(entity: &str, micros: i64, value: &str) -> pb::Outcome {
    let time = Some(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    });
    let value = value.trim();
    let number = match value.to_ascii_lowercase().as_str() {
        "true" => Some(1.0),
        "false" => Some(0.0),
        other => other.parse::<f64>().ok(),
    };
    match number {
        Some(v) => pb::Outcome {
            entity: entity.to_string(),
            time,
            value: v,
            label: String::new(),
        },
        None => pb::Outcome {
            entity: entity.to_string(),
            time,
            value: 0.0,
            label: value.to_string(),
        },
    }
}

/// RFC 3339, `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.f]` (UTC) or seconds since the epoch,
/// in microseconds.
fn parse_time(cell: &str) -> Result<i64, String> {
    let cell = cell.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(cell) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(cell, "%Y-%m-%d %H:%M:%S%.f") {
        return Ok(t.and_utc().timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(cell, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_micros());
    }
    if let Ok(secs) = cell.parse::<f64>()
        && secs.is_finite()
    {
        return Ok((secs * 1e6) as i64);
    }
    Err(format!(
        "'{cell}' is not a time: write RFC 3339, YYYY-MM-DD[ HH:MM:SS] or seconds since the epoch"
    ))
}

fn read_parquet(args: &LoadArgs) -> anyhow::Result<Vec<pb::Outcome>> {
    let file = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?.build()?;
    let mut out = Vec::new();
    let mut row = 0;
    for batch in reader {
        let batch = batch?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{}: no column '{name}'", args.file.display()))
        };
        let as_text = |name: &str| -> anyhow::Result<StringArray> {
            let cast = arrow_cast::cast(&column(name)?, &DataType::Utf8)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            cast.as_any()
                .downcast_ref::<StringArray>()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{name}: not text"))
        };
        let entity = as_text(&args.entity_column)?;
        let times = times(&batch, &args.time_column, &column(&args.time_column)?)?;
        let value = column(&args.value_column)?;
        let numbers = match value.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => None,
            _ => Some(
                arrow_cast::cast(&value, &DataType::Float64)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", args.value_column))?,
            ),
        };
        let labels = as_text(&args.value_column)?;
        for (r, time) in times.into_iter().enumerate() {
            row += 1;
            let time = time.map_err(|m| anyhow::anyhow!("row {row}, {}: {m}", args.time_column))?;
            let text = match &numbers {
                Some(n) => {
                    let n = n.as_any().downcast_ref::<Float64Array>();
                    match n.filter(|n| !n.is_null(r)) {
                        Some(n) => n.value(r).to_string(),
                        None => anyhow::bail!("row {row}, {}: no value", args.value_column),
                    }
                }
                None => labels.value(r).to_string(),
            };
            out.push(outcome(entity.value(r), time, &text));
        }
    }
    Ok(out)
}

/// A time column as microseconds per row: timestamps and dates as they are, text parsed.
fn times(
    batch: &RecordBatch,
    name: &str,
    column: &arrow_array::ArrayRef,
) -> anyhow::Result<Vec<Result<i64, String>>> {
    let n = batch.num_rows();
    match column.data_type() {
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let cast = mercator_features::columns::cast_to_micros(column)
                .map_err(|e| anyhow::anyhow!("{name}: {}", e.message))?;
            Ok((0..n)
                .map(|r| {
                    mercator_features::columns::micros_at(cast.as_ref(), r)
                        .ok_or_else(|| "no time".to_string())
                })
                .collect())
        }
        _ => {
            let cast = arrow_cast::cast(column, &DataType::Utf8)
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            let t = cast
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| anyhow::anyhow!("{name}: not text"))?;
            Ok((0..n).map(|r| parse_time(t.value(r))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_values_read_as_documented() {
        assert_eq!(parse_time("1970-01-02"), Ok(86_400_000_000));
        assert_eq!(parse_time("1970-01-01 00:00:01.5"), Ok(1_500_000));
        assert_eq!(parse_time("1970-01-01T00:00:02Z"), Ok(2_000_000));
        assert_eq!(parse_time("3"), Ok(3_000_000));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(outcome("c", 0, "true").value, 1.0);
        assert_eq!(outcome("c", 0, " 0 ").value, 0.0);
        assert_eq!(
            outcome("c", 0, "where_is_my_order").label,
            "where_is_my_order"
        );
    }
}
