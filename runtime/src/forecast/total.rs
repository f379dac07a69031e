//! A forecaster's total demand over several days when it gives only daily quantiles:
//! the daily forecast at two levels, and the forecaster's response to an error (how its
//! forecast of the later days moves when day 1 comes in above or below its mean), for
//! `replenish::approx` to turn into a distribution.

use super::{Forecast, Forecaster, Series, add_days};
use crate::replenish::Demand;
use crate::{Result, RuntimeError};

/// The default [`Forecaster::total_demand`].
pub(super) fn approximate<F: Forecaster + ?Sized>(
    forecaster: &F,
    series: &Series<'_>,
    days: usize,
) -> Result<Demand> {
    DailyTotals::new(forecaster, series, days)?.over(days)
}

/// A daily forecast and the forecaster's response to an error, over up to `days` days:
/// the total over any number of its first days without forecasting again (a policy
/// weighing several lead times asks for many).
#[derive(Debug, Clone)]
pub struct DailyTotals {
    mean: Vec<f64>,
    q_lo: Vec<f64>,
    q_hi: Vec<f64>,
    lo: f64,
    hi: f64,
    response: Vec<f64>,
}

impl DailyTotals {
    /// Forecasts `days` days (two levels, and the two rows of the response).
    pub fn new<F: Forecaster + ?Sized>(
        forecaster: &F,
        series: &Series<'_>,
        days: usize,
    ) -> Result<DailyTotals> {
        let (lo, hi) = match forecaster.quantile_range() {
            Some((lo, hi)) => (lo.max(0.1).min(hi), hi.min(0.9).max(lo)),
            None => (0.1, 0.9),
        };
        if lo >= hi {
            return Err(RuntimeError::input(
                "model_name",
                "the forecaster gives no spread to size total demand from",
            ));
        }
        if days == 0 {
            return Ok(DailyTotals {
                mean: Vec::new(),
                q_lo: Vec::new(),
                q_hi: Vec::new(),
                lo,
                hi,
                response: Vec::new(),
            });
        }
        let mut daily = forecaster.forecast(series, days, &[lo, hi])?;
        let (Some(q_hi), Some(q_lo)) = (daily.quantiles.pop(), daily.quantiles.pop()) else {
            return Err(RuntimeError::Signature(
                "a forecast without its two levels".into(),
            ));
        };
        if q_lo.len() != days || q_hi.len() != days || daily.mean.len() != days {
            return Err(RuntimeError::Signature(format!(
                "a forecast of {days} days with {} means and {} and {} quantiles",
                daily.mean.len(),
                q_lo.len(),
                q_hi.len()
            )));
        }
        let response = if days > 1 {
            let spread = crate::replenish::approx::daily_spread(q_lo[0], q_hi[0], lo, hi);
            error_response(forecaster, series, &daily, spread)?
        } else {
            Vec::new()
        };
        Ok(DailyTotals {
            mean: daily.mean,
            q_lo,
            q_hi,
            lo,
            hi,
            response,
        })
    }

    /// The total over the first `days` days (0: none).
    pub fn over(&self, days: usize) -> Result<Demand> {
        if days > self.mean.len() {
            return Err(RuntimeError::Signature(format!(
                "a total over {days} days from a forecast of {}",
                self.mean.len()
            )));
        }
        if days == 0 {
            return Ok(Demand::normal(0.0, 0.0));
        }
        Ok(crate::replenish::approx::total_from_daily(
            &self.mean[..days],
            &self.q_lo[..days],
            &self.q_hi[..days],
            self.lo,
            self.hi,
            &self.response[..days - 1],
        ))
    }
}

/// How the forecast of the days after day 1 moves per unit that day 1 comes in above
/// its mean: the forecasts from the history with day 1 appended, `spread` (day 1's
/// deviation; 1 unit when it has none) above its mean and below it (never below 0),
/// their difference over the two values'. One entry per later day.
pub(crate) fn error_response<F: Forecaster + ?Sized>(
    forecaster: &F,
    series: &Series<'_>,
    daily: &Forecast,
    spread: f64,
) -> Result<Vec<f64>> {
    let days = daily.mean.len();
    let mean = daily.mean[0];
    let shock = if spread > 0.0 { spread } else { 1.0 };
    let (up, down) = (mean + shock, (mean - shock).max(0.0));
    let with = |day1: f64| [series.values, &[day1]].concat();
    let (up_values, down_values) = (with(up), with(down));
    let last_date = match series.last_date {
        Some(d) => Some(add_days(d, 1)?),
        None => None,
    };
    let next = |values| Series {
        key: series.key,
        values,
        last_date,
    };
    let mut after = forecaster
        .forecast_batch(&[next(&up_values), next(&down_values)], days - 1, &[])
        .into_iter();
    let (Some(high), Some(low)) = (after.next(), after.next()) else {
        return Err(RuntimeError::Signature(
            "a batch forecast without its rows".into(),
        ));
    };
    let (high, low) = (high?, low?);
    Ok(high
        .mean
        .iter()
        .zip(&low.mean)
        .map(|(a, b)| (a - b) / (up - down))
        .collect())
}
