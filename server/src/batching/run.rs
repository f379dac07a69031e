//! Running one batch: which requests can share an execution, and each request's answer
//! from it. Inferences are stacked along the batch dimension and the outputs split back by
//! rows; forecasts go to the forecaster's `forecast_batch` together. A lone request runs
//! as it came; a merged inference that fails runs again request by request, so one bad
//! request fails alone.

use mercator_runtime::Tensor;
use mercator_runtime::forecast::Series;

use super::{Job, Output, Runner, Work};

type Answer = mercator_runtime::Result<Output>;

/// Whether two requests can share an execution: inferences asking for the same outputs
/// with inputs of the same types and inner dimensions; forecasts of the same horizon and
/// quantiles.
pub(super) fn compatible(a: &Job, b: &Job) -> bool {
    match (&a.work, &b.work) {
        (
            Work::Infer {
                inputs: x,
                wanted: wx,
            },
            Work::Infer {
                inputs: y,
                wanted: wy,
            },
        ) => {
            wx == wy
                && x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    p.dtype() == q.dtype()
                        && !p.shape.is_empty()
                        && p.shape.get(1..) == q.shape.get(1..)
                })
        }
        (Work::Forecast(x), Work::Forecast(y)) => {
            x.horizon == y.horizon && x.quantiles == y.quantiles
        }
        _ => false,
    }
}

/// Each request's answer, in order.
pub(super) fn compute(runner: &Runner, batch: &[Job]) -> Vec<Answer> {
    match batch.first().map(|j| &j.work) {
        None => Vec::new(),
        Some(Work::Forecast(_)) => forecasts(runner, batch),
        Some(Work::Infer { .. }) => {
            if let [job] = batch {
                return vec![alone(runner, job)];
            }
            match merged(runner, batch) {
                Ok(answers) => answers.into_iter().map(|o| Ok(Output::Infer(o))).collect(),
                Err(e) => {
                    tracing::debug!(error = %e, requests = batch.len(), "merged batch failed; running each alone");
                    batch.iter().map(|job| alone(runner, job)).collect()
                }
            }
        }
    }
}

fn alone(runner: &Runner, job: &Job) -> Answer {
    match &job.work {
        Work::Infer { inputs, wanted } => {
            infer(runner, inputs, wanted, job.rows).map(Output::Infer)
        }
        Work::Forecast(_) => forecasts(runner, std::slice::from_ref(job))
            .pop()
            .unwrap_or_else(|| {
                Err(mercator_runtime::RuntimeError::Signature(
                    "no forecast".into(),
                ))
            }),
    }
}

/// The stacked inputs run once, the outputs split back by rows.
fn merged(runner: &Runner, batch: &[Job]) -> mercator_runtime::Result<Vec<Vec<Tensor>>> {
    let parts: Vec<(&Vec<Tensor>, &Vec<usize>)> = batch
        .iter()
        .filter_map(|j| match &j.work {
            Work::Infer { inputs, wanted } => Some((inputs, wanted)),
            Work::Forecast(_) => None,
        })
        .collect();
    let Some((first, wanted)) = parts.first().copied() else {
        return Ok(Vec::new());
    };
    let inputs = (0..first.len())
        .map(|i| Tensor::concat_rows(&parts.iter().map(|(x, _)| &x[i]).collect::<Vec<_>>()))
        .collect::<mercator_runtime::Result<Vec<_>>>()?;
    let rows: Vec<usize> = batch.iter().map(|j| j.rows).collect();
    let outputs = infer(runner, &inputs, wanted, rows.iter().sum())?;
    let mut answers: Vec<Vec<Tensor>> = batch
        .iter()
        .map(|_| Vec::with_capacity(outputs.len()))
        .collect();
    for output in &outputs {
        for (answer, part) in answers.iter_mut().zip(output.split_rows(&rows)?) {
            answer.push(part);
        }
    }
    Ok(answers)
}

/// One execution, recorded in the version's drift window.
fn infer(
    runner: &Runner,
    inputs: &[Tensor],
    wanted: &[usize],
    rows: usize,
) -> mercator_runtime::Result<Vec<Tensor>> {
    let outputs = runner.model.infer(inputs, wanted)?;
    if let Some(drift) = &runner.drift {
        drift.observe(inputs, wanted, &outputs, rows);
    }
    Ok(outputs)
}

/// The series of the batch forecast together (the caller records drift, as it does
/// for unbatched forecasts).
fn forecasts(runner: &Runner, batch: &[Job]) -> Vec<Answer> {
    let jobs: Vec<&super::SeriesJob> = batch
        .iter()
        .filter_map(|j| match &j.work {
            Work::Forecast(s) => Some(s),
            Work::Infer { .. } => None,
        })
        .collect();
    let Some(first) = jobs.first() else {
        return Vec::new();
    };
    let Some(forecaster) = runner.model.forecaster() else {
        let err =
            || mercator_runtime::RuntimeError::Signature("the model does not forecast".into());
        return batch.iter().map(|_| Err(err())).collect();
    };
    let series: Vec<Series<'_>> = jobs
        .iter()
        .map(|s| Series {
            key: &s.key,
            values: &s.values,
            last_date: s.last_date,
        })
        .collect();
    forecaster
        .forecast_batch(&series, first.horizon, &first.quantiles)
        .into_iter()
        .map(|r| r.map(Output::Forecast))
        .collect()
}
