//! `mercator profile build DATA --model NAME`: the training profile of a registered
//! version, written as `profile.json` to register with (or alongside) the next version.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use mercator_registry::VersionSelector;
use mercator_runtime::Manifest;
use mercator_runtime::manifest::MANIFEST_FILE;

use super::ConfigArgs;

/// `mercator profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Configuration sources (the registry and artifact store to read the model from).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: ProfileCommand,
}

/// `mercator profile …` commands.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Profile a model's inputs and predictions on its training data: DATA is a CSV or
    /// Parquet file (a path, or an s3://, gs://, az://, file:// URL) with a column per
    /// model feature, named as in the manifest.
    Build {
        /// The training data.
        data: String,
        /// Model name.
        #[arg(long)]
        model: String,
        /// Version number or alias [default: champion].
        #[arg(long, default_value = mercator_registry::CHAMPION)]
        version: String,
        /// Where to write the profile.
        #[arg(long, default_value = mercator_runtime::drift::PROFILE_FILE)]
        output: PathBuf,
        /// Bins per numeric feature (quantile edges).
        #[arg(long, default_value_t = mercator_runtime::drift::profile::DEFAULT_BINS)]
        bins: usize,
    },
}

/// Runs `mercator profile …`.
pub async fn run(args: ProfileArgs) -> anyhow::Result<()> {
    let ProfileCommand::Build {
        data,
        model,
        version,
        output,
        bins,
    } = args.command;
    anyhow::ensure!((2..=100).contains(&bins), "--bins must be within 2-100");
    let config = args.config.load()?;
    let registry = crate::definitions::open_registry(&config).await?;
    let selector = match version.parse::<u64>() {
        Ok(n) => VersionSelector::Number(n),
        Err(_) => VersionSelector::Alias(version.clone()),
    };
    let record = registry.get_version(&model, &selector).await?;
    let files = registry.fetch_artifacts(&record).await?;
    let manifest = Manifest::parse(
        files
            .get(MANIFEST_FILE)
            .with_context(|| format!("{model}@{}: no {MANIFEST_FILE}", record.version))?,
    )?;
    let weights = files
        .get(&manifest.weights)
        .with_context(|| format!("{model}@{}: no weights file", record.version))?;
    let built = manifest.build_with(weights, &|name| files.get(name).map(|b| b.to_vec()))?;
    let batch = if manifest.max_batch_size > 0 {
        manifest.max_batch_size as usize
    } else {
        config.limits.max_batch_size
    };
    let profile =
        super::profiling::profile_table(&manifest, built.as_ref(), &data, bins, batch).await?;
    std::fs::write(&output, serde_json::to_vec(&profile)?)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "{}: {} rows, {} features, {} predictions of {model}@{}",
        output.display(),
        profile.rows,
        profile.features.len(),
        profile.predictions.len(),
        record.version
    );
    Ok(())
}
