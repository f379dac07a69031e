//! A series' sales history: sent inline and checked, or read from the feature store
//! through the version's `history` binding; and how a forecaster's refusal of one is
//! reported (the caller's fault inline, the deployment's when stored).

use super::types;
use chrono::NaiveDate;
use mercator_features::{Status as FeatureStatus, Value};
use mercator_runtime::RuntimeError;
use mercator_runtime::forecast;
use mercator_runtime::manifest::sections::HistoryBinding;

use super::key_of;
use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::serving::Serving;

/// A series' recent sales.
/// A series' recent sales.
#[derive(Debug, Clone)]
pub(super) struct History {
    pub(super) values: Vec<f64>,
    pub(super) last_date: NaiveDate,
}

/// The version's history binding, checked at registration and load.
fn binding(loaded: &LoadedModel) -> Result<&HistoryBinding, ServeError> {
    loaded.sections.history.as_ref().ok_or_else(|| {
        ServeError::FailedPrecondition(format!(
            "model '{}' version {} has no 'history' section naming a feature view: send the \
             history inline",
            loaded.name, loaded.version
        ))
    })
}

/// The store keys of `series`, checked against the history view's entity; errors name
/// `series` (one) or `series[i]` (a batch).
pub(super) fn store_keys(
    serving: &Serving,
    loaded: &LoadedModel,
    series: &[types::SeriesId],
    batch: bool,
) -> Result<Vec<Vec<String>>, ServeError> {
    let parts =
        crate::serving::lookup::entity_keys(&serving.features, binding(loaded)?.view())?.len();
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let field = if batch {
                format!("series[{i}]")
            } else {
                "series".to_string()
            };
            key_of(s, parts, &field)
        })
        .collect()
}

/// Reads the histories of the series with these store keys: one result per key, in order.
pub(super) async fn read_histories(
    serving: &Serving,
    loaded: &LoadedModel,
    keys: &[Vec<String>],
) -> Result<Vec<Result<History, ServeError>>, ServeError> {
    let b = binding(loaded)?;
    let refs = [b.values.clone(), b.last_date.clone()];
    let got = crate::serving::lookup::read_features(
        &serving.features,
        &serving.metrics,
        loaded,
        "history",
        &refs,
        keys,
        chrono::Utc::now().timestamp_micros(),
    )
    .await?;
    Ok(got
        .into_iter()
        .zip(keys)
        .map(|(mut row, key)| {
            let label = key.join("/");
            let last = row.pop();
            let values = row.pop();
            match (values, last) {
                (
                    Some((Some(Value::Float32List(v)), FeatureStatus::Present)),
                    Some((Some(Value::String(d)), FeatureStatus::Present)),
                ) => {
                    let last_date = forecast::parse_date(&d).ok_or_else(|| {
                        ServeError::FailedPrecondition(format!(
                            "series {label}: {} is '{d}', not a YYYY-MM-DD date",
                            b.last_date
                        ))
                    })?;
                    Ok(History {
                        values: v.into_iter().map(f64::from).collect(),
                        last_date,
                    })
                }
                (Some((_, FeatureStatus::Missing)), _) | (_, Some((_, FeatureStatus::Missing))) => {
                    Err(ServeError::NotFound(format!(
                        "series {label} has no sales history in view '{}'",
                        b.view()
                    )))
                }
                (Some((_, FeatureStatus::Expired)), _) | (_, Some((_, FeatureStatus::Expired))) => {
                    Err(ServeError::FailedPrecondition(format!(
                        "series {label}: its sales history in view '{}' is older than the \
                         view's TTL",
                        b.view()
                    )))
                }
                _ => Err(ServeError::FailedPrecondition(format!(
                    "series {label}: {} must be a float32_list and {} a string",
                    b.values, b.last_date
                ))),
            }
        })
        .collect())
}

/// An inline history, checked: values finite, a date, at most `max_days` of them.
pub(super) fn inline_history(
    h: types::SentHistory,
    max_days: usize,
) -> Result<History, ServeError> {
    let types::SentHistory { values, last_date } = h;
    if values.is_empty() {
        return Err(ServeError::invalid(
            "history.values",
            "give at least one day",
        ));
    }
    crate::api::cap(
        "history.values",
        values.len(),
        "limits.max_history_days",
        max_days,
        "days",
    )?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ServeError::invalid(
            format!("history.values[{i}]"),
            "must be a finite number (a day without sales is 0)",
        ));
    }
    let last_date = forecast::parse_date(&last_date).ok_or_else(|| {
        ServeError::invalid(
            "history.last_date",
            format!("'{last_date}' is not a YYYY-MM-DD date"),
        )
    })?;
    Ok(History { values, last_date })
}

/// A forecaster's refusal of a series' history. Inline histories are the caller's
/// (INVALID_ARGUMENT); stored ones are the deployment's (FAILED_PRECONDITION).
pub(super) fn history_error(e: RuntimeError, label: &str, inline: bool) -> ServeError {
    match e {
        RuntimeError::InvalidInput { input, message } if inline => {
            let field = if input == forecast::LAST_DATE_INPUT {
                "history.last_date"
            } else {
                "history.values"
            };
            ServeError::invalid(field, message)
        }
        RuntimeError::InvalidInput { message, .. } => ServeError::FailedPrecondition(format!(
            "series {label}: the stored history cannot be forecast: {message}"
        )),
        other => other.into(),
    }
}
