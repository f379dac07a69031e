//! The replenishment decision for one SKU at one location: a periodic-review,
//! order-up-to policy sized from the demand distribution over the protection interval.
//!
//! With lead time `L` and review period `R` (days), at each review:
//! - the **order-up-to level** `S` is the demand over `L + R` days the target covers: its
//!   quantile at the cycle service level `α`, or for a fill-rate target `β` the level at
//!   which the units expected short per cycle, `E[(D_{L+R} − S)⁺] − E[(D_L − S)⁺]`, are
//!   `(1 − β)` of a cycle's expected demand `E[D_R]`;
//! - the **reorder point** `s` is the same over the lead time alone (below it, an order
//!   placed now arrives too late for the target): `L·μ + z·σ·√L` for i.i.d. normal daily
//!   demand;
//! - the **inventory position** is stock on hand plus what is on order and arrives within
//!   the expected protection interval (a later arrival protects nothing this cycle), less
//!   the units backordered (owed to customers, served from the next arrivals);
//! - the **order** is `S` less the position, rounded up to whole packs and raised to the
//!   minimum order quantity, or nothing when the position already reaches `S`;
//! - the **stock-out probability** and **units short** are those of demand over `L + R`
//!   against the position after the order.
//!
//! An uncertain lead time mixes the demand over each possible `L` by its probability.

use super::demand::Demand;
use crate::{Result, RuntimeError};

/// An order already placed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnOrder {
    /// Units.
    pub quantity: f64,
    /// Days from today until it arrives (0: today).
    pub arrives_in_days: u32,
}

/// How long an order takes to arrive, in days.
#[derive(Debug, Clone, PartialEq)]
pub enum LeadTime {
    /// Always this many days.
    Fixed(u32),
    /// Normal with this mean and deviation, in whole days (rounded, at least 0).
    Normal {
        /// Mean days.
        mean: f64,
        /// Standard deviation in days.
        sd: f64,
    },
    /// Days with their probabilities, which sum to 1 (within
    /// [`PROBABILITY_SUM_TOLERANCE`], the rounding then scaled away).
    Empirical(Vec<(u32, f64)>),
}

impl LeadTime {
    /// The longest lead time it allows, in days: a normal's is four deviations above its
    /// mean (the days [`recommend`] weighs).
    pub fn longest_days(&self) -> u32 {
        match self {
            LeadTime::Fixed(d) => *d,
            LeadTime::Normal { mean, sd } => {
                (mean + 4.0 * sd).round().clamp(0.0, f64::from(u32::MAX)) as u32
            }
            LeadTime::Empirical(days) => days.iter().map(|(d, _)| *d).max().unwrap_or(0),
        }
    }
}

/// What the policy aims for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The probability of no stock-out in a replenishment cycle, in (0, 1).
    CycleServiceLevel(f64),
    /// The share of demand served from stock, in (0, 1).
    FillRate(f64),
}

/// One SKU-location's situation and constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct Situation {
    /// Units in stock now.
    pub on_hand: f64,
    /// Units owed to customers (demand not yet served: backorders).
    pub backordered: f64,
    /// Orders placed and not yet arrived.
    pub on_order: Vec<OnOrder>,
    /// The supplier's lead time.
    pub lead_time: LeadTime,
    /// Days until the next review (the next chance to order).
    pub review_days: u32,
    /// The service target.
    pub target: Target,
    /// Orders come in whole packs of this many units.
    pub pack_size: f64,
    /// The smallest order the supplier takes, in units (0: none).
    pub min_order_quantity: f64,
    /// Cost per unit, for the order's value.
    pub unit_cost: Option<f64>,
}

/// The recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// Demand over the protection interval (`L + R` days).
    pub protection_demand: Demand,
    /// Expected length of the protection interval, in days.
    pub protection_days: f64,
    /// The reorder point.
    pub reorder_point: f64,
    /// The order-up-to level.
    pub order_up_to: f64,
    /// On hand plus what arrives within the protection interval, less backorders.
    pub inventory_position: f64,
    /// Units to order now (whole packs, at least the minimum, or 0).
    pub order_quantity: f64,
    /// Probability that demand over the protection interval exceeds the position after
    /// the order.
    pub stockout_probability: f64,
    /// Units of that demand expected to go unserved.
    pub expected_units_short: f64,
    /// `order_quantity × unit_cost`, when the cost is known.
    pub order_value: Option<f64>,
}

/// The lead time's days and their probabilities.
fn lead_days(lead: &LeadTime) -> Result<Vec<(u32, f64)>> {
    let bad = |m: String| RuntimeError::input("lead_time", m);
    match lead {
        LeadTime::Fixed(d) => Ok(vec![(*d, 1.0)]),
        LeadTime::Normal { mean, sd } => {
            if !(mean.is_finite() && *mean >= 0.0 && sd.is_finite() && *sd >= 0.0) {
                return Err(bad(format!(
                    "mean {mean} and deviation {sd} must be finite and not negative"
                )));
            }
            if *sd == 0.0 {
                return Ok(vec![(mean.round() as u32, 1.0)]);
            }
            // Whole days within four deviations, each with the normal's mass rounding to it
            // (the mass below day 0 goes to day 0).
            let lo = (mean - 4.0 * sd).round().max(0.0) as u32;
            let hi = lead.longest_days();
            let cdf = |x: f64| super::demand::normal_cdf((x - mean) / sd);
            Ok((lo..=hi)
                .map(|d| {
                    let below = if d == lo {
                        0.0
                    } else {
                        cdf(f64::from(d) - 0.5)
                    };
                    let above = if d == hi {
                        1.0
                    } else {
                        cdf(f64::from(d) + 0.5)
                    };
                    (d, above - below)
                })
                .collect())
        }
        LeadTime::Empirical(days) => {
            if days.is_empty() || days.iter().any(|(_, p)| !(p.is_finite() && *p >= 0.0)) {
                return Err(bad(
                    "an empirical lead time needs days with probabilities ≥ 0".into(),
                ));
            }
            let total: f64 = days.iter().map(|(_, p)| p).sum();
            if (total - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
                return Err(bad(format!(
                    "the probabilities of an empirical lead time sum to {total}, not 1 \
                     (within {PROBABILITY_SUM_TOLERANCE:e})"
                )));
            }
            Ok(days.iter().map(|&(d, p)| (d, p / total)).collect())
        }
    }
}

/// How far from 1 an empirical lead time's probabilities may sum (rounding, not a
/// distribution that forgot some days: that is refused rather than silently rescaled).
pub const PROBABILITY_SUM_TOLERANCE: f64 = 1e-9;

/// The largest quantity (units, or money per unit) a request may give: far beyond any
/// stock one location holds, and small enough that every sum stays finite and exact
/// to a unit.
pub const MAX_QUANTITY: f64 = 1e12;

fn check(s: &Situation) -> Result<()> {
    let finite_non_negative = |field: &str, v: f64| {
        if !(v.is_finite() && v >= 0.0) {
            Err(RuntimeError::input(
                field,
                format!("{v} must be a finite number ≥ 0"),
            ))
        } else if v > MAX_QUANTITY {
            Err(RuntimeError::input(
                field,
                format!("{v} is over the largest quantity taken, {MAX_QUANTITY:e}"),
            ))
        } else {
            Ok(())
        }
    };
    finite_non_negative("on_hand", s.on_hand)?;
    finite_non_negative("backordered", s.backordered)?;
    for (i, o) in s.on_order.iter().enumerate() {
        finite_non_negative(&format!("on_order[{i}].quantity"), o.quantity)?;
    }
    let level = match s.target {
        Target::CycleServiceLevel(a) => ("cycle_service_level", a),
        Target::FillRate(b) => ("fill_rate", b),
    };
    if !(level.1 > 0.0 && level.1 < 1.0) {
        return Err(RuntimeError::input(
            level.0,
            format!("{} is not in (0, 1)", level.1),
        ));
    }
    if matches!(s.target, Target::FillRate(_)) && s.review_days == 0 {
        return Err(RuntimeError::input(
            "review_period_days",
            "a fill-rate target needs a review period of at least a day (a cycle's demand)",
        ));
    }
    if !(s.pack_size.is_finite() && s.pack_size > 0.0) {
        return Err(RuntimeError::input(
            "pack_size",
            format!("{} must be > 0", s.pack_size),
        ));
    }
    finite_non_negative("pack_size", s.pack_size)?;
    finite_non_negative("min_order_quantity", s.min_order_quantity)?;
    if let Some(c) = s.unit_cost {
        finite_non_negative("unit_cost", c)?;
    }
    Ok(())
}

/// The smallest level in `[lo, hi]` at which the decreasing `f` is at most `goal`.
fn solve_decreasing(f: impl Fn(f64) -> f64, goal: f64, mut lo: f64, mut hi: f64) -> f64 {
    if f(lo) <= goal {
        return lo;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) <= goal {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Recommends an order. `demand_over(days)` gives the demand distribution over the next
/// `days` days (0 days: none).
pub fn recommend(
    situation: &Situation,
    demand_over: &mut dyn FnMut(u32) -> Result<Demand>,
) -> Result<Recommendation> {
    check(situation)?;
    let lead = lead_days(&situation.lead_time)?;
    let review = situation.review_days;
    let mut over_lead = Vec::with_capacity(lead.len());
    let mut over_protection = Vec::with_capacity(lead.len());
    for &(l, p) in &lead {
        over_lead.push((
            p,
            if l == 0 {
                Demand::normal(0.0, 0.0)
            } else {
                demand_over(l)?
            },
        ));
        let days = l.saturating_add(review);
        over_protection.push((
            p,
            if days == 0 {
                Demand::normal(0.0, 0.0)
            } else {
                demand_over(days)?
            },
        ));
    }
    let d_lead = Demand::mixture(over_lead);
    let d_protection = Demand::mixture(over_protection);
    let protection_days =
        f64::from(review) + lead.iter().map(|&(l, p)| f64::from(l) * p).sum::<f64>();

    let (reorder_point, order_up_to) = match situation.target {
        Target::CycleServiceLevel(a) => (d_lead.quantile(a), d_protection.quantile(a)),
        Target::FillRate(b) => {
            let cycle = demand_over(review)?.mean().max(0.0);
            let allowed = (1.0 - b) * cycle;
            let hi = d_protection.quantile(1.0 - 1e-9).max(0.0) + 1.0;
            let short = |s: f64| d_protection.expected_shortage(s) - d_lead.expected_shortage(s);
            let s_up = solve_decreasing(short, allowed, 0.0, hi);
            let s_re = solve_decreasing(|s| d_lead.expected_shortage(s), allowed, 0.0, hi);
            (s_re, s_up)
        }
    };
    let horizon = protection_days.ceil();
    let inventory_position = situation.on_hand - situation.backordered
        + situation
            .on_order
            .iter()
            .filter(|o| f64::from(o.arrives_in_days) <= horizon)
            .map(|o| o.quantity)
            .sum::<f64>();
    let needed = order_up_to - inventory_position;
    let order_quantity = if needed > 0.0 {
        let pack = situation.pack_size;
        let packs = |units: f64| (units / pack - 1e-9).ceil().max(0.0) * pack;
        packs(needed).max(packs(situation.min_order_quantity))
    } else {
        0.0
    };
    let after = inventory_position + order_quantity;
    Ok(Recommendation {
        stockout_probability: 1.0 - d_protection.cdf(after),
        expected_units_short: d_protection.expected_shortage(after),
        order_value: situation.unit_cost.map(|c| c * order_quantity),
        protection_demand: d_protection,
        protection_days,
        reorder_point,
        order_up_to,
        inventory_position,
        order_quantity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// i.i.d. normal daily demand: `d` days are `N(dμ, σ²d)`.
    fn iid(mu: f64, sigma: f64) -> impl FnMut(u32) -> Result<Demand> {
        move |d| {
            Ok(Demand::normal(
                mu * f64::from(d),
                sigma * f64::from(d).sqrt(),
            ))
        }
    }

    fn situation(target: Target) -> Situation {
        Situation {
            on_hand: 0.0,
            backordered: 0.0,
            on_order: Vec::new(),
            lead_time: LeadTime::Fixed(9),
            review_days: 0,
            target,
            pack_size: 1.0,
            min_order_quantity: 0.0,
            unit_cost: None,
        }
    }

    #[test]
    fn the_textbook_reorder_point() {
        let (mu, sigma, l) = (40.0, 12.0, 9.0);
        let z95 = 1.6448536269514722;
        let r = recommend(
            &situation(Target::CycleServiceLevel(0.95)),
            &mut iid(mu, sigma),
        )
        .unwrap();
        let textbook = l * mu + z95 * sigma * f64::sqrt(l);
        assert!(
            (r.reorder_point - textbook).abs() < 1e-6,
            "{} vs {textbook}",
            r.reorder_point
        );
        assert!(
            (r.order_up_to - textbook).abs() < 1e-6,
            "no review period: the same level"
        );
        // Nothing in stock: order S, in whole units, so the risk is just under 5%.
        assert_eq!(r.order_quantity, textbook.ceil());
        let after = Demand::normal(l * mu, sigma * l.sqrt());
        assert!((r.stockout_probability - (1.0 - after.cdf(textbook.ceil()))).abs() < 1e-12);
        assert!(r.stockout_probability < 0.05 && r.stockout_probability > 0.04);
        // With a week's review period the order-up-to level covers 16 days.
        let mut weekly = situation(Target::CycleServiceLevel(0.95));
        weekly.review_days = 7;
        let r = recommend(&weekly, &mut iid(mu, sigma)).unwrap();
        assert!((r.order_up_to - (16.0 * mu + z95 * sigma * 4.0)).abs() < 1e-6);
        assert!((r.reorder_point - textbook).abs() < 1e-6);
        assert_eq!(r.protection_days, 16.0);
    }

    #[test]
    fn orders_fill_whole_packs_and_the_minimum_and_count_what_is_coming() {
        let mut s = situation(Target::CycleServiceLevel(0.9));
        s.on_hand = 100.0;
        s.on_order = vec![
            OnOrder {
                quantity: 50.0,
                arrives_in_days: 3,
            },
            OnOrder {
                quantity: 1000.0,
                arrives_in_days: 30,
            }, // after the protection interval
        ];
        s.pack_size = 12.0;
        s.min_order_quantity = 0.0;
        s.unit_cost = Some(2.5);
        let r = recommend(&s, &mut iid(40.0, 12.0)).unwrap();
        assert_eq!(r.inventory_position, 150.0);
        let need = r.order_up_to - 150.0;
        assert_eq!(r.order_quantity, (need / 12.0).ceil() * 12.0);
        assert_eq!(r.order_value, Some(2.5 * r.order_quantity));
        assert!(r.stockout_probability <= 0.1);
        s.min_order_quantity = 500.0;
        assert_eq!(
            recommend(&s, &mut iid(40.0, 12.0)).unwrap().order_quantity,
            504.0
        );
        s.on_hand = 10_000.0;
        let r = recommend(&s, &mut iid(40.0, 12.0)).unwrap();
        assert_eq!(
            r.order_quantity, 0.0,
            "enough stock: no order, not the minimum"
        );
        assert!(r.stockout_probability < 1e-12 && r.expected_units_short < 1e-9);
    }

    #[test]
    fn a_fill_rate_target_leaves_that_share_short_per_cycle() {
        let mut s = situation(Target::FillRate(0.98));
        s.review_days = 7;
        let r = recommend(&s, &mut iid(40.0, 12.0)).unwrap();
        let (lead, prot) = (Demand::normal(360.0, 36.0), Demand::normal(640.0, 48.0));
        let short = prot.expected_shortage(r.order_up_to) - lead.expected_shortage(r.order_up_to);
        assert!((short / 280.0 - 0.02).abs() < 1e-6, "{short}");
    }

    #[test]
    fn an_uncertain_lead_time_mixes_the_demand_over_each() {
        let mut s = situation(Target::CycleServiceLevel(0.95));
        s.lead_time = LeadTime::Empirical(vec![(5, 0.5), (10, 0.5)]);
        let r = recommend(&s, &mut iid(40.0, 12.0)).unwrap();
        let mix = Demand::mixture(vec![
            (0.5, Demand::normal(200.0, 12.0 * 5f64.sqrt())),
            (0.5, Demand::normal(400.0, 12.0 * 10f64.sqrt())),
        ]);
        assert!((mix.cdf(r.order_up_to) - 0.95).abs() < 1e-9);
        assert_eq!(r.protection_days, 7.5);
        // A normal lead time's days carry the normal's mass.
        s.lead_time = LeadTime::Normal { mean: 8.0, sd: 1.5 };
        let r = recommend(&s, &mut iid(40.0, 12.0)).unwrap();
        assert!(
            (r.protection_days - 8.0).abs() < 0.01,
            "{}",
            r.protection_days
        );
        assert!(r.order_up_to > 8.0 * 40.0 + 1.6448536269514722 * 12.0 * 8f64.sqrt());
    }

    #[test]
    fn bad_input_names_its_field() {
        let mut cases: Vec<(Situation, &str)> = Vec::new();
        let base = situation(Target::CycleServiceLevel(0.95));
        let mut s = base.clone();
        s.on_hand = -1.0;
        cases.push((s, "on_hand"));
        let mut s = base.clone();
        s.backordered = -2.0;
        cases.push((s, "backordered"));
        let mut s = base.clone();
        s.on_order = vec![OnOrder {
            quantity: -5.0,
            arrives_in_days: 1,
        }];
        cases.push((s, "on_order[0].quantity"));
        let mut s = base.clone();
        s.target = Target::CycleServiceLevel(1.0);
        cases.push((s, "cycle_service_level"));
        let mut s = base.clone();
        s.target = Target::FillRate(0.0);
        cases.push((s, "fill_rate"));
        let mut s = base.clone();
        s.target = Target::FillRate(0.9);
        cases.push((s, "review_period_days"));
        let mut s = base.clone();
        s.pack_size = 0.0;
        cases.push((s, "pack_size"));
        let mut s = base.clone();
        s.lead_time = LeadTime::Normal {
            mean: -2.0,
            sd: 1.0,
        };
        cases.push((s, "lead_time"));
        let mut s = base.clone();
        s.lead_time = LeadTime::Empirical(vec![(3, 0.0)]);
        cases.push((s, "lead_time"));
        let mut s = base.clone();
        s.lead_time = LeadTime::Empirical(vec![(3, 0.25), (5, 0.25)]);
        cases.push((s, "lead_time"));
        let mut s = base.clone();
        s.backordered = 1e308;
        cases.push((s, "backordered"));
        let mut s = base.clone();
        s.on_hand = 2e12;
        cases.push((s, "on_hand"));
        let mut s = base.clone();
        s.pack_size = f64::INFINITY;
        cases.push((s, "pack_size"));
        let mut s = base;
        s.unit_cost = Some(f64::NAN);
        cases.push((s, "unit_cost"));
        for (s, field) in cases {
            let err = recommend(&s, &mut iid(1.0, 1.0)).expect_err(field);
            assert!(
                matches!(&err, RuntimeError::InvalidInput { input, .. } if input == field),
                "{field}: {err}"
            );
        }
    }
}
