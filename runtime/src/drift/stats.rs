//! The drift statistics, exactly as `runtime/tests/fixtures/drift/drift_reference.py`
//! computes them with numpy (the test holds the two to 1e-9):
//!
//! - **Bins** of a numeric feature: the reference's edges e₁ < … < eₖ make k + 1 bins,
//!   right-closed: a value v falls in bin i = #{edges < v} (numpy's
//!   `searchsorted(edges, v, side="left")`), so bin i holds (eᵢ, eᵢ₊₁].
//! - **PSI** over bins with reference shares p and live shares q, both floored at ε:
//!   Σ (q′ − p′) · ln(q′ / p′), with p′ = max(p, ε) and q′ = max(q, ε) (not renormalised).
//! - **KS**: the two-sample Kolmogorov–Smirnov statistic sup |F_live − F_ref| between the
//!   live values' empirical CDF and the reference sample's (scipy's `ks_2samp` statistic).
//! - **Jensen–Shannon distance** between category shares: √(½ KL(P‖M) + ½ KL(Q‖M)),
//!   M = (P + Q) / 2, in bits (so within [0, 1]); 0 · log 0 = 0.
//!
//! Null values (NaN, or a missing category) are left out of all of these and measured by
//! the null rate instead.

/// numpy's default (`linear`) quantile of sorted, non-empty `sorted` at `p` in [0, 1].
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Bin edges at the `bins`-quantiles of sorted, non-empty values, strictly increasing
/// (a repeated edge, from a value many rows share, is kept once).
pub fn edges(sorted: &[f64], bins: usize) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
    for k in 1..bins {
        let e = quantile(sorted, k as f64 / bins as f64);
        if out.last().is_none_or(|&last| e > last) {
            out.push(e);
        }
    }
    out
}

/// The bin of `v` among `edges` (see the module docs).
pub fn bin_of(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e < v)
}

/// Shares of `counts` in their total (all zeros for a zero total).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// Population stability index of live shares `q` against reference shares `p`.
pub fn psi(p: &[f64], q: &[f64], epsilon: f64) -> f64 {
    p.iter()
        .zip(q)
        .map(|(&p, &q)| {
            let (p, q) = (p.max(epsilon), q.max(epsilon));
            (q - p) * (q / p).ln()
        })
        .sum()
}

/// Two-sample KS statistic between sorted, non-empty `a` and `b`.
pub fn ks(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        // Step past every copy of the smaller value in both samples at once, so ties
        // count on both sides before the CDFs are compared.
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / na - j as f64 / nb).abs());
    }
    d
}

/// Jensen–Shannon distance (base 2) between two share vectors.
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let kl = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let divergence: f64 = p
        .iter()
        .zip(q)
        .map(|(&p, &q)| {
            let m = (p + q) / 2.0;
            0.5 * kl(p, m) + 0.5 * kl(q, m)
        })
        .sum();
    divergence.max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 4.0, 8.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 8.0);
        // h = 3 · 0.5 = 1.5: halfway between 2 and 4.
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn repeated_edges_are_kept_once_and_bins_are_right_closed() {
        let v: Vec<f64> = [0.0; 8].into_iter().chain([1.0, 2.0]).collect();
        // h = 0.9k: deciles 1-7 fall among the zeros, the 8th at 0.2, the 9th at 1.1.
        let got = edges(&v, 10);
        assert_eq!(got.len(), 3, "{got:?}");
        for (g, want) in got.iter().zip([0.0, 0.2, 1.1]) {
            assert!((g - want).abs() < 1e-12, "{got:?}");
        }
        let e = [0.0, 1.0];
        assert_eq!(bin_of(&e, -1.0), 0);
        assert_eq!(bin_of(&e, 0.0), 0);
        assert_eq!(bin_of(&e, 0.5), 1);
        assert_eq!(bin_of(&e, 1.0), 1);
        assert_eq!(bin_of(&e, 1.5), 2);
    }

    #[test]
    fn identical_distributions_do_not_drift() {
        let p = [0.25, 0.25, 0.5];
        assert_eq!(psi(&p, &p, 1e-4), 0.0);
        assert_eq!(js_distance(&p, &p), 0.0);
        let a = [1.0, 2.0, 3.0];
        assert_eq!(ks(&a, &a), 0.0);
    }

    #[test]
    fn disjoint_distributions_drift_fully() {
        assert!((js_distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(ks(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        // An empty live bin is floored at ε rather than making PSI infinite.
        let p = psi(&[0.5, 0.5], &[1.0, 0.0], 1e-4);
        assert!(p.is_finite() && p > 1.0, "{p}");
    }

    #[test]
    fn ks_counts_ties_on_both_sides() {
        // F_a and F_b after 1: 2/3 and 1/2; after 2: 1 and 1.
        assert!((ks(&[1.0, 1.0, 2.0], &[1.0, 2.0]) - (2.0 / 3.0 - 0.5)).abs() < 1e-12);
    }
}
