//! The dates of forecast points, formatted once per history end date.

use super::types;
use chrono::NaiveDate;
use mercator_runtime::forecast::{self, Forecast};

use crate::error::ServeError;

/// The dates of the days after `last`, as text: formatted once per history end date
/// and shared by every series of a chunk that ends on it (most do), since formatting
/// costs more than the forecast arithmetic of a day.
#[derive(Debug, Default)]
pub(super) struct DateLabels {
    by_last_date: Vec<(NaiveDate, Vec<String>)>,
}

impl DateLabels {
    fn after(&mut self, last: NaiveDate, days: usize) -> Result<&[String], ServeError> {
        let at = match self
            .by_last_date
            .iter()
            .position(|(d, l)| *d == last && l.len() >= days)
        {
            Some(i) => i,
            None => {
                let labels = (1..=days as u64)
                    .map(|h| {
                        forecast::add_days(last, h)
                            .map(|d| d.format("%Y-%m-%d").to_string())
                            .map_err(|_| {
                                ServeError::invalid("history.last_date", "too far in the future")
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.by_last_date.push((last, labels));
                self.by_last_date.len() - 1
            }
        };
        Ok(&self.by_last_date[at].1[..days])
    }
}

/// The response points: one a day from the day after the history.
pub(super) fn points(
    f: &Forecast,
    last: NaiveDate,
    labels: &mut DateLabels,
) -> Result<Vec<types::ForecastPoint>, ServeError> {
    let dates = labels.after(last, f.mean.len())?;
    Ok(dates
        .iter()
        .enumerate()
        .map(|(h, date)| types::ForecastPoint {
            date: date.clone(),
            mean: f.mean[h],
            quantiles: f.quantiles.iter().map(|q| q[h]).collect(),
        })
        .collect())
}
