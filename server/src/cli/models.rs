//! `mercator models …`: what ML engineers do with the registry. Talks to a running
//! server's Registry service (`--server URL`) or, with no server, straight to the storage
//! the configuration names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use mercator_proto::v1::{self as pb, registry_client::RegistryClient};
use mercator_registry::model::{AliasMove, AuditEntry, LoadReport, ModelSummary, TrafficRoute};
use mercator_registry::{ArtifactStore, ModelVersion, NewVersion, Registry, VersionSelector};
use mercator_runtime::Manifest;
use mercator_runtime::manifest::MANIFEST_FILE;
use tonic::transport::Channel;

use super::ConfigArgs;
use super::table;

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
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting, for the audit log [default: $USER].
    #[arg(long, global = true)]
    pub actor: Option<String>,
    /// The operation.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// Registry operations.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
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
}

/// The registry, remote or local.
enum Client {
    Remote(RegistryClient<Channel>),
    Local(Registry),
}

/// A gRPC status as a CLI error: `CODE: message`.
pub(crate) fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", crate::error::code_name(e.code()), e.message())
}

impl Client {
    async fn connect(args: &ModelsArgs) -> anyhow::Result<Client> {
        match &args.server {
            Some(url) => {
                let channel = Channel::from_shared(url.clone())
                    .with_context(|| format!("bad server URL '{url}'"))?
                    .connect()
                    .await
                    .with_context(|| format!("cannot reach the server at {url}"))?;
                Ok(Client::Remote(
                    RegistryClient::new(channel)
                        .max_encoding_message_size(usize::MAX)
                        .max_decoding_message_size(usize::MAX),
                ))
            }
            None => {
                let config = args.config.load(&[])?;
                let artifacts = ArtifactStore::open(&config.artifacts_url())?;
                Ok(Client::Local(
                    Registry::open(&config.registry_url(), artifacts).await?,
                ))
            }
        }
    }

    async fn register(&mut self, new: NewVersion) -> anyhow::Result<ModelVersion> {
        match self {
            Client::Local(r) => Ok(r.register(new).await?),
            Client::Remote(c) => {
                let req = pb::RegisterVersionRequest {
                    model: new.model,
                    files: new
                        .files
                        .into_iter()
                        .map(|(path, content)| pb::UploadFile {
                            path,
                            content: content.to_vec(),
                        })
                        .collect(),
                    tags: new.tags.into_iter().collect(),
                    metrics: new.metrics.into_iter().collect(),
                    description: new.description,
                    alias: new.alias.unwrap_or_default(),
                    actor: new.actor,
                };
                let v = c
                    .register_version(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .version
                    .context("empty response")?;
                Ok(v.try_into()?)
            }
        }
    }

    async fn list(&mut self) -> anyhow::Result<Vec<ModelSummary>> {
        match self {
            Client::Local(r) => Ok(r.list_models().await?),
            Client::Remote(c) => c
                .list_models(pb::ListModelsRequest {})
                .await
                .map_err(status)?
                .into_inner()
                .models
                .into_iter()
                .map(|m| Ok(m.try_into()?))
                .collect(),
        }
    }

    /// A model, its versions, and what the serving instances saw loading them.
    async fn model(
        &mut self,
        name: &str,
    ) -> anyhow::Result<(ModelSummary, Vec<ModelVersion>, Vec<LoadReport>)> {
        match self {
            Client::Local(r) => {
                let (summary, versions) = r.get_model(name).await?;
                Ok((summary, versions, r.load_reports(name).await?))
            }
            Client::Remote(c) => {
                let resp = c
                    .get_model(pb::GetModelRequest { model: name.into() })
                    .await
                    .map_err(status)?
                    .into_inner();
                let summary = resp.model.context("empty response")?.try_into()?;
                let versions = resp
                    .versions
                    .into_iter()
                    .map(ModelVersion::try_from)
                    .collect::<Result<_, _>>()?;
                let reports = resp
                    .load_reports
                    .into_iter()
                    .map(LoadReport::try_from)
                    .collect::<Result<_, _>>()?;
                Ok((summary, versions, reports))
            }
        }
    }

    async fn version(
        &mut self,
        name: &str,
        selector: VersionSelector,
    ) -> anyhow::Result<ModelVersion> {
        match self {
            Client::Local(r) => Ok(r.get_version(name, &selector).await?),
            Client::Remote(c) => {
                let selector = match selector {
                    VersionSelector::Number(n) => pb::get_version_request::Selector::Version(n),
                    VersionSelector::Alias(a) => pb::get_version_request::Selector::Alias(a),
                };
                let req = pb::GetVersionRequest {
                    model: name.into(),
                    selector: Some(selector),
                };
                let v = c
                    .get_version(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .version
                    .context("empty response")?;
                Ok(v.try_into()?)
            }
        }
    }

    async fn set_alias(
        &mut self,
        name: &str,
        alias: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<AliasMove> {
        match self {
            Client::Local(r) => Ok(r.set_alias(name, alias, version, actor, reason).await?),
            Client::Remote(c) => {
                let req = pb::SetAliasRequest {
                    model: name.into(),
                    alias: alias.into(),
                    version,
                    reason: reason.into(),
                    actor: actor.into(),
                };
                Ok(c.set_alias(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .r#move
                    .context("empty response")?
                    .try_into()?)
            }
        }
    }

    async fn promote(
        &mut self,
        name: &str,
        version: u64,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<(AliasMove, Option<AliasMove>)> {
        match self {
            Client::Local(r) => Ok(r.promote(name, version, actor, reason).await?),
            Client::Remote(c) => {
                let resp = c
                    .promote(pb::PromoteRequest {
                        model: name.into(),
                        version,
                        reason: reason.into(),
                        actor: actor.into(),
                    })
                    .await
                    .map_err(status)?
                    .into_inner();
                let champion = resp.champion.context("empty response")?.try_into()?;
                let previous = resp.previous.map(AliasMove::try_from).transpose()?;
                Ok((champion, previous))
            }
        }
    }

    async fn rollback(
        &mut self,
        name: &str,
        alias: &str,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<AliasMove> {
        match self {
            Client::Local(r) => Ok(r.rollback_alias(name, alias, actor, reason).await?),
            Client::Remote(c) => {
                let req = pb::RollbackAliasRequest {
                    model: name.into(),
                    alias: alias.into(),
                    reason: reason.into(),
                    actor: actor.into(),
                };
                Ok(c.rollback_alias(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .r#move
                    .context("empty response")?
                    .try_into()?)
            }
        }
    }

    async fn set_traffic(
        &mut self,
        name: &str,
        routes: Vec<TrafficRoute>,
        actor: &str,
        reason: &str,
    ) -> anyhow::Result<Vec<TrafficRoute>> {
        match self {
            Client::Local(r) => Ok(r.set_traffic(name, &routes, actor, reason).await?),
            Client::Remote(c) => {
                let req = pb::SetTrafficRequest {
                    model: name.into(),
                    routes: routes.into_iter().map(Into::into).collect(),
                    reason: reason.into(),
                    actor: actor.into(),
                };
                Ok(c.set_traffic(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .routes
                    .into_iter()
                    .map(Into::into)
                    .collect())
            }
        }
    }

    async fn history(&mut self, name: &str, alias: Option<&str>) -> anyhow::Result<Vec<AliasMove>> {
        match self {
            Client::Local(r) => Ok(r.alias_history(name, alias).await?),
            Client::Remote(c) => {
                let req = pb::AliasHistoryRequest {
                    model: name.into(),
                    alias: alias.unwrap_or_default().into(),
                };
                c.alias_history(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .moves
                    .into_iter()
                    .map(|m| Ok(m.try_into()?))
                    .collect()
            }
        }
    }

    async fn archive(
        &mut self,
        name: &str,
        version: u64,
        actor: &str,
    ) -> anyhow::Result<ModelVersion> {
        match self {
            Client::Local(r) => Ok(r.archive(name, version, actor).await?),
            Client::Remote(c) => {
                let req = pb::ArchiveVersionRequest {
                    model: name.into(),
                    version,
                    actor: actor.into(),
                };
                Ok(c.archive_version(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .version
                    .context("empty response")?
                    .try_into()?)
            }
        }
    }

    async fn audit(&mut self, name: Option<&str>, limit: u32) -> anyhow::Result<Vec<AuditEntry>> {
        match self {
            Client::Local(r) => Ok(r.audit_log(name, limit).await?),
            Client::Remote(c) => {
                let req = pb::AuditLogRequest {
                    model: name.unwrap_or_default().into(),
                    limit,
                };
                c.audit_log(req)
                    .await
                    .map_err(status)?
                    .into_inner()
                    .entries
                    .into_iter()
                    .map(|e| Ok(e.try_into()?))
                    .collect()
            }
        }
    }
}

/// Runs a `mercator models` command.
pub async fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let actor = args
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let mut client = Client::connect(&args).await?;
    let json = args.json;
    match args.command {
        ModelsCommand::Register {
            name,
            path,
            alias,
            tags,
            metrics,
            description,
        } => {
            let files = read_version_files(&path)?;
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
            let v = client.register(new).await?;
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
                print_loads(&loads);
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

fn aliases_note(aliases: &[String]) -> String {
    if aliases.is_empty() {
        String::new()
    } else {
        format!(", aliased {}", aliases.join(", "))
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_move(m: &AliasMove, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(m);
    }
    let from = m
        .from_version
        .map_or("(new)".to_string(), |v| v.to_string());
    println!("{} {}: {} -> {}", m.model, m.alias, from, m.to_version);
    Ok(())
}

fn print_version(v: &ModelVersion) {
    println!("model:        {}", v.model);
    println!("version:      {}", v.version);
    println!("status:       {}", v.status.as_str());
    println!("aliases:      {}", v.aliases.join(", "));
    println!(
        "registered:   {} by {}",
        v.registered_at.format("%Y-%m-%d %H:%M:%S UTC"),
        v.registered_by
    );
    println!("description:  {}", v.description);
    println!("artifacts:    {}", v.artifact_prefix);
    for f in &v.files {
        println!(
            "  {:<24} {:>10} bytes  sha256 {}",
            f.path, f.size_bytes, f.sha256
        );
    }
    for (k, val) in &v.tags {
        println!("tag:          {k}={val}");
    }
    for (k, val) in &v.metrics {
        println!("metric:       {k}={val}");
    }
    println!(
        "manifest:     {}",
        v.manifest_json.replace('\n', "\n              ")
    );
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

/// Reads a version's files: every file under a folder (which must hold mercator.json), or
/// a lone XGBoost JSON model, for which the manifest is inferred.
pub fn read_version_files(path: &Path) -> anyhow::Result<BTreeMap<String, Bytes>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut files = BTreeMap::new();
    if meta.is_dir() {
        collect_dir(path, path, &mut files)?;
        if !files.contains_key(MANIFEST_FILE) {
            bail!("{} has no {MANIFEST_FILE} manifest", path.display());
        }
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = Manifest::infer_for_xgboost(&bytes, "model.json").with_context(|| {
            format!(
                "{} is neither a folder with {MANIFEST_FILE} nor an XGBoost JSON model",
                path.display()
            )
        })?;
        files.insert(
            MANIFEST_FILE.to_string(),
            Bytes::from(serde_json::to_vec_pretty(&manifest)?),
        );
        files.insert("model.json".to_string(), Bytes::from(bytes));
    }
    Ok(files)
}

fn collect_dir(root: &Path, dir: &Path, files: &mut BTreeMap<String, Bytes>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_dir(root, &path, files)?;
        } else {
            let rel = path
                .strip_prefix(root)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.insert(rel, Bytes::from(bytes));
        }
    }
    Ok(())
}

/// What the serving instances saw loading the versions: a version an alias points at but
/// that failed to load is not being served, and says why here.
fn print_loads(loads: &[LoadReport]) {
    if loads.is_empty() {
        return;
    }
    println!();
    println!("Loads reported by serving instances:");
    let rows: Vec<Vec<String>> = loads
        .iter()
        .map(|l| {
            vec![
                l.version.to_string(),
                l.instance.clone(),
                if l.loaded {
                    "serving".into()
                } else {
                    format!("FAILED ({})", l.reason)
                },
                l.attempts.to_string(),
                l.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                l.message.clone(),
            ]
        })
        .collect();
    table::print(
        &["VERSION", "INSTANCE", "LOAD", "ATTEMPTS", "AT", "WHY"],
        &rows,
    );
}

/// A traffic split in one line, e.g. `champion 90%, challenger 10%, shadow candidate 100%`.
fn describe_traffic(routes: &[TrafficRoute]) -> String {
    let mut parts: Vec<String> = routes
        .iter()
        .map(|r| {
            let role = if r.shadow { "shadow " } else { "" };
            format!("{role}{} {}%", r.alias, r.percent)
        })
        .collect();
    if !routes.iter().any(|r| !r.shadow) {
        parts.insert(0, format!("{} 100%", mercator_registry::CHAMPION));
    }
    parts.join(", ")
}
