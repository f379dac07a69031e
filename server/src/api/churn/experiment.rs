//! Control groups: which customers a runbook rule holds out of its action. The draw is a
//! hash of the model, the rule's experiment and the customer id (xxHash64, fixed seed), so
//! every replica, every repeat call and every restart puts a customer on the same side,
//! and a new experiment (a new action or share, or a new name) draws afresh.

use std::hash::Hasher;

use twox_hash::XxHash64;

/// Fixed so that assignments never change between builds or processes.
const SEED: u64 = 0x6578_7065_7269_6d74;

/// Whether `customer` is in the control group of `experiment` of `model`, which holds out
/// `share` of the customers its rule matches.
pub fn in_control(model: &str, experiment: &str, customer: &str, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    let mut h = XxHash64::with_seed(SEED);
    for (i, part) in [model, experiment, customer].iter().enumerate() {
        if i > 0 {
            h.write(&[0x1f]);
        }
        h.write(part.as_bytes());
    }
    let position = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    position < share
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_share_holds_over_many_customers_within_three_sigma() {
        let n = 100_000;
        for share in [0.05, 0.1, 0.5] {
            let held = (0..n)
                .filter(|i| in_control("churn", "late:voucher:0.1", &format!("C{i:06}"), share))
                .count() as f64;
            let sigma = (n as f64 * share * (1.0 - share)).sqrt();
            assert!(
                (held - n as f64 * share).abs() < 3.0 * sigma,
                "{held} of {n} at {share}"
            );
        }
        assert!(!in_control("churn", "e", "C1", 0.0));
    }

    #[test]
    fn assignment_depends_on_model_experiment_and_customer_only() {
        let side = |m, e, c| in_control(m, e, c, 0.5);
        let customers: Vec<String> = (0..200).map(|i| format!("C{i}")).collect();
        let a: Vec<bool> = customers.iter().map(|c| side("churn", "x", c)).collect();
        let again: Vec<bool> = customers.iter().map(|c| side("churn", "x", c)).collect();
        assert_eq!(a, again);
        let other: Vec<bool> = customers.iter().map(|c| side("churn", "y", c)).collect();
        assert_ne!(a, other, "a new experiment draws afresh");
        // The values a build must keep: a customer's side never changes across releases.
        let pinned: Vec<bool> = (1..=12)
            .map(|i| in_control("churn", "x", &format!("C{i}"), 0.5))
            .collect();
        assert_eq!(
            pinned,
            [
                true, false, true, false, true, true, true, false, false, true, false, true
            ]
        );
    }
}
