//! The statistics of live quality, each defined as the named reference computes it (the
//! integration test checks them against scikit-learn on the same numbers):
//!
//! - AUC: `sklearn.metrics.roc_auc_score` (the Mann-Whitney statistic, ties counted half);
//! - Brier: `brier_score_loss`; log loss: `log_loss` (probabilities clipped to
//!   `[eps, 1 - eps]`, eps the float64 machine epsilon, as scikit-learn does since 1.5);
//! - calibration: `sklearn.calibration.calibration_curve(n_bins=10, strategy="uniform")`
//!   (bin `i` holds `(i/10, (i+1)/10]`, the first also 0), with each bin's count;
//! - WAPE: `Σ|actual − mean| / Σ|actual|`; MAE: `mean_absolute_error`; pinball:
//!   `mean_pinball_loss(alpha=level)`; coverage: the share of actuals within the lowest and
//!   highest quantile, ends included.
//! - Qini: `sklift.metrics.qini_auc_score` (scikit-uplift 0.5, `negative_effect=True`):
//!   the area between the Qini curve and the diagonal over the same area of the perfect
//!   curve (Radcliffe 2007, normalised as scikit-uplift does; other libraries divide by
//!   other things, so only scikit-uplift's numbers are comparable).

/// The difference of two proportions (treated minus control), its 95% interval and its
/// test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    /// `x1/n1 − x0/n0`.
    pub difference: f64,
    /// Newcombe's hybrid score interval (his method 10: Wilson intervals of each
    /// proportion combined), as `statsmodels.stats.proportion.
    /// confint_proportions_2indep(method="newcomb", compare="diff")`.
    pub lower: f64,
    /// Its upper bound.
    pub upper: f64,
    /// The pooled two-proportion z statistic, as `proportions_ztest`; `None` when every
    /// outcome is the same (no variance to test against).
    pub z: Option<f64>,
    /// Its two-sided p-value.
    pub p_value: Option<f64>,
}

/// The 97.5th percentile of the standard normal (`scipy.stats.norm.ppf(0.975)`).
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's score interval of `x` successes in `n`.
fn wilson(x: f64, n: f64) -> (f64, f64) {
    let p = x / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    (center - half, center + half)
}

/// Treated `x1` of `n1` against control `x0` of `n0`; `None` when a group is empty.
pub fn two_proportions(x1: u64, n1: u64, x0: u64, n0: u64) -> Option<Difference> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (x1, n1, x0, n0) = (x1 as f64, n1 as f64, x0 as f64, n0 as f64);
    let (p1, p0) = (x1 / n1, x0 / n0);
    let difference = p1 - p0;
    let ((l1, u1), (l0, u0)) = (wilson(x1, n1), wilson(x0, n0));
    let lower = difference - ((p1 - l1).powi(2) + (u0 - p0).powi(2)).sqrt();
    let upper = difference + ((u1 - p1).powi(2) + (p0 - l0).powi(2)).sqrt();
    let pooled = (x1 + x0) / (n1 + n0);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0)).sqrt();
    let z = (se > 0.0).then(|| difference / se);
    Some(Difference {
        difference,
        lower,
        upper,
        z,
        p_value: z.map(|z| statrs::function::erf::erfc(z.abs() / std::f64::consts::SQRT_2)),
    })
}

/// The Qini coefficient of `score` (higher: target first) over customers with the
/// favourable outcome `y` and `treated` or held out; `None` without both groups or when
/// the perfect curve is the diagonal (nothing to normalise by).
pub fn qini_auc(y: &[bool], score: &[f64], treated: &[bool]) -> Option<f64> {
    let n = y.len().min(score.len()).min(treated.len());
    let (y, score, treated) = (&y[..n], &score[..n], &treated[..n]);
    let n_treated = treated.iter().filter(|&&t| t).count();
    if n_treated == 0 || n_treated == n {
        return None;
    }
    // The perfect ranking: treated successes first, control successes last.
    let perfect: Vec<f64> = y
        .iter()
        .zip(treated)
        .map(|(&y, &t)| match (y, t) {
            (true, true) => 1.0,
            (true, false) => -1.0,
            _ => 0.0,
        })
        .collect();
    let actual = qini_area(y, score, treated);
    let best = qini_area(y, &perfect, treated);
    let (last_x, last_y) = qini_end(y, treated);
    let diagonal = last_x * last_y / 2.0;
    let denominator = best - diagonal;
    (denominator != 0.0).then(|| (actual - diagonal) / denominator)
}

/// Where every Qini curve of these customers ends: all of them, and the treated
/// successes less the control successes scaled to the treated group's size.
fn qini_end(y: &[bool], treated: &[bool]) -> (f64, f64) {
    let count = |t: bool, success: bool| {
        y.iter()
            .zip(treated)
            .filter(|&(&y, &tr)| tr == t && (y || !success))
            .count() as f64
    };
    let (nt, nc) = (count(true, false), count(false, false));
    (
        y.len() as f64,
        count(true, true) - count(false, true) * nt / nc,
    )
}

/// The trapezoidal area under the Qini curve of `score`: customers taken by descending
/// score, a point at the end of each run of equal scores (ties enter together), from
/// the origin.
fn qini_area(y: &[bool], score: &[f64], treated: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut nt, mut yt, mut yc) = (0.0f64, 0.0f64, 0.0f64);
    let (mut x0, mut v0, mut area) = (0.0f64, 0.0f64, 0.0f64);
    for (k, &i) in order.iter().enumerate() {
        if treated[i] {
            nt += 1.0;
            yt += f64::from(u8::from(y[i]));
        } else {
            yc += f64::from(u8::from(y[i]));
        }
        let last_of_run = order.get(k + 1).is_none_or(|&j| score[j] != score[i]);
        if last_of_run {
            let x = (k + 1) as f64;
            let nc = x - nt;
            let v = yt - if nc != 0.0 { yc * nt / nc } else { 0.0 };
            area += (x - x0) * (v + v0) / 2.0;
            (x0, v0) = (x, v);
        }
    }
    area
}

/// A bin of the calibration curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Bin {
    /// Its lower edge.
    pub lower: f64,
    /// Its upper edge.
    pub upper: f64,
    /// Predictions in it.
    pub count: u64,
    /// Their mean probability.
    pub mean_predicted: f64,
    /// The share of them whose outcome was 1.
    pub observed: f64,
}

/// The area under the ROC curve of scores `p` against labels `y` (0 or 1); `None` with
/// only one class.
pub fn auc(p: &[f64], y: &[bool]) -> Option<f64> {
    let positives = y.iter().filter(|&&v| v).count();
    let negatives = y.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    // Ranks from 1, ties sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && p[order[j + 1]] == p[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += average * order[i..=j].iter().filter(|&&k| y[k]).count() as f64;
        i = j + 1;
    }
    let (n1, n0) = (positives as f64, negatives as f64);
    Some((rank_sum - n1 * (n1 + 1.0) / 2.0) / (n1 * n0))
}

/// The mean squared difference between probability and outcome.
pub fn brier(p: &[f64], y: &[bool]) -> f64 {
    mean(
        p.iter()
            .zip(y)
            .map(|(&p, &y)| (p - f64::from(u8::from(y))).powi(2)),
    )
}

/// The mean negative log-likelihood of the outcomes.
pub fn log_loss(p: &[f64], y: &[bool]) -> f64 {
    let eps = f64::EPSILON;
    mean(p.iter().zip(y).map(|(&p, &y)| {
        let p = p.clamp(eps, 1.0 - eps);
        if y { -p.ln() } else { -(1.0 - p).ln() }
    }))
}

/// Ten equal-width bins of the probability, the empty ones left out.
pub fn calibration(p: &[f64], y: &[bool]) -> Vec<Bin> {
    const BINS: usize = 10;
    let mut sums = [(0u64, 0.0f64, 0u64); BINS];
    for (&p, &y) in p.iter().zip(y) {
        // searchsorted(edges[1:-1], p, side="left"): the first inner edge >= p.
        let bin = (1..BINS)
            .position(|e| p <= e as f64 / BINS as f64)
            .unwrap_or(BINS - 1);
        sums[bin].0 += 1;
        sums[bin].1 += p;
        sums[bin].2 += u64::from(y);
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(i, &(n, sum, positives))| Bin {
            lower: i as f64 / BINS as f64,
            upper: (i + 1) as f64 / BINS as f64,
            count: n,
            mean_predicted: sum / n as f64,
            observed: positives as f64 / n as f64,
        })
        .collect()
}

/// `Σ|actual − predicted| / Σ|actual|`; `None` when every actual is 0.
pub fn wape(actual: &[f64], predicted: &[f64]) -> Option<f64> {
    let total: f64 = actual.iter().map(|a| a.abs()).sum();
    (total > 0.0).then(|| {
        actual
            .iter()
            .zip(predicted)
            .map(|(a, p)| (a - p).abs())
            .sum::<f64>()
            / total
    })
}

/// The mean absolute error.
pub fn mae(actual: &[f64], predicted: &[f64]) -> f64 {
    mean(actual.iter().zip(predicted).map(|(a, p)| (a - p).abs()))
}

/// The mean pinball loss of quantile `level`'s predictions.
pub fn pinball(actual: &[f64], quantile: &[f64], level: f64) -> f64 {
    mean(actual.iter().zip(quantile).map(|(a, q)| {
        let d = a - q;
        if d >= 0.0 {
            level * d
        } else {
            (level - 1.0) * d
        }
    }))
}

/// The mean of `values` (0 for none).
pub fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scikit-learn 1.7 on the same numbers.
    const P: [f64; 8] = [0.1, 0.4, 0.35, 0.8, 0.4, 0.95, 0.05, 0.6];
    const Y: [bool; 8] = [false, false, true, true, true, true, false, false];

    #[test]
    fn binary_statistics_equal_scikit_learn() {
        // roc_auc_score([0,0,1,1,1,1,0,0], P) = 0.78125 (the two 0.4s tie).
        assert!((auc(&P, &Y).expect("two classes") - 0.78125).abs() < 1e-12);
        assert_eq!(auc(&P, &[true; 8]), None);
        // brier_score_loss = 0.1696875, log_loss = 0.4780399834700145
        assert!((brier(&P, &Y) - 0.1696875).abs() < 1e-12);
        assert!((log_loss(&P, &Y) - 0.4780399834700145).abs() < 1e-12);
        assert!(log_loss(&[0.0, 1.0], &[true, false]).is_finite());
    }

    #[test]
    fn calibration_bins_close_on_the_right_as_searchsorted_left() {
        let bins = calibration(
            &[0.0, 0.1, 0.15, 0.2, 1.0],
            &[false, true, false, true, true],
        );
        let counts: Vec<(f64, u64)> = bins.iter().map(|b| (b.lower, b.count)).collect();
        assert_eq!(counts, [(0.0, 2), (0.1, 2), (0.9, 1)]);
        assert!((bins[0].observed - 0.5).abs() < 1e-12);
        assert!((bins[1].mean_predicted - 0.175).abs() < 1e-12);
    }

    #[test]
    fn two_proportions_equal_statsmodels() {
        // confint_proportions_2indep(c1, n1, c2, n2, method="newcomb", compare="diff")
        // and proportions_ztest([c1, c2], [n1, n2]), statsmodels 0.14.5.
        for ((x1, n1, x0, n0), lower, upper, z, p) in [
            (
                (30, 100, 45, 110),
                -0.23278267762770347,
                0.020556446255100835,
                -1.6477716817422,
                0.09939953216165574,
            ),
            (
                (5, 40, 12, 38),
                -0.364467858229081,
                -0.006019770858861878,
                -2.0400185996506925,
                0.041348473238812605,
            ),
            (
                (0, 20, 3, 25),
                -0.2995579392092733,
                0.05915689189369627,
                -1.6035674514745462,
                0.10880943004054568,
            ),
            (
                (120, 1000, 150, 1000),
                -0.06000825857012657,
                -1.3782434204051563e-05,
                -1.963049807622355,
                0.04964038686536878,
            ),
        ] {
            let d = two_proportions(x1, n1, x0, n0).expect("both groups");
            for (got, want) in [
                (d.lower, lower),
                (d.upper, upper),
                (d.z.expect("z"), z),
                (d.p_value.expect("p"), p),
            ] {
                // statrs' erfc and scipy's agree to about 1e-11.
                assert!(
                    (got - want).abs() < 1e-10,
                    "{x1}/{n1} vs {x0}/{n0}: {got} vs {want}"
                );
            }
        }
        assert_eq!(two_proportions(1, 0, 1, 2), None);
        assert_eq!(two_proportions(0, 5, 0, 5).expect("groups").z, None);
    }

    #[test]
    fn qini_equals_scikit_uplift() {
        // sklift.metrics.qini_auc_score(y, s, t), scikit-uplift 0.5.1.
        let b = |v: &[u8]| v.iter().map(|&x| x == 1).collect::<Vec<bool>>();
        let got = qini_auc(
            &b(&[1, 0, 1, 1, 0, 1, 0, 0, 1, 1]),
            &[0.3, 0.1, 0.3, 0.9, -0.2, 0.5, 0.5, 0.0, 0.7, 0.1],
            &b(&[1, 0, 0, 1, 1, 1, 0, 0, 1, 0]),
        );
        assert!((got.expect("both groups") - 0.5199999999999999).abs() < 1e-12);
        // Ties enter together.
        let got = qini_auc(
            &b(&[0, 1, 1, 0, 1, 0, 1, 1]),
            &[0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1],
            &b(&[1, 1, 0, 0, 1, 0, 1, 0]),
        );
        assert!((got.expect("both groups") - -0.14814814814814814).abs() < 1e-12);
        assert_eq!(qini_auc(&[true, false], &[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn forecast_statistics() {
        let actual = [10.0, 0.0, 5.0];
        let mean_ = [8.0, 1.0, 5.0];
        assert!((wape(&actual, &mean_).expect("some sales") - 0.2).abs() < 1e-12);
        assert!((mae(&actual, &mean_) - 1.0).abs() < 1e-12);
        // mean_pinball_loss(actual, [9, 2, 7], alpha=0.9) = (0.9 + 0.1*2 + 0.1*2) / 3
        assert!((pinball(&actual, &[9.0, 2.0, 7.0], 0.9) - 1.3 / 3.0).abs() < 1e-12);
        assert_eq!(wape(&[0.0], &[1.0]), None);
    }
}
