//! `mercator models …`: what ML engineers do with the registry. Talks to a running
//! server's Registry service (`--server URL`) or, with no server, straight to the storage
//! the configuration names.

//!
//! - [`client`]: the one path to the registry service (remote or in-process);
//! - [`files`]: a version's files read from a folder or a bare XGBoost model;
//! - [`print`]: what the commands print;
//! - here: the commands and their arguments.

mod client;
mod files;
mod print;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Subcommand};
use mercator_registry::model::TrafficRoute;
use mercator_registry::{NewVersion, VersionSelector};

use super::ConfigArgs;
use super::table;

use client::Client;
pub(crate) use client::{registry_transport, status};
pub use files::read_version_files;
use print::{aliases_note, describe_traffic, print_json, print_loads, print_move, print_version};

/// `mercator models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Configuration sources (used when no --server is given).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A running server's gRPC URL, e.g. http://127.0.0.1:8001. Without it the CLI opens
    /// the registry and artifact store itself.
    #[arg(long, env = "MERCATOR_SERVER", global = true)]
    pub server: Option<String>,
    /// The credential sent to the server.
    #[command(flatten)]
    pub credential: super::remote::Credential,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, for the audit log [default: $USER]. A server with auth required
    /// records the key's name instead.
    #[arg(long, global = true)]
    pub actor: Option<String>,
    /// The operation.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// Registry operations.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Start a version folder from an XGBoost JSON model: the model and an inferred
    /// mercator.json to edit (feature names, bindings, warm-up) before registering.
    Init {
        /// The folder to create or fill; an existing mercator.json is not overwritten.
        dir: PathBuf,
        /// The XGBoost JSON model (`booster.save_model("model.json")`).
        #[arg(long)]
        from: PathBuf,
    },
    /// Register a new version from a folder with mercator.json, or from an XGBoost JSON file.
    Register {
        /// Model name (created on first registration).
        name: String,
        /// Folder holding mercator.json and its files, or an XGBoost JSON model file.
        path: PathBuf,
        /// Point this alias (e.g. champion) at the new version.
        #[arg(long)]
        alias: Option<String>,
        /// A tag, as key=value; repeatable.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// A metric, as key=number; repeatable.
        #[arg(long = "metric", value_name = "KEY=NUMBER")]
        metrics: Vec<String>,
        /// Training data (CSV or Parquet, a path or URL) to build the version's drift
        /// profile from before registering, so version and profile go up together.
        #[arg(long, value_name = "DATA")]
        profile_data: Option<String>,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List models with their latest version and aliases.
    List,
    /// Show a model (NAME) or one version (NAME@VERSION or NAME@ALIAS).
    Show {
        /// NAME, NAME@VERSION or NAME@ALIAS.
        reference: String,
    },
    /// Point an alias at a version.
    Alias {
        /// Model name.
        name: String,
        /// Alias, e.g. champion.
        alias: String,
        /// Version number.
        version: u64,
        /// Why, for the history.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Make a version the champion, keeping the one before as `previous`.
    Promote {
        /// Model name.
        name: String,
        /// Version number.
        version: u64,
        /// Why, for the history.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Approve a version for protected aliases (the four-eyes rule, `[models]
    /// require_approval`): its registrant cannot approve it; another principal must.
    Approve {
        /// Model name.
        name: String,
        /// Version number.
        version: u64,
        /// What was reviewed, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Share the model's default traffic over its aliases, e.g. `champion=90
    /// challenger=10 --shadow candidate=100`. Requests with an entity key (a customer, a
    /// series) stick to one route. No routes (and `--clear`) give it all to the champion.
    Traffic {
        /// Model name.
        name: String,
        /// Live routes, ALIAS=PERCENT, adding up to 100.
        routes: Vec<String>,
        /// Shadow routes, ALIAS=PERCENT: that share of the traffic is copied to the alias,
        /// whose answers are measured and discarded.
        #[arg(long = "shadow")]
        shadows: Vec<String>,
        /// Remove every route.
        #[arg(long, conflicts_with_all = ["routes", "shadows"])]
        clear: bool,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Move an alias back to where it pointed before its last move.
    Rollback {
        /// Model name.
        name: String,
        /// Alias to roll back.
        #[arg(long, default_value = mercator_registry::CHAMPION)]
        alias: String,
        /// Why, for the history.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Show the history of a model's aliases.
    History {
        /// Model name.
        name: String,
        /// Only this alias.
        #[arg(long)]
        alias: Option<String>,
    },
    /// Archive a version (it must not be aliased).
    Archive {
        /// Model name.
        name: String,
        /// Version number.
        version: u64,
    },
    /// Show the audit log, newest first.
    Audit {
        /// Only this model.
        name: Option<String>,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Remove uploads left in the artifact store by registrations that died.
    Gc {
        /// Only uploads older than this many seconds.
        #[arg(long, default_value_t = 3600.0)]
        older_than_secs: f64,
    },
}

/// Runs a `mercator models` command.
pub async fn run(args: ModelsArgs) -> anyhow::Result<()> {
    // Local files only: no registry to reach.
    if let ModelsCommand::Init { dir, from } = &args.command {
        return files::init(dir, from);
    }
    let actor = super::remote::default_actor(args.actor.as_deref());
    let mut client = Client::connect(&args, &actor).await?;
    let json = args.json;
    match args.command {
        // Handled before connecting; the same answer if it ever gets here.
        ModelsCommand::Init { dir, from } => files::init(&dir, &from)?,
        ModelsCommand::Register {
            name,
            path,
            alias,
            tags,
            metrics,
            description,
            profile_data,
        } => {
            let mut files = read_version_files(&path)?;
            if let Some(data) = profile_data {
                files::add_profile(&mut files, &data).await?;
            }
            let new = NewVersion {
                model: name,
                files,
                tags: parse_pairs("--tag", &tags, |v| Ok(v.to_string()))?,
                metrics: parse_pairs("--metric", &metrics, |v| {
                    v.parse::<f64>()
                        .map_err(|_| format!("'{v}' is not a number"))
                })?,
                description,
                alias,
                actor,
            };
            let bytes: usize = new.files.values().map(|f| f.len()).sum();
            let progress = crate::cli::progress::Progress::spinner(format!(
                "registering {} ({} files, {})",
                new.model,
                new.files.len(),
                files::size(bytes)
            ));
            let v = client.register(new).await?;
            progress.finish();
            if json {
                print_json(&v)?;
            } else {
                println!(
                    "registered {}@{} ({} files){}",
                    v.model,
                    v.version,
                    v.files.len(),
                    aliases_note(&v.aliases)
                );
            }
        }
        ModelsCommand::List => {
            let models = client.list().await?;
            if json {
                return print_json(&models);
            }
            let rows: Vec<Vec<String>> = models
                .iter()
                .map(|m| {
                    let aliases: Vec<String> = m
                        .aliases
                        .iter()
                        .map(|a| format!("{}={}", a.name, a.version))
                        .collect();
                    vec![
                        m.name.clone(),
                        m.latest_version.to_string(),
                        aliases.join(" "),
                        m.description.clone(),
                    ]
                })
                .collect();
            table::print(&["MODEL", "LATEST", "ALIASES", "DESCRIPTION"], &rows);
        }
        ModelsCommand::Show { reference } => {
            if reference.contains('@') {
                let (name, selector) = VersionSelector::parse_reference(&reference)?;
                let v = client.version(&name, selector).await?;
                if json {
                    return print_json(&v);
                }
                print_version(&v);
            } else {
                let (summary, versions, loads) = client.model(&reference).await?;
                if json {
                    return print_json(
                        &serde_json::json!({"model": summary, "versions": versions, "loads": loads}),
                    );
                }
                println!(
                    "{} (latest version {})",
                    summary.name, summary.latest_version
                );
                println!("traffic: {}", describe_traffic(&summary.traffic));
                let rows: Vec<Vec<String>> = versions
                    .iter()
                    .map(|v| {
                        vec![
                            v.version.to_string(),
                            v.status.as_str().into(),
                            v.aliases.join(","),
                            v.registered_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            v.registered_by.clone(),
                            v.description.clone(),
                        ]
                    })
                    .collect();
                table::print(
                    &[
                        "VERSION",
                        "STATUS",
                        "ALIASES",
                        "REGISTERED",
                        "BY",
                        "DESCRIPTION",
                    ],
                    &rows,
                );
                // Whose reports still count: the configuration's TTL (the servers' own).
                let ttl = args.config.load()?.registry.instance_ttl();
                print_loads(&loads, ttl);
            }
        }
        ModelsCommand::Alias {
            name,
            alias,
            version,
            reason,
        } => {
            let m = client
                .set_alias(&name, &alias, version, &actor, &reason)
                .await?;
            print_move(&m, json)?;
        }
        ModelsCommand::Promote {
            name,
            version,
            reason,
        } => {
            let (champion, previous) = client.promote(&name, version, &actor, &reason).await?;
            if json {
                return print_json(
                    &serde_json::json!({"champion": champion, "previous": previous}),
                );
            }
            if let Some(p) = &previous {
                print_move(p, false)?;
            }
            print_move(&champion, false)?;
        }
        ModelsCommand::Approve {
            name,
            version,
            reason,
        } => {
            let approvers = client.approve(&name, version, &actor, &reason).await?;
            if json {
                return print_json(&serde_json::json!({
                    "model": name, "version": version, "approved_by": approvers,
                }));
            }
            println!(
                "{name} version {version} approved; approvers: {}",
                approvers.join(", ")
            );
        }
        ModelsCommand::Traffic {
            name,
            routes,
            shadows,
            clear,
            reason,
        } => {
            if routes.is_empty() && shadows.is_empty() && !clear {
                bail!("give routes (ALIAS=PERCENT ...), --shadow ALIAS=PERCENT, or --clear");
            }
            let parsed = routes
                .iter()
                .map(|r| TrafficRoute::parse(r, false))
                .chain(shadows.iter().map(|r| TrafficRoute::parse(r, true)))
                .collect::<Result<Vec<_>, _>>()?;
            let stored = client.set_traffic(&name, parsed, &actor, &reason).await?;
            if json {
                return print_json(&stored);
            }
            println!("{name}: {}", describe_traffic(&stored));
        }
        ModelsCommand::Rollback {
            name,
            alias,
            reason,
        } => {
            let m = client.rollback(&name, &alias, &actor, &reason).await?;
            print_move(&m, json)?;
        }
        ModelsCommand::History { name, alias } => {
            let moves = client.history(&name, alias.as_deref()).await?;
            if json {
                return print_json(&moves);
            }
            let rows: Vec<Vec<String>> = moves
                .iter()
                .map(|m| {
                    vec![
                        m.moved_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        m.alias.clone(),
                        m.from_version.map_or("-".into(), |v| v.to_string()),
                        m.to_version.to_string(),
                        m.actor.clone(),
                        m.reason.clone(),
                    ]
                })
                .collect();
            table::print(&["WHEN", "ALIAS", "FROM", "TO", "BY", "REASON"], &rows);
        }
        ModelsCommand::Archive { name, version } => {
            let v = client.archive(&name, version, &actor).await?;
            if json {
                return print_json(&v);
            }
            println!("archived {}@{}", v.model, v.version);
        }
        ModelsCommand::Gc { older_than_secs } => {
            let removed = client.collect_garbage(older_than_secs).await?;
            if json {
                return print_json(&serde_json::json!({ "removed_uploads": removed }));
            }
            println!("removed {removed} abandoned upload(s)");
        }
        ModelsCommand::Audit { name, limit } => {
            let entries = client.audit(name.as_deref(), limit).await?;
            if json {
                return print_json(&entries);
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        e.id.to_string(),
                        e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        e.actor.clone(),
                        e.action.clone(),
                        e.model.clone(),
                        e.version.map_or("-".into(), |v| v.to_string()),
                    ]
                })
                .collect();
            table::print(&["ID", "WHEN", "BY", "ACTION", "MODEL", "VERSION"], &rows);
        }
    }
    Ok(())
}

fn parse_pairs<T>(
    flag: &str,
    pairs: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<BTreeMap<String, T>> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            bail!("{flag} '{p}' must be KEY=VALUE")
        };
        let value = parse(v).map_err(|e| anyhow::anyhow!("{flag} '{p}': {e}"))?;
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}
