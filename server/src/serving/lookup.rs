//! Feature-backed inputs: entity keys in, the model's input rows out. The manifest binds
//! an input's columns to feature store fields (`view:field`, in order); this reads them
//! for every entity (all of a request's bound inputs in one round trip) and fills the
//! gaps with each binding's default, or NaN (which trees send down each split's default
//! branch).

use std::sync::Arc;
use std::time::Instant;

use mercator_features::online::Feature;
use mercator_features::{FeatureError, FeatureStore, Status, Value};
use mercator_runtime::manifest::InputManifest;
use mercator_runtime::{DType, Tensor, TensorData};

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::monitor::Metrics;

/// What the store had for one entity, by bound column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFeatures {
    /// Whether any bound value was present: without one the row is only defaults.
    pub any_present: bool,
    /// Columns with no value.
    pub missing: Vec<usize>,
    /// Columns whose value is past the view's TTL.
    pub expired: Vec<usize>,
}

/// An input's rows, read from the store.
#[derive(Debug, Clone)]
pub struct EntityRows {
    columns: usize,
    values: Vec<f64>,
    /// Per entity, what was found.
    pub rows: Vec<RowFeatures>,
}

impl EntityRows {
    /// Row `i`'s values as the model sees them (defaults and NaN where values were
    /// missing or expired); empty past the last row.
    pub fn values(&self, i: usize) -> &[f64] {
        self.values
            .chunks_exact(self.columns.max(1))
            .nth(i)
            .unwrap_or_default()
    }

    /// The rows as the prediction log keeps them: each bound feature (`names`, the
    /// version's shared copy of the input's bindings) with its value as the model saw it,
    /// and whether it was missing or expired.
    pub fn logged(&self, names: &Arc<[String]>) -> crate::predlog::Source {
        use crate::predlog::FeatureState;
        let mut states = vec![FeatureState::Present; self.values.len()];
        for (i, row) in self.rows.iter().enumerate() {
            for (&c, state) in row
                .missing
                .iter()
                .map(|c| (c, FeatureState::Missing))
                .chain(row.expired.iter().map(|c| (c, FeatureState::Expired)))
            {
                if let Some(s) = states.get_mut(i * self.columns + c) {
                    *s = state;
                }
            }
        }
        crate::predlog::Source::Features {
            names: Arc::clone(names),
            values: self.values.clone(),
            states,
        }
    }

    /// The rows whose index `keep` accepts, as a `[n, columns]` tensor of `dtype`.
    pub fn tensor(&self, dtype: DType, keep: impl Fn(usize) -> bool) -> Result<Tensor, ServeError> {
        let chosen = self
            .values
            .chunks_exact(self.columns.max(1))
            .enumerate()
            .filter(|(i, _)| keep(*i));
        let mut n = 0;
        let data = match dtype {
            DType::F64 => TensorData::F64(
                chosen
                    .flat_map(|(_, r)| {
                        n += 1;
                        r.iter().copied()
                    })
                    .collect(),
            ),
            _ => TensorData::F32(
                chosen
                    .flat_map(|(_, r)| {
                        n += 1;
                        r.iter().map(|&v| v as f32)
                    })
                    .collect(),
            ),
        };
        Tensor::new(vec![n, self.columns], data).map_err(|e| ServeError::Internal(e.to_string()))
    }
}

/// Refuses an entity key value a feature row could never have: longer than the
/// store's limit on a key (`MAX_KEY_BYTES`, as `Push` enforces), so no API takes (or
/// echoes back) a megabyte "customer id".
pub fn check_key(field: impl Into<String>, value: &str) -> Result<(), ServeError> {
    let max = mercator_features::online::MAX_KEY_BYTES;
    if value.len() > max {
        return Err(ServeError::invalid(
            field,
            format!(
                "{} bytes; an entity key value may have at most {max}",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// The join keys of the entity an input's bindings read, e.g. `["customer_id"]`.
pub fn join_keys(store: &FeatureStore, input: &InputManifest) -> Result<Vec<String>, ServeError> {
    let defs = store.current();
    let mut entity: Option<&mercator_features::Entity> = None;
    for binding in &input.features {
        let (view, _) = binding.view_field();
        let v = defs.views.get(view).ok_or_else(|| {
            ServeError::FailedPrecondition(format!(
                "input '{}' binds '{}', but the feature store has no view '{view}'",
                input.name, binding.feature
            ))
        })?;
        match entity {
            Some(e) if e.name != v.entity.name => {
                return Err(ServeError::FailedPrecondition(format!(
                    "input '{}' binds views of two entities ('{}' and '{}')",
                    input.name, e.name, v.entity.name
                )));
            }
            _ => entity = Some(&v.entity),
        }
    }
    entity
        .map(|e| e.join_keys.clone())
        .ok_or_else(|| ServeError::Internal(format!("input '{}' has no bindings", input.name)))
}

/// The join keys of a view's entity, e.g. `["sku_id", "location_id"]`.
pub fn entity_keys(store: &FeatureStore, view: &str) -> Result<Vec<String>, ServeError> {
    store
        .current()
        .views
        .get(view)
        .map(|v| v.entity.join_keys.clone())
        .ok_or_else(|| {
            ServeError::FailedPrecondition(format!("the feature store has no view '{view}'"))
        })
}

/// Reads `refs` (`view:field`) of each entity in `keys` for a request to `loaded`. The
/// time goes to the store-wide lookup histogram and to the version's `feature_lookup`
/// phase, the value statuses to the per-view counters; a failure names `input`.
pub async fn read_features(
    store: &FeatureStore,
    metrics: &Metrics,
    loaded: &LoadedModel,
    input: &str,
    refs: &[String],
    keys: &[Vec<String>],
    now_micros: i64,
) -> Result<Vec<Vec<Feature>>, ServeError> {
    let mut got = read_sets(
        store,
        metrics,
        loaded,
        &[input],
        &[(refs, keys)],
        now_micros,
    )
    .await?;
    got.pop()
        .ok_or_else(|| ServeError::Internal("the store answered no lookup".into()))
}

/// Several lookups (each its `view:field` refs of its entities) in one store call, timed
/// and counted; a failure names the `inputs` they fill.
async fn read_sets(
    store: &FeatureStore,
    metrics: &Metrics,
    loaded: &LoadedModel,
    inputs: &[&str],
    lookups: &[(&[String], &[Vec<String>])],
    now_micros: i64,
) -> Result<Vec<Vec<Vec<Feature>>>, ServeError> {
    let started = Instant::now();
    let got = store
        .get_online_sets(lookups, now_micros)
        .await
        .map_err(|e| lookup_error(&inputs.join("', '"), e))?;
    let elapsed = started.elapsed().as_secs_f64();
    metrics.feature_lookup_duration.observe(elapsed);
    loaded.metrics.feature_lookup.observe(elapsed);
    for ((refs, _), got) in lookups.iter().zip(&got) {
        count_statuses(metrics, refs, got);
    }
    Ok(got)
}

/// Reads an input's bound features for `keys` and assembles its rows.
pub async fn read_rows(
    store: &FeatureStore,
    metrics: &Metrics,
    loaded: &LoadedModel,
    input: &InputManifest,
    keys: &[Vec<String>],
    now_micros: i64,
) -> Result<EntityRows, ServeError> {
    let mut rows = read_inputs(store, metrics, loaded, &[(input, keys)], now_micros).await?;
    rows.pop()
        .ok_or_else(|| ServeError::Internal("the store answered no lookup".into()))
}

/// Reads the bound features of several inputs, each for its own entities, in one call to
/// the store (one round trip to Redis for the whole request), and assembles each input's
/// rows; one result per input, in order. Timed and counted as [`read_features`] is; a
/// failure names the inputs.
pub async fn read_inputs(
    store: &FeatureStore,
    metrics: &Metrics,
    loaded: &LoadedModel,
    inputs: &[(&InputManifest, &[Vec<String>])],
    now_micros: i64,
) -> Result<Vec<EntityRows>, ServeError> {
    let refs: Vec<Vec<String>> = inputs
        .iter()
        .map(|(input, _)| input.features.iter().map(|b| b.feature.clone()).collect())
        .collect();
    let lookups: Vec<(&[String], &[Vec<String>])> = refs
        .iter()
        .zip(inputs)
        .map(|(refs, (_, keys))| (refs.as_slice(), *keys))
        .collect();
    let names: Vec<&str> = inputs.iter().map(|(i, _)| i.name.as_str()).collect();
    let got = read_sets(store, metrics, loaded, &names, &lookups, now_micros).await?;
    got.into_iter()
        .zip(inputs)
        .map(|(got, (input, _))| assemble(input, got))
        .collect()
}

/// An input's rows from the values read for its bindings, defaults filling the gaps.
fn assemble(input: &InputManifest, got: Vec<Vec<Feature>>) -> Result<EntityRows, ServeError> {
    let columns = input.features.len();
    let mut values = Vec::with_capacity(got.len() * columns);
    let mut rows = Vec::with_capacity(got.len());
    for features in got {
        let mut row = RowFeatures::default();
        for (c, ((value, status), binding)) in features.into_iter().zip(&input.features).enumerate()
        {
            let fallback = binding.default.unwrap_or(f64::NAN);
            values.push(match (value, status) {
                (Some(v), Status::Present) => {
                    row.any_present = true;
                    numeric(&v).ok_or_else(|| {
                        ServeError::FailedPrecondition(format!(
                            "feature '{}' is a {}; only numeric and bool features can fill input '{}'",
                            binding.feature,
                            v.field_type().as_str(),
                            input.name
                        ))
                    })?
                }
                (_, Status::Expired) => {
                    row.expired.push(c);
                    fallback
                }
                _ => {
                    row.missing.push(c);
                    fallback
                }
            });
        }
        rows.push(row);
    }
    Ok(EntityRows {
        columns,
        values,
        rows,
    })
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Float32(x) => Some(f64::from(*x)),
        Value::Float64(x) => Some(*x),
        Value::Int64(x) => Some(*x as f64),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::String(_) | Value::Float32List(_) => None,
    }
}

/// A store error while serving a model: its bindings no longer match the definitions
/// (FAILED_PRECONDITION), or the store is down (UNAVAILABLE).
pub(crate) fn lookup_error(input: &str, e: FeatureError) -> ServeError {
    match e {
        FeatureError::Unavailable(_) | FeatureError::Io(_) => {
            ServeError::Unavailable(e.to_string())
        }
        FeatureError::UnknownView(_)
        | FeatureError::InvalidRequest { .. }
        | FeatureError::InvalidRow { .. } => ServeError::FailedPrecondition(format!(
            "input '{input}' is bound to features the store cannot serve: {e}"
        )),
        other => ServeError::Internal(other.to_string()),
    }
}

/// Counts values read by view, field and status. `refs` were checked against the
/// definitions by the read, so the labels stay bounded.
pub fn count_statuses(
    metrics: &Metrics,
    refs: &[String],
    results: &[Vec<mercator_features::online::Feature>],
) {
    for (i, reference) in refs.iter().enumerate() {
        let (view, field) = reference
            .split_once(':')
            .unwrap_or((reference.as_str(), ""));
        let mut counts = [0u64; 3];
        for row in results {
            let slot = match row.get(i).map(|(_, s)| *s) {
                Some(Status::Present) => 0,
                Some(Status::Missing) => 1,
                Some(Status::Expired) => 2,
                None => continue,
            };
            counts[slot] += 1;
        }
        for (status, n) in ["present", "missing", "expired"].iter().zip(counts) {
            if n > 0 {
                metrics
                    .feature_values
                    .with_label_values(&[view, field, status])
                    .inc_by(n);
            }
        }
    }
}
