//! Demand over a number of days as a distribution: normal (the exact form for additive
//! models), gamma (never negative and skewed to the right, as count demand is: for totals
//! known by their mean and spread only), equally likely samples (simulated paths), or a
//! mixture over uncertain lead times. What a replenishment policy needs of it: quantiles, the CDF, and the expected
//! shortfall past a stock level, `E[(D − s)⁺]`.

pub use crate::normal::normal_cdf;
use crate::normal::normal_quantile;

/// A demand distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Demand {
    /// Normal with this mean and standard deviation (0: a point mass).
    Normal {
        /// Mean units.
        mean: f64,
        /// Standard deviation in units.
        sd: f64,
    },
    /// Gamma with this shape and scale (both > 0).
    Gamma {
        /// Shape `k`.
        shape: f64,
        /// Scale `θ`, in units.
        scale: f64,
    },
    /// Equally likely outcomes, ascending.
    Samples(Vec<f64>),
    /// Components with their probabilities (summing to 1), e.g. one per lead time.
    Mixture(Vec<(f64, Demand)>),
}

/// `P(a, x)`, the regularised lower incomplete gamma function, for `a > 0` (the
/// library asserts on arguments out of its domain, so they never reach it).
fn lower_gamma(a: f64, x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        0.0
    } else if x.is_infinite() {
        1.0
    } else if x < SMALL_X {
        small_x_lower_gamma(a, x)
    } else {
        statrs::function::gamma::gamma_lr(a, x)
    }
}

/// Below this the library answers 0 whatever the shape (wrong for small shapes, where
/// most of the mass sits this close to 0), so the leading terms of the series answer.
const SMALL_X: f64 = 1e-8;

/// `P(a, x) = x^a e^{−x} / Γ(a + 1) · (1 + x/(a + 1) + …)`, to double precision for
/// `x` below [`SMALL_X`].
fn small_x_lower_gamma(a: f64, x: f64) -> f64 {
    let lead = (a * x.ln() - x - statrs::function::gamma::ln_gamma(a + 1.0)).exp();
    (lead * (1.0 + x / (a + 1.0))).min(1.0)
}

/// `Q(a, x) = 1 − P(a, x)`, computed directly (precise in the upper tail).
fn upper_gamma(a: f64, x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        1.0
    } else if x.is_infinite() {
        0.0
    } else if x < SMALL_X {
        1.0 - small_x_lower_gamma(a, x)
    } else {
        statrs::function::gamma::gamma_ur(a, x)
    }
}

/// The level `p` of a unit-scale gamma of shape `a`: Newton's method on its CDF from
/// the Wilson–Hilferty guess, kept inside a bracket that shrinks with every step (a
/// halving when a step would leave it), so it converges at any shape in a few steps.
fn gamma_quantile(a: f64, p: f64) -> f64 {
    if lower_gamma(a, SMALL_X) >= p {
        // So close to 0 (a small shape) that the series' leading term is the CDF:
        // solved in closed form (0 where it is below the smallest f64).
        return ((p.ln() + statrs::function::gamma::ln_gamma(a + 1.0)) / a).exp();
    }
    let c = 1.0 / (9.0 * a);
    let guess = a * (1.0 - c + normal_quantile(p) * c.sqrt()).powi(3);
    let mut x = if guess.is_finite() && guess > 0.0 {
        guess
    } else {
        a
    };
    let (mut lo, mut hi) = (0.0, f64::INFINITY);
    let ln_norm = statrs::function::gamma::ln_gamma(a);
    for _ in 0..100 {
        let f = lower_gamma(a, x) - p;
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let density = ((a - 1.0) * x.ln() - x - ln_norm).exp();
        let mut next = x - f / density;
        if !(next > lo && next < hi) {
            next = if hi.is_finite() {
                0.5 * (lo + hi)
            } else {
                2.0 * x
            };
        }
        if (next - x).abs() <= 1e-13 * x || (hi.is_finite() && hi - lo <= 1e-13 * hi) {
            return next;
        }
        x = next;
    }
    x
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

impl Demand {
    /// A normal; a negative or non-finite deviation is taken as 0.
    pub fn normal(mean: f64, sd: f64) -> Demand {
        Demand::Normal {
            mean,
            sd: if sd.is_finite() { sd.max(0.0) } else { 0.0 },
        }
    }

    /// The gamma with this mean and deviation; a normal point mass when either is not
    /// positive and finite, and the normal itself when the spread is so small beside the
    /// mean that the two agree (a shape past 10⁶, a skew of 0.002) or so large that the shape would fall
    /// below 10⁻⁹.
    pub fn gamma(mean: f64, sd: f64) -> Demand {
        if !(mean.is_finite() && sd.is_finite() && mean > 0.0 && sd > 0.0) {
            return Demand::normal(if mean.is_finite() { mean } else { 0.0 }, 0.0);
        }
        let shape = (mean / sd).powi(2);
        // Past these the gamma is the normal, or all but a point mass at 0; both ends stay
        // inside the incomplete gamma's domain (which asserts on a shape of 0).
        if !(1e-9..=1e6).contains(&shape) {
            return Demand::normal(mean, sd);
        }
        Demand::Gamma {
            shape,
            scale: sd * sd / mean,
        }
    }

    /// Equally likely outcomes (non-finite ones dropped).
    pub fn samples(mut values: Vec<f64>) -> Demand {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        Demand::Samples(values)
    }

    /// A mixture; the weights are scaled to sum to 1, zero-weight parts dropped.
    pub fn mixture(parts: Vec<(f64, Demand)>) -> Demand {
        let total: f64 = parts.iter().map(|(w, _)| w.max(0.0)).sum();
        let mut parts: Vec<(f64, Demand)> = parts
            .into_iter()
            .filter(|(w, _)| *w > 0.0)
            .map(|(w, d)| (w / total, d))
            .collect();
        if parts.len() == 1 {
            return parts
                .pop()
                .map(|(_, d)| d)
                .unwrap_or(Demand::normal(0.0, 0.0));
        }
        Demand::Mixture(parts)
    }

    /// Expected units.
    pub fn mean(&self) -> f64 {
        match self {
            Demand::Normal { mean, .. } => *mean,
            Demand::Gamma { shape, scale } => shape * scale,
            Demand::Samples(v) if v.is_empty() => 0.0,
            Demand::Samples(v) => v.iter().sum::<f64>() / v.len() as f64,
            Demand::Mixture(parts) => parts.iter().map(|(w, d)| w * d.mean()).sum(),
        }
    }

    /// Standard deviation in units.
    pub fn sd(&self) -> f64 {
        let second: f64 = match self {
            Demand::Normal { sd, .. } => return *sd,
            Demand::Gamma { shape, scale } => return shape.sqrt() * scale,
            Demand::Samples(v) if v.is_empty() => return 0.0,
            Demand::Samples(v) => v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64,
            Demand::Mixture(parts) => parts
                .iter()
                .map(|(w, d)| w * (d.sd().powi(2) + d.mean().powi(2)))
                .sum(),
        };
        (second - self.mean().powi(2)).max(0.0).sqrt()
    }

    /// `P(D ≤ x)`.
    pub fn cdf(&self, x: f64) -> f64 {
        match self {
            Demand::Normal { mean, sd } if *sd == 0.0 => f64::from(u8::from(x >= *mean)),
            Demand::Normal { mean, sd } => normal_cdf((x - mean) / sd),
            Demand::Gamma { shape, scale } => lower_gamma(*shape, x / scale),
            Demand::Samples(v) if v.is_empty() => 1.0,
            Demand::Samples(v) => v.partition_point(|s| *s <= x) as f64 / v.len() as f64,
            Demand::Mixture(parts) => parts.iter().map(|(w, d)| w * d.cdf(x)).sum(),
        }
    }

    /// The level `p` in (0, 1) of demand: the normal's exact quantile, the samples'
    /// (interpolated between order statistics, as numpy does), the mixture's by
    /// bisection on its CDF.
    pub fn quantile(&self, p: f64) -> f64 {
        match self {
            Demand::Normal { mean, sd } => mean + sd * normal_quantile(p),
            Demand::Gamma { shape, scale } => scale * gamma_quantile(*shape, p),
            Demand::Samples(v) if v.is_empty() => 0.0,
            Demand::Samples(v) => {
                let pos = p * (v.len() - 1) as f64;
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(v.len() - 1);
                v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
            }
            Demand::Mixture(parts) => {
                // The mixture's quantile lies between its parts' quantiles at p.
                let at = |d: &Demand| d.quantile(p);
                let mut lo = parts
                    .iter()
                    .map(|(_, d)| at(d))
                    .fold(f64::INFINITY, f64::min);
                let mut hi = parts
                    .iter()
                    .map(|(_, d)| at(d))
                    .fold(f64::NEG_INFINITY, f64::max);
                for _ in 0..200 {
                    let mid = 0.5 * (lo + hi);
                    if mid <= lo || mid >= hi {
                        break;
                    }
                    if self.cdf(mid) < p {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                hi
            }
        }
    }

    /// `E[(D − s)⁺]`: the units of demand expected past a stock of `s`.
    pub fn expected_shortage(&self, s: f64) -> f64 {
        match self {
            Demand::Normal { mean, sd } if *sd == 0.0 => (mean - s).max(0.0),
            Demand::Normal { mean, sd } => {
                let z = (s - mean) / sd;
                sd * (normal_pdf(z) - z * (1.0 - normal_cdf(z)))
            }
            // E[D; D > s] = kθ·Q(k + 1, s/θ) for a gamma (Q the upper regularised gamma).
            Demand::Gamma { shape, scale } if s > 0.0 => {
                let x = s / scale;
                (shape * scale * upper_gamma(shape + 1.0, x) - s * upper_gamma(*shape, x)).max(0.0)
            }
            Demand::Gamma { shape, scale } => shape * scale - s,
            Demand::Samples(v) if v.is_empty() => 0.0,
            Demand::Samples(v) => v.iter().map(|d| (d - s).max(0.0)).sum::<f64>() / v.len() as f64,
            Demand::Mixture(parts) => parts.iter().map(|(w, d)| w * d.expected_shortage(s)).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantile_cdf_and_shortage_agree_with_samples_of_it() {
        let n = Demand::normal(100.0, 15.0);
        assert!((n.quantile(0.95) - (100.0 + 15.0 * 1.6448536269514722)).abs() < 1e-9);
        assert!((n.cdf(n.quantile(0.8)) - 0.8).abs() < 1e-12);
        // A fine grid of the normal's quantiles as samples: the same shortage.
        let grid: Vec<f64> = (0..200_000)
            .map(|i| n.quantile((i as f64 + 0.5) / 200_000.0))
            .collect();
        let s = Demand::samples(grid);
        for level in [80.0, 100.0, 125.0] {
            assert!(
                (n.expected_shortage(level) - s.expected_shortage(level)).abs() < 5e-3,
                "{level}"
            );
        }
        assert!((s.mean() - 100.0).abs() < 1e-6 && (s.sd() - 15.0).abs() < 0.01);
        assert_eq!(Demand::normal(5.0, 0.0).expected_shortage(3.0), 2.0);
    }

    #[test]
    fn a_gamma_agrees_with_a_fine_grid_of_its_quantiles() {
        for (mean, sd) in [(0.5, 1.0), (3.0, 2.5), (54.0, 10.0), (600.0, 30.0)] {
            let g = Demand::gamma(mean, sd);
            assert!((g.mean() - mean).abs() < 1e-9 && (g.sd() - sd).abs() < 1e-9);
            for p in [0.01, 0.5, 0.95, 0.999] {
                assert!(
                    (g.cdf(g.quantile(p)) - p).abs() < 1e-9,
                    "{mean}, {sd} at {p}"
                );
            }
            let n = 20_000;
            let grid: Vec<f64> = (0..n)
                .map(|i| g.quantile((i as f64 + 0.5) / n as f64))
                .collect();
            let s = Demand::samples(grid);
            for level in [mean - sd, mean, mean + 2.0 * sd, mean + 4.0 * sd] {
                let (exact, grid) = (g.expected_shortage(level), s.expected_shortage(level));
                assert!(
                    (exact - grid).abs() < 2e-3 * sd,
                    "{mean}, {sd} past {level}"
                );
            }
            assert!((g.expected_shortage(-1.0) - (mean + 1.0)).abs() < 1e-9);
        }
        // Skewed to the right: past the same level, more short than the normal says.
        let (g, n) = (Demand::gamma(3.0, 2.5), Demand::normal(3.0, 2.5));
        assert!(g.quantile(0.99) > n.quantile(0.99));
        assert!(g.expected_shortage(9.0) > 1.5 * n.expected_shortage(9.0));
        assert!(g.cdf(0.0) == 0.0 && n.cdf(0.0) > 0.1, "never negative");
        assert_eq!(Demand::gamma(0.0, 1.0), Demand::normal(0.0, 0.0));
        assert_eq!(Demand::gamma(1e-200, 1.0), Demand::normal(1e-200, 1.0));
        assert_eq!(Demand::gamma(f64::NAN, 1.0), Demand::normal(0.0, 0.0));
        // Tiny shapes still invert: most mass near 0, a long tail.
        let thin = Demand::gamma(0.01, 1.0);
        for p in [0.5, 0.99, 0.9999] {
            let q = thin.quantile(p);
            assert!(q.is_finite() && q >= 0.0, "{p}: {q}");
        }
        assert!(thin.expected_shortage(0.5).is_finite());
        // Where the library answers 0 (x below 1e-8), the series: scipy's gammainc.
        assert!((lower_gamma(0.00148, 1.1e-15) - 0.9511116210343642).abs() < 1e-12);
        assert!((lower_gamma(1e-6, 1e-300) - 0.9993100398190115).abs() < 1e-12);
        assert!((lower_gamma(0.1, 1e-12) - 0.06632226140610875).abs() < 1e-14);
    }

    proptest::proptest! {
        /// Any mean and spread: a gamma's quantiles invert its CDF, and nothing panics or
        /// turns NaN (the incomplete gamma asserts on arguments out of its domain).
        #[test]
        fn any_gamma_inverts_and_stays_finite(
            mean in 1e-3f64..1e5,
            sd in 1e-3f64..1e5,
            p in 1e-4f64..0.9999,
            at in -10.0f64..1e5,
        ) {
            let g = Demand::gamma(mean, sd);
            let q = g.quantile(p);
            proptest::prop_assert!(q.is_finite(), "{q}");
            if let Demand::Gamma { .. } = g {
                proptest::prop_assert!(q >= 0.0, "{q}");
                // A tiny shape puts the low levels below the smallest f64: 0 then.
                // A tiny shape puts low levels at 1e-300 units and below, where f64 has
                // few digits left; a quantile of any meaningful size inverts to 1e-6.
                if q > 1e-12 {
                    proptest::prop_assert!((g.cdf(q) - p).abs() < 1e-6, "{} vs {p}", g.cdf(q));
                } else {
                    proptest::prop_assert!(g.cdf(1e-12) >= p - 1e-6, "{} vs {p}", g.cdf(1e-12));
                }
            }
            let short = g.expected_shortage(at);
            proptest::prop_assert!(short.is_finite() && short >= 0.0, "{short}");
            proptest::prop_assert!((0.0..=1.0).contains(&g.cdf(at)));
        }
    }

    #[test]
    fn a_mixture_is_its_parts_weighted() {
        let m = Demand::mixture(vec![
            (1.0, Demand::normal(10.0, 2.0)),
            (3.0, Demand::normal(20.0, 3.0)),
        ]);
        assert!((m.mean() - 17.5).abs() < 1e-12);
        let q = m.quantile(0.9);
        assert!((m.cdf(q) - 0.9).abs() < 1e-9, "{q}");
        let want = 0.25 * Demand::normal(10.0, 2.0).expected_shortage(15.0)
            + 0.75 * Demand::normal(20.0, 3.0).expected_shortage(15.0);
        assert!((m.expected_shortage(15.0) - want).abs() < 1e-12);
        // sd from the law of total variance: E[Var] + Var[E].
        let var = 0.25 * 4.0 + 0.75 * 9.0 + 0.25 * 0.75 * 100.0;
        assert!((m.sd() - f64::sqrt(var)).abs() < 1e-9);
        assert_eq!(
            Demand::mixture(vec![(2.0, Demand::normal(1.0, 0.0))]),
            Demand::normal(1.0, 0.0)
        );
    }
}
