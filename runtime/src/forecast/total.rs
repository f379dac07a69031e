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
    if days == 0 {
        return Ok(Demand::normal(0.0, 0.0));
    }
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
    let daily = forecaster.forecast(series, days, &[lo, hi])?;
    let (q_lo, q_hi) = match daily.quantiles.as_slice() {
        [a, b] => (a.as_slice(), b.as_slice()),
        _ => {
            return Err(RuntimeError::Signature(
                "a forecast without its two levels".into(),
            ));
        }
    };
    let response = if days > 1 {
        error_response(forecaster, series, &daily, q_lo[0], q_hi[0], lo, hi)?
    } else {
        Vec::new()
    };
    Ok(crate::replenish::approx::total_from_daily(
        &daily.mean,
        q_lo,
        q_hi,
        lo,
        hi,
        &response,
    ))
}

/// How the forecast of the days after day 1 moves per unit that day 1 comes in above
/// its mean: the forecasts from the history with day 1 appended, a spread above its
/// mean and a spread below (never below 0), their difference over the two values'.
/// One entry per later day.
pub(crate) fn error_response<F: Forecaster + ?Sized>(
    forecaster: &F,
    series: &Series<'_>,
    daily: &Forecast,
    q_lo: f64,
    q_hi: f64,
    lo: f64,
    hi: f64,
) -> Result<Vec<f64>> {
    let days = daily.mean.len();
    let mean = daily.mean[0];
    let spread = (q_hi - q_lo).max(0.0)
        / (crate::normal::normal_quantile(hi) - crate::normal::normal_quantile(lo));
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
