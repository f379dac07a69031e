//! `mercator features history --engine spark`: the point-in-time join handed to a Spark
//! cluster. The query is built from the store's definitions by the Python package's
//! `mercator.training` (embedded here, so the CLI needs only a Python with pyspark) and
//! runs where `--spark-master` says, over the offline store's folder as it is; the
//! training set is a folder of Parquet part files, in the entity rows' order.

use std::path::Path;

use anyhow::Context;
use mercator_features::FeatureStore;

use crate::config::Config;

/// The Spark side, one source with the Python package's.
const SCRIPT: &str = include_str!("../../../python/src/mercator/training.py");

/// How to reach Spark.
#[derive(Debug, Clone)]
pub(super) struct SparkArgs {
    /// `spark://host:port`, `local[N]`, `yarn`, `k8s://…`.
    pub(super) master: String,
    /// The Python with pyspark.
    pub(super) python: String,
    /// `key=value` Spark settings.
    pub(super) conf: Vec<String>,
}

/// A path or URL as Spark must see it: local paths absolute, `s3://` as Hadoop's `s3a://`.
fn for_spark(location: &str) -> anyhow::Result<String> {
    if let Some(rest) = location.strip_prefix("s3://") {
        return Ok(format!("s3a://{rest}"));
    }
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let path = Path::new(location);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(absolute.display().to_string())
}

/// Runs the join on Spark; prints its summary (JSON with `--json`).
pub(super) async fn run(
    store: &FeatureStore,
    config: &Config,
    features: &[String],
    entities: &str,
    output: &str,
    spark: SparkArgs,
    json: bool,
) -> anyhow::Result<()> {
    // Refused here, naming the field, rather than deep in a Spark log.
    let defs = store.current();
    let keys = mercator_features::pit::join_keys(&defs, features)?;
    let scratch = tempfile::tempdir().context("a folder for the Spark job's files")?;
    let script = scratch.path().join("mercator_training.py");
    std::fs::write(&script, SCRIPT)?;
    let definitions = scratch.path().join("definitions.json");
    let (defs, toml) = store.definitions();
    let listed = mercator_features::grpc::definitions_to_pb(&defs, toml);
    std::fs::write(
        &definitions,
        serde_json::to_vec(&crate::definitions::definitions_json(&listed))?,
    )?;
    let mut command = std::process::Command::new(&spark.python);
    command
        .arg(&script)
        .args(["--master", &spark.master])
        .args(["--offline", &for_spark(&config.offline_location())?])
        .arg("--definitions")
        .arg(&definitions)
        .args(["--features", &features.join(",")])
        .args(["--entities", &for_spark(entities)?])
        .args(["--output", &for_spark(output)?]);
    for kv in &spark.conf {
        command.args(["--conf", kv]);
    }
    let started = std::time::Instant::now();
    command.stderr(std::process::Stdio::inherit());
    let done = tokio::task::spawn_blocking(move || command.output())
        .await?
        .with_context(|| format!("cannot run '{}' (--spark-python)", spark.python))?;
    anyhow::ensure!(
        done.status.success(),
        "the Spark job failed ({}); its log is above",
        done.status
    );
    let mut summary: serde_json::Value =
        serde_json::from_slice(&done.stdout).context("the Spark job's summary is not JSON")?;
    summary["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    summary["join_keys"] = serde_json::json!(keys);
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "wrote {} rows with {} features to {output} (Parquet part files) on Spark {}",
            summary["rows"], summary["features"], spark.master
        );
    }
    Ok(())
}
