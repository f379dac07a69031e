//! The feature store as the server uses it: the applied definitions (in a
//! [`DefinitionsStore`], cached here), the online store and the offline history.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::definitions::{Definitions, FeatureView};
use crate::definitions_store::{DefinitionsStore, FileDefinitions};
use crate::historical::{EntityRow, Timeline};
use crate::offline::OfflineStore;
use crate::online::ViewRead;
use crate::online::{EmbeddedStore, Feature, OnlineStore, PushRow, WriteOutcome};
use crate::{FeatureError, Result};

/// File name of the local definitions.
pub const DEFINITIONS_FILE: &str = "definitions.toml";

/// The definitions in force, as last loaded.
#[derive(Debug, Default, Clone)]
struct Applied {
    revision: Option<u64>,
    definitions: Arc<Definitions>,
    toml: String,
}

impl Applied {
    fn parse(saved: Option<(u64, String)>) -> Result<Applied> {
        let (revision, toml) = match saved {
            Some((r, t)) => (Some(r), t),
            None => (None, String::new()),
        };
        Ok(Applied {
            revision,
            definitions: Arc::new(Definitions::from_toml(&toml)?),
            toml,
        })
    }
}

/// How an apply is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Report the changes without saving.
    pub dry_run: bool,
    /// Allow removing views, entities and fields.
    pub allow_removals: bool,
    /// Who applies it (empty: the definitions store's default).
    pub actor: String,
}

/// Definitions plus the online and offline stores.
#[derive(Debug)]
pub struct FeatureStore {
    store: Arc<dyn DefinitionsStore>,
    applied: RwLock<Applied>,
    apply_lock: tokio::sync::Mutex<()>,
    online: Arc<dyn OnlineStore>,
    offline: OfflineStore,
    /// How far past the server's clock an event time may be.
    max_future_skew_micros: i64,
}

/// How far into the future an event time may be unless told otherwise: a day of clock
/// skew. A row stamped further ahead would shadow every later push of its entity.
pub const DEFAULT_MAX_FUTURE_SKEW: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Requested features grouped by view: each view with (position in the request, field),
/// borrowed from the definitions and the request rather than copied per call.
type Plan<'a> = Vec<(&'a FeatureView, Vec<(usize, &'a str)>)>;

impl FeatureStore {
    /// Opens the store in `dir`: definitions in `dir/definitions.toml`, the embedded
    /// online store in `dir/online` and the offline history in `dir/offline`.
    pub fn open(dir: &Path) -> Result<FeatureStore> {
        let online = Arc::new(EmbeddedStore::open(&dir.join("online"))?);
        let offline = OfflineStore::open(&dir.join("offline").display().to_string())?;
        FeatureStore::open_with(dir, online, offline)
    }

    /// Opens the definitions file in `dir` over the given online and offline stores.
    pub fn open_with(
        dir: &Path,
        online: Arc<dyn OnlineStore>,
        offline: OfflineStore,
    ) -> Result<FeatureStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DEFINITIONS_FILE);
        let saved = match std::fs::read_to_string(&path) {
            Ok(t) => Some((1, t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        Ok(FeatureStore {
            store: Arc::new(FileDefinitions::new(path)),
            applied: RwLock::new(Applied::parse(saved)?),
            apply_lock: tokio::sync::Mutex::new(()),
            online,
            offline,
            max_future_skew_micros: micros_of(DEFAULT_MAX_FUTURE_SKEW),
        })
    }

    /// Opens the store over shared definitions (e.g. in the registry database).
    pub async fn open_shared(
        store: Arc<dyn DefinitionsStore>,
        online: Arc<dyn OnlineStore>,
        offline: OfflineStore,
    ) -> Result<FeatureStore> {
        let applied = Applied::parse(store.load().await?)?;
        Ok(FeatureStore {
            store,
            applied: RwLock::new(applied),
            apply_lock: tokio::sync::Mutex::new(()),
            online,
            offline,
            max_future_skew_micros: micros_of(DEFAULT_MAX_FUTURE_SKEW),
        })
    }

    /// The applied definitions, without the file's text: for the request path, which
    /// reads them on every lookup (an `Arc` clone under a read lock).
    pub fn current(&self) -> Arc<Definitions> {
        self.applied
            .read()
            .map(|a| Arc::clone(&a.definitions))
            .unwrap_or_default()
    }

    /// The offline history (for training sets built outside a request).
    pub fn offline(&self) -> &OfflineStore {
        &self.offline
    }

    /// The applied definitions and the file they came from.
    pub fn definitions(&self) -> (Arc<Definitions>, String) {
        self.applied
            .read()
            .map(|a| (Arc::clone(&a.definitions), a.toml.clone()))
            .unwrap_or_default()
    }

    /// Reloads the definitions if another process applied new ones; true if they changed.
    pub async fn refresh(&self) -> Result<bool> {
        let latest = self.store.load().await?;
        let current = self.applied.read().map(|a| a.revision).unwrap_or_default();
        if latest.as_ref().map(|(r, _)| *r) == current {
            return Ok(false);
        }
        let applied = Applied::parse(latest)?;
        if let Ok(mut a) = self.applied.write() {
            *a = applied;
        }
        Ok(true)
    }

    /// [`FeatureStore::apply_with`] with no removals allowed, by the store's default actor.
    pub async fn apply(&self, toml: &str, dry_run: bool) -> Result<Vec<String>> {
        let options = ApplyOptions {
            dry_run,
            ..ApplyOptions::default()
        };
        self.apply_with(toml, &options).await
    }

    /// Applies a definitions file: checks it, checks it against the latest stored
    /// definitions, and (unless `dry_run`) saves it as a new revision. Returns the changes.
    /// One that removes a view, an entity or a field is refused unless
    /// `allow_removals` says so: served models read those, and a removal cannot be
    /// undone by the data (re-applying brings the definition back, not its rows).
    /// Applies are serialised here, and across processes by the store's revision check.
    pub async fn apply_with(&self, toml: &str, options: &ApplyOptions) -> Result<Vec<String>> {
        let dry_run = options.dry_run;
        let next = Definitions::from_toml(toml)?;
        let _one_at_a_time = self.apply_lock.lock().await;
        self.refresh().await?;
        let current = self.applied.read().map(|a| a.clone()).unwrap_or_default();
        let changes = current.definitions.plan_apply(&next)?;
        // Checked before a dry run returns, so that a dry run fails exactly when the
        // apply itself would.
        let removals: Vec<&str> = changes
            .iter()
            .map(String::as_str)
            .filter(|c| c.starts_with("remove ") || c.starts_with("drop field "))
            .collect();
        if !removals.is_empty() && !options.allow_removals {
            return Err(FeatureError::Incompatible(format!(
                "this apply would {}: send allow_removals to go ahead \
                 (mercator features apply --allow-removals), or add to what is applied \
                 (mercator features apply --merge)",
                removals.join(", ")
            )));
        }
        if dry_run || changes.is_empty() {
            return Ok(changes);
        }
        let applied = crate::definitions_store::Applied {
            actor: options.actor.clone(),
            changes: changes.clone(),
        };
        let revision = self.store.save(current.revision, toml, &applied).await?;
        if let Ok(mut a) = self.applied.write() {
            *a = Applied {
                revision: Some(revision),
                definitions: Arc::new(next),
                toml: toml.to_string(),
            };
        }
        Ok(changes)
    }

    /// The applied view named `name`.
    pub fn view(&self, name: &str) -> Result<FeatureView> {
        self.current()
            .views
            .get(name)
            .cloned()
            .ok_or_else(|| FeatureError::UnknownView(name.to_string()))
    }

    /// Each applied view with the newest event time the online store holds for it
    /// (`None` before its first row), for freshness metrics.
    pub async fn newest_events(&self) -> Result<Vec<(FeatureView, Option<i64>)>> {
        let definitions = self.current();
        let mut out = Vec::with_capacity(definitions.views.len());
        for view in definitions.views.values() {
            let newest = self.online.newest_event_micros(view).await?;
            out.push((view.clone(), newest));
        }
        Ok(out)
    }

    /// Keeps short-lived state (a conversation's) in the online store for `ttl`.
    pub async fn put_state(&self, key: &str, value: &[u8], ttl: std::time::Duration) -> Result<()> {
        self.online.put_state(key, value, ttl).await
    }

    /// The state under `key`, unless its time ran out.
    pub async fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.online.get_state(key).await
    }

    /// Keeps `value` under `key` for `ttl` unless a live state is there: whether this
    /// call took it, atomically across replicas (a trigger's cooldown).
    pub async fn claim_state(
        &self,
        key: &str,
        value: &[u8],
        ttl: std::time::Duration,
    ) -> Result<bool> {
        self.online.claim_state(key, value, ttl).await
    }

    /// Forgets the state under `key`.
    pub async fn delete_state(&self, key: &str) -> Result<()> {
        self.online.delete_state(key).await
    }

    /// Which online backend serves reads.
    pub fn online_backend(&self) -> &'static str {
        self.online.backend()
    }

    /// Writes rows to a view: checked, appended to the view's history, then written to
    /// the online store. History comes first so that nothing served online is missing
    /// from training data; a call that fails after it may leave rows in history only,
    /// and retrying it writes them again, which point-in-time reads do not mind.
    pub async fn push(&self, view: &str, rows: &[PushRow]) -> Result<WriteOutcome> {
        let view = self.view(view)?;
        crate::online::validate(&view, rows)?;
        self.check_event_times(rows)?;
        self.offline.append(&view, rows).await?;
        self.online.write(&view, rows).await
    }

    /// What [`FeatureStore::push`] checks before it writes anything (the view's schema, the
    /// event times), for callers that sort rows out one by one (a stream's messages).
    pub fn check_rows(&self, view: &FeatureView, rows: &[PushRow]) -> Result<()> {
        crate::online::validate(view, rows)?;
        self.check_event_times(rows)
    }

    /// Event times may not be before 1970 (nothing this store serves is that old, and
    /// negative times break the offline history's partitions) nor further ahead than
    /// the allowed skew: such a row would be "newer" than every honest push after it,
    /// for ever.
    fn check_event_times(&self, rows: &[PushRow]) -> Result<()> {
        let latest = chrono::Utc::now().timestamp_micros() + self.max_future_skew_micros;
        for (i, row) in rows.iter().enumerate() {
            let t = row.event_time_micros;
            let message = if t < 0 {
                "before 1970-01-01"
            } else if t > latest {
                "too far in the future (past the allowed clock skew, features.max_future_skew_secs)"
            } else {
                continue;
            };
            return Err(FeatureError::InvalidRow {
                row: i,
                field: "event_time".into(),
                message: message.into(),
            });
        }
        Ok(())
    }

    /// Sets how far past this server's clock an event time may be.
    pub fn with_max_future_skew(mut self, skew: std::time::Duration) -> FeatureStore {
        self.max_future_skew_micros = micros_of(skew);
        self
    }

    /// Reads `features` (each `view:field`) for every entity, grouped by view so each
    /// view is read once, all views in one call to the online store (one round trip to
    /// Redis); results are in the order asked.
    pub async fn get_online(
        &self,
        features: &[String],
        entities: &[Vec<String>],
        now_micros: i64,
    ) -> Result<Vec<Vec<Feature>>> {
        let mut got = self
            .get_online_sets(&[(features, entities)], now_micros)
            .await?;
        Ok(got.pop().unwrap_or_default())
    }

    /// Several [`FeatureStore::get_online`] lookups, each its own features of its own
    /// entities (a model's inputs bound to views of different entities), in one call to
    /// the online store: one round trip to Redis for a whole request. One result per
    /// lookup, in order.
    pub async fn get_online_sets(
        &self,
        lookups: &[(&[String], &[Vec<String>])],
        now_micros: i64,
    ) -> Result<Vec<Vec<Vec<Feature>>>> {
        let defs = self.current();
        let plans = lookups
            .iter()
            .map(|(features, entities)| plan(&defs, features, entities.iter().map(Vec::as_slice)))
            .collect::<Result<Vec<_>>>()?;
        let names: Vec<Vec<Vec<&str>>> = plans
            .iter()
            .map(|by_view| {
                by_view
                    .iter()
                    .map(|(_, fields)| fields.iter().map(|(_, n)| *n).collect())
                    .collect()
            })
            .collect();
        let mut reads = Vec::new();
        for (((_, entities), by_view), names) in lookups.iter().zip(&plans).zip(&names) {
            for ((view, _), names) in by_view.iter().zip(names) {
                reads.push(ViewRead {
                    view,
                    fields: names,
                    keys: entities,
                });
            }
        }
        let mut got = self
            .online
            .read_views(&reads, now_micros)
            .await?
            .into_iter();
        let mut out = Vec::with_capacity(lookups.len());
        for ((features, entities), by_view) in lookups.iter().zip(&plans) {
            let mut rows: Vec<Vec<Feature>> = entities
                .iter()
                .map(|_| vec![(None, crate::Status::Missing); features.len()])
                .collect();
            for (_, fields) in by_view {
                let values = got.next().ok_or_else(|| {
                    FeatureError::Corrupt("the online store answered fewer reads than asked".into())
                })?;
                for (row, values) in rows.iter_mut().zip(values) {
                    for ((slot, _), value) in fields.iter().zip(values) {
                        row[*slot] = value;
                    }
                }
            }
            out.push(rows);
        }
        Ok(out)
    }

    /// Point-in-time retrieval: for each entity row, `features` as they were at its
    /// timestamp (see [`crate::historical`]). Results are in the order asked.
    pub async fn get_historical(
        &self,
        features: &[String],
        rows: &[EntityRow],
    ) -> Result<Vec<Vec<Feature>>> {
        let defs = self.current();
        let by_view = plan(&defs, features, rows.iter().map(|r| r.key.as_slice()))?;
        let keys: Vec<String> = rows
            .iter()
            .map(|r| crate::online::join_key(&r.key))
            .collect();
        let wanted: std::collections::HashSet<&str> = keys.iter().map(String::as_str).collect();
        let mut out: Vec<Vec<Feature>> = rows
            .iter()
            .map(|_| vec![(None, crate::Status::Missing); features.len()])
            .collect();
        // No row can be as of a time after the latest asked for: later days are skipped.
        let until = rows.iter().map(|r| r.timestamp_micros).max();
        for (view, fields) in &by_view {
            let history = self
                .offline
                .read_until(view, |k| wanted.contains(k), until)
                .await?;
            let timeline = Timeline::new(history);
            let indexes: Vec<usize> = fields
                .iter()
                .filter_map(|(_, name)| view.field_index(name))
                .collect();
            let ttl = crate::online::ttl_micros(view);
            for ((row, key), slots) in rows.iter().zip(&keys).zip(out.iter_mut()) {
                let got = timeline.as_of(key, row.timestamp_micros, ttl, &indexes);
                for ((slot, _), value) in fields.iter().zip(got) {
                    slots[*slot] = value;
                }
            }
        }
        Ok(out)
    }
}

/// Groups `features` (each `view:field`) by view, checking each names a defined field
/// and that every entity key fits every view's entity.
fn plan<'a, 'k>(
    defs: &'a Definitions,
    features: &'a [String],
    entities: impl Iterator<Item = &'k [String]>,
) -> Result<Plan<'a>> {
    let mut by_view: Plan<'a> = Vec::new();
    let mut next = 0;
    for (i, reference) in features.iter().enumerate() {
        let field = || format!("features[{i}]");
        let (view, name) =
            reference
                .split_once(':')
                .ok_or_else(|| FeatureError::InvalidRequest {
                    field: field(),
                    message: format!("'{reference}' must be view:field"),
                })?;
        let v = defs
            .views
            .get(view)
            .ok_or_else(|| FeatureError::UnknownView(view.to_string()))?;
        next = 1 + v
            .field_index_from(name, next)
            .ok_or_else(|| FeatureError::InvalidRequest {
                field: field(),
                message: format!("view '{view}' has no field '{name}'"),
            })?;
        match by_view.iter_mut().find(|(bv, _)| bv.name == view) {
            Some((_, fs)) => fs.push((i, name)),
            None => by_view.push((v, vec![(i, name)])),
        }
    }
    for (e, key) in entities.enumerate() {
        for (v, _) in &by_view {
            if key.len() != v.entity.join_keys.len() {
                return Err(FeatureError::InvalidRequest {
                    field: format!("entities[{e}]"),
                    message: format!(
                        "{} key values given, view '{}' is keyed by {:?}",
                        key.len(),
                        v.name,
                        v.entity.join_keys
                    ),
                });
            }
        }
    }
    Ok(by_view)
}

fn micros_of(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2)
}
