//! The experiment report: for each runbook rule that holds out a control group, the
//! customers treated and held out, the share of each whose outcome came within the
//! model's window (judged only once it has passed), and the difference with its
//! interval and test ([`super::stats::two_proportions`]). A customer counts once per
//! experiment, on their first assignment in the window (a draw never changes, so later
//! scores would only count them again).
//!
//! Each experiment also gets the Qini coefficient ([`super::stats::qini_auc`]) of two
//! scores over its judged customers, with retention (no outcome in the window) as the
//! favourable outcome: the uplift its rows logged (from the runbook's uplift model) and
//! the churn risk. A randomised hold-out is what makes the Qini measurable: it says
//! whether a score ranks first the customers the action changes.

use std::collections::{BTreeMap, HashMap};

use super::logged::Logged;
use super::outcomes::Outcome;
use super::stats::{Difference, qini_auc, two_proportions};

/// One experiment's arms and their difference.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    /// Its name.
    pub experiment: String,
    /// The rule and the action it tests.
    pub rule: String,
    /// The action.
    pub action: String,
    /// Customers given the action, judged.
    pub treated: u64,
    /// Of them, those whose outcome came.
    pub treated_outcomes: u64,
    /// Customers held out, judged.
    pub control: u64,
    /// Of them, those whose outcome came.
    pub control_outcomes: u64,
    /// Customers not yet judged (their window still open).
    pub pending: u64,
    /// Treated rate minus control rate, with its interval and test (none until both
    /// arms have judged customers).
    pub difference: Option<Difference>,
    /// What one action costs, when the manifest prices it (`action_costs`).
    pub cost: Option<f64>,
    /// What each customer the action kept cost: the cost over the fall in the outcome
    /// rate (cost × treated / customers kept); none unless the rate fell.
    pub cost_per_retained: Option<f64>,
    /// The Qini coefficient of the logged uplift (none when a judged row has none).
    pub qini_uplift: Option<f64>,
    /// The Qini coefficient of the churn probability.
    pub qini_risk: Option<f64>,
}

/// One judged customer of an experiment, for the Qini.
#[derive(Debug, Default)]
struct Judged {
    retained: Vec<bool>,
    treated: Vec<bool>,
    risk: Vec<f64>,
    uplift: Vec<Option<f64>>,
}

impl Judged {
    fn qini(&self) -> (Option<f64>, Option<f64>) {
        let uplift: Option<Vec<f64>> = self.uplift.iter().copied().collect();
        (
            uplift.and_then(|u| qini_auc(&self.retained, &u, &self.treated)),
            qini_auc(&self.retained, &self.risk, &self.treated),
        )
    }
}

impl Experiment {
    /// Prices the experiment at `cost` per action.
    pub fn priced(mut self, cost: Option<f64>) -> Experiment {
        self.cost = cost;
        self.cost_per_retained = match (cost, self.difference) {
            (Some(c), Some(d)) if d.difference < 0.0 => Some(c / -d.difference),
            _ => None,
        };
        self
    }
}

/// The experiments in `rows`, judged against `outcomes` with `window` at `now`.
pub fn report(rows: &[Logged], outcomes: &[Outcome], window: i64, now: i64) -> Vec<Experiment> {
    let mut by_entity: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    for o in outcomes {
        by_entity.entry(o.entity.as_str()).or_default().push(o);
    }
    // Each customer's first assignment per experiment.
    let mut first: BTreeMap<(&str, &str), &Logged> = BTreeMap::new();
    for row in rows {
        let (Some(experiment), Some(_)) = (row.experiment.as_deref(), row.control) else {
            continue;
        };
        let slot = first
            .entry((experiment, row.entity.as_str()))
            .or_insert(row);
        if row.time_micros < slot.time_micros {
            *slot = row;
        }
    }
    let mut experiments: BTreeMap<&str, Experiment> = BTreeMap::new();
    let mut judged: BTreeMap<&str, Judged> = BTreeMap::new();
    for ((experiment, _), row) in first {
        let e = experiments.entry(experiment).or_insert_with(|| Experiment {
            experiment: experiment.to_string(),
            rule: row.rule.clone().unwrap_or_default(),
            action: row.action.clone().unwrap_or_default(),
            treated: 0,
            treated_outcomes: 0,
            control: 0,
            control_outcomes: 0,
            pending: 0,
            difference: None,
            cost: None,
            cost_per_retained: None,
            qini_uplift: None,
            qini_risk: None,
        });
        let Some(happened) = super::judge::churned(row, &by_entity, window, now) else {
            e.pending += 1;
            continue;
        };
        if row.control == Some(true) {
            e.control += 1;
            e.control_outcomes += u64::from(happened);
        } else {
            e.treated += 1;
            e.treated_outcomes += u64::from(happened);
        }
        let j = judged.entry(experiment).or_default();
        j.retained.push(!happened);
        j.treated.push(row.control != Some(true));
        j.risk.push(row.probability.unwrap_or(f64::NAN));
        j.uplift.push(row.uplift.filter(|u| u.is_finite()));
    }
    experiments
        .into_iter()
        .map(|(name, mut e)| {
            e.difference =
                two_proportions(e.treated_outcomes, e.treated, e.control_outcomes, e.control);
            if let Some(j) = judged.get(name) {
                (e.qini_uplift, e.qini_risk) = j.qini();
            }
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_counts_once_on_their_first_assignment_and_only_once_judged() {
        let row = |entity: &str, time: i64, control: bool| Logged {
            entity: entity.into(),
            time_micros: time,
            probability: Some(0.5),
            rule: Some("r".into()),
            action: Some("a".into()),
            control: Some(control),
            experiment: Some("r:a:0.5".into()),
            ..Default::default()
        };
        let rows = [
            row("t1", 0, false),
            row("t1", 5, false), // again: not counted twice
            row("t2", 0, false),
            row("c1", 0, true),
            row("c2", 0, true),
            row("young", 95, true), // its window still open at 100
        ];
        let churned = |entity: &str, time: i64| Outcome {
            entity: entity.into(),
            time_micros: time,
            value: Some(1.0),
            label: None,
        };
        let got = report(&rows, &[churned("c1", 3), churned("t2", 4)], 10, 100);
        let [e] = got.as_slice() else {
            panic!("one experiment: {got:?}");
        };
        assert_eq!(
            (
                e.treated,
                e.treated_outcomes,
                e.control,
                e.control_outcomes,
                e.pending
            ),
            (2, 1, 2, 1, 1)
        );
        assert_eq!(e.difference.map(|d| d.difference), Some(0.0));
        assert_eq!(
            e.clone().priced(Some(4.0)).cost_per_retained,
            None,
            "nobody kept"
        );
        let kept = Experiment {
            difference: super::two_proportions(1, 10, 3, 10),
            ..e.clone()
        }
        .priced(Some(4.0));
        // The rate fell by 0.2: five actions for each customer kept.
        assert!((kept.cost_per_retained.expect("kept some") - 20.0).abs() < 1e-12);
    }
}
