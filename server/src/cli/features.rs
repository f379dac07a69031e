//! `mercator features …`: what data engineers do with feature definitions. Talks to a
//! running server (`--server URL`) or straight to the feature store under the data dir.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use mercator_features::FeatureStore;
use mercator_features::grpc::definitions_to_pb;
use mercator_proto::v1::{self as pb, feature_store_client::FeatureStoreClient};

use super::{ConfigArgs, table};

/// `mercator features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Configuration sources (used when no --server is given).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A running server's gRPC URL, e.g. http://127.0.0.1:8001.
    #[arg(long, env = "MERCATOR_SERVER", global = true)]
    pub server: Option<String>,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
    /// The operation.
    #[command(subcommand)]
    pub command: FeaturesCommand,
}

/// Feature store operations.
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Apply a definitions file (TOML: entities and feature views). Idempotent; changes
    /// that would break stored data are refused.
    Apply {
        /// The definitions file.
        file: PathBuf,
        /// Show what would change without applying it.
        #[arg(long)]
        dry_run: bool,
        /// Allow removing views, entities and fields (refused otherwise).
        #[arg(long)]
        allow_removals: bool,
        /// Add the file's entities and views to those applied (replacing any of the same
        /// name) instead of taking the file as the whole state.
        #[arg(long)]
        merge: bool,
    },
    /// Merge each date partition's small history files into files of about --target-mb
    /// (against the store; safe beside writers, replicas and other compactions).
    Compact {
        /// Only this view (default: every view).
        #[arg(long)]
        view: Option<String>,
        /// The size of merged files, MiB.
        #[arg(long, default_value_t = 128)]
        target_mb: u64,
        /// Replaced files are deleted this long after their replacement is written (a
        /// join that listed them before may still be reading them), e.g. 10m, 1h.
        #[arg(long, default_value = "10m")]
        grace: String,
        /// Print a JSON report per view.
        #[arg(long)]
        json: bool,
    },
    /// List entities and feature views.
    List {
        /// Print JSON (entities, and views with their typed fields) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load a CSV or Parquet file (path or object-storage URL; by extension) into a view.
    Load {
        /// The feature view.
        view: String,
        /// A local path, or file://, s3://, gs://, az:// URL. With --server, a file this
        /// machine has is uploaded to the server; anything else the server reads itself,
        /// inside its load roots.
        url: String,
        /// Event time (RFC 3339) for rows when the file has no event_timestamp column.
        #[arg(long)]
        event_time: Option<String>,
        /// Skip columns that are not keys or fields of the view (e.g. a label).
        #[arg(long)]
        ignore_unknown_columns: bool,
    },
    /// Build a training set: the features of each entity row as they were at its
    /// timestamp (point in time, no leakage), written as Parquet.
    History {
        /// Features as view:field, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        features: Vec<String>,
        /// Entity rows: CSV or Parquet with the join key columns and event_timestamp; its
        /// other columns (a label, weights) are kept in the output, in order, typed.
        #[arg(long)]
        entities: String,
        /// Output Parquet file (path or object-storage URL).
        #[arg(long)]
        output: String,
        /// Working memory in MiB (without --server; default `[features]
        /// history_memory_mb`): the join spills to disk beyond it.
        #[arg(long)]
        memory_mb: Option<u64>,
        /// Where spill files go (without --server; default `<data_dir>/tmp/history`).
        #[arg(long)]
        spill_dir: Option<PathBuf>,
        /// Print a JSON summary (rows, files read and skipped, partitions, spill, time).
        #[arg(long)]
        json: bool,
        /// Where the join runs (without --server): `embedded`, here within the memory
        /// bound; or `spark`, on the cluster --spark-master names, over the same offline
        /// store (the output is then a folder of Parquet part files).
        #[arg(long, value_enum, default_value = "embedded")]
        engine: Engine,
        /// The Spark master: spark://host:port, local[N], yarn, k8s://… (--engine spark).
        #[arg(long, default_value = "local[*]")]
        spark_master: String,
        /// The Python with pyspark that submits the job (--engine spark).
        #[arg(long, env = "MERCATOR_SPARK_PYTHON", default_value = "python3")]
        spark_python: String,
        /// A Spark setting, key=value (repeatable; --engine spark).
        #[arg(long)]
        spark_conf: Vec<String>,
    },
}

/// Where `features history` runs its join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// In this process, streamed through local disk within the memory bound.
    Embedded,
    /// On a Spark cluster.
    Spark,
}

/// Runs a `mercator features` command.
pub async fn run(args: FeaturesArgs) -> anyhow::Result<()> {
    let (client, config) = match &args.server {
        Some(url) => (
            Client::Remote(FeatureStoreClient::new(
                super::remote::connect(url, &args.credential).await?,
            )),
            None,
        ),
        None => {
            let config = args.config.load()?;
            let registry = crate::definitions::open_registry(&config).await?;
            let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let store = crate::definitions::open_feature_store(&config, &registry, &actor).await?;
            (Client::Local(store), Some(config))
        }
    };
    match args.command {
        FeaturesCommand::Apply {
            file,
            dry_run,
            allow_removals,
            merge,
        } => {
            let mut client = client;
            let mut toml = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            if merge {
                let current = client.applied_toml().await?;
                toml = super::merge::merge(&current, &toml)?;
            }
            let changes = client.apply(toml, dry_run, allow_removals).await?;
            if changes.is_empty() {
                println!("no changes");
            }
            for c in changes {
                println!("{}{c}", if dry_run { "would " } else { "" });
            }
        }
        FeaturesCommand::Load {
            view,
            url,
            event_time,
            ignore_unknown_columns,
        } => {
            let default_event_time = event_time
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(&t)
                        .with_context(|| format!("--event-time '{t}' is not RFC 3339"))
                })
                .transpose()?
                .map(|t| prost_types::Timestamp {
                    seconds: t.timestamp(),
                    nanos: 0,
                });
            let req = pb::LoadFileRequest {
                view,
                url,
                default_event_time,
                ignore_unknown_columns,
            };
            let r = client.load(req).await?;
            println!(
                "loaded {} rows: {} written, {} older than stored",
                r.rows, r.written, r.ignored_older
            );
        }
        FeaturesCommand::History {
            features,
            entities,
            output,
            memory_mb,
            spill_dir,
            json,
            engine,
            spark_master,
            spark_python,
            spark_conf,
        } => {
            if engine == Engine::Spark {
                let (Client::Local(store), Some(config)) = (&client, &config) else {
                    anyhow::bail!("--engine spark reads the store itself: drop --server");
                };
                let spark = super::spark::SparkArgs {
                    master: spark_master,
                    python: spark_python,
                    conf: spark_conf,
                };
                return super::spark::run(
                    store, config, &features, &entities, &output, spark, json,
                )
                .await;
            }
            if let (Client::Local(store), Some(config)) = (&client, &config) {
                let options = super::history::HistoryOptions {
                    memory_mb,
                    spill_dir,
                    json,
                };
                return super::history::run(store, config, &features, &entities, &output, options)
                    .await;
            }
            let defs = client.clone().definitions().await?;
            let keys = mercator_features::pit::join_keys(&defs, &features)?;
            let frame = mercator_features::training::read_entities(&entities, &keys).await?;
            let results = client.historical(features.clone(), &frame.rows).await?;
            let n = mercator_features::training::write_training_set(
                &output, &defs, &features, &frame, &results,
            )
            .await?;
            if json {
                let summary =
                    serde_json::json!({"output": output, "rows": n, "features": features.len()});
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "wrote {n} rows with {} features to {output}",
                    features.len()
                );
            }
        }
        FeaturesCommand::Compact {
            view,
            target_mb,
            grace,
            json,
        } => {
            let Client::Local(store) = &client else {
                anyhow::bail!("features compact works on the store itself: drop --server");
            };
            super::history::compact(store, view.as_deref(), target_mb, &grace, json).await?;
        }
        FeaturesCommand::List { json } => {
            let defs = client.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&crate::definitions::definitions_json(&defs))?
                );
                return Ok(());
            }
            let rows: Vec<Vec<String>> = defs
                .feature_views
                .iter()
                .map(|v| {
                    let keys = defs
                        .entities
                        .iter()
                        .find(|e| e.name == v.entity)
                        .map(|e| e.join_keys.join(","))
                        .unwrap_or_default();
                    let ttl = if v.ttl_seconds == 0 {
                        "-".to_string()
                    } else {
                        format!("{}s", v.ttl_seconds)
                    };
                    vec![
                        v.name.clone(),
                        format!("{} ({keys})", v.entity),
                        v.fields.len().to_string(),
                        ttl,
                    ]
                })
                .collect();
            table::print(&["VIEW", "ENTITY", "FIELDS", "TTL"], &rows);
        }
    }
    Ok(())
}

#[derive(Clone)]
enum Client {
    Remote(FeatureStoreClient<super::remote::Transport>),
    Local(Arc<FeatureStore>),
}

impl Client {
    /// The definitions applied now, as TOML.
    async fn applied_toml(&mut self) -> anyhow::Result<String> {
        match self {
            Client::Remote(c) => Ok(c
                .list_definitions(pb::ListDefinitionsRequest {})
                .await
                .map_err(super::models::status)?
                .into_inner()
                .toml),
            Client::Local(s) => Ok(s.definitions().1),
        }
    }

    async fn apply(
        self,
        toml: String,
        dry_run: bool,
        allow_removals: bool,
    ) -> anyhow::Result<Vec<String>> {
        match self {
            Client::Remote(mut c) => Ok(c
                .apply_definitions(pb::ApplyDefinitionsRequest {
                    toml,
                    dry_run,
                    allow_removals,
                })
                .await
                .map_err(super::models::status)?
                .into_inner()
                .changes),
            Client::Local(s) => {
                let options = mercator_features::ApplyOptions {
                    dry_run,
                    allow_removals,
                    actor: String::new(),
                };
                Ok(s.apply_with(&toml, &options).await?)
            }
        }
    }

    async fn load(self, req: pb::LoadFileRequest) -> anyhow::Result<pb::LoadFileResponse> {
        match self {
            Client::Remote(c) => super::load::remote(c, req).await,
            Client::Local(s) => {
                let mut options = mercator_features::grpc::load_options(
                    req.default_event_time,
                    req.ignore_unknown_columns,
                )?;
                let progress =
                    super::progress::Progress::counter(format!("loading {}", req.url), "rows");
                options.progress = mercator_features::ingest::RowsDone(Some(std::sync::Arc::new(
                    progress.setter(),
                )));
                let r =
                    mercator_features::ingest::load_url(&s, &req.view, &req.url, options).await?;
                progress.finish();
                Ok(pb::LoadFileResponse {
                    rows: r.rows as u64,
                    written: r.written as u64,
                    ignored_older: r.ignored_older as u64,
                })
            }
        }
    }

    async fn definitions(self) -> anyhow::Result<mercator_features::Definitions> {
        match self {
            Client::Remote(_) => {
                let toml = self.list().await?.toml;
                Ok(mercator_features::Definitions::from_toml(&toml)?)
            }
            Client::Local(s) => Ok(s.definitions().0.as_ref().clone()),
        }
    }

    async fn historical(
        self,
        features: Vec<String>,
        rows: &[mercator_features::historical::EntityRow],
    ) -> anyhow::Result<Vec<Vec<mercator_features::online::Feature>>> {
        match self {
            Client::Remote(mut c) => {
                let mut stream = c
                    .get_historical_features(pb::GetHistoricalFeaturesRequest {
                        features,
                        entity_rows: mercator_features::grpc::entity_rows_to_pb(rows),
                    })
                    .await
                    .map_err(super::models::status)?
                    .into_inner();
                let mut out = Vec::with_capacity(rows.len());
                while let Some(chunk) = stream.message().await.map_err(super::models::status)? {
                    out.extend(
                        chunk
                            .results
                            .into_iter()
                            .map(mercator_features::grpc::feature_vector_from_pb),
                    );
                }
                anyhow::ensure!(
                    out.len() == rows.len(),
                    "the server returned {} rows for {}",
                    out.len(),
                    rows.len()
                );
                Ok(out)
            }
            Client::Local(s) => Ok(s.get_historical(&features, rows).await?),
        }
    }

    async fn list(self) -> anyhow::Result<pb::ListDefinitionsResponse> {
        match self {
            Client::Remote(mut c) => Ok(c
                .list_definitions(pb::ListDefinitionsRequest {})
                .await
                .map_err(super::models::status)?
                .into_inner()),
            Client::Local(s) => {
                let (defs, toml) = s.definitions();
                Ok(definitions_to_pb(&defs, toml))
            }
        }
    }
}
