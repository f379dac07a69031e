//! The order-up-to policy (`replenish::policy`) applied day after day to demand drawn
//! from the very distribution it is given: what it promises must come true, so any gap in
//! the backtest on real sales is the forecast's, not the policy's. Unmet demand is
//! backordered (the policy's assumption); orders arrive at the start of the day `L` days
//! after they are placed, before that day's demand.

mod common;

use common::Rng;
use mercator_runtime::replenish::{Demand, LeadTime, OnOrder, Situation, Target, recommend};

const MEAN: f64 = 40.0;
const SD: f64 = 10.0;

/// What the policy achieved over `days` days of i.i.d. normal demand.
struct Achieved {
    /// Share of demand served from stock the day it came.
    fill_rate: f64,
    /// Share of review cycles that ended with demand unserved.
    stockout_cycles: f64,
    /// The same for each of 20 equal batches of cycles (for the sampling error).
    batches: Vec<f64>,
}

fn run(target: Target, lead: u32, review: u32, days: usize) -> Achieved {
    let mut rng = Rng(18);
    let mut net = MEAN * f64::from(lead + review);
    let mut pipeline: Vec<(usize, f64)> = Vec::new();
    let (mut demand_total, mut short_total) = (0.0, 0.0);
    let (mut cycles, mut stockouts) = (0usize, 0usize);
    let (mut cycle_short, mut batch) = (false, (0.0, 0.0));
    let mut batches = Vec::new();
    let per_batch = days / 20;
    for t in 0..days {
        net += pipeline
            .iter()
            .filter(|(d, _)| *d == t)
            .map(|(_, q)| q)
            .sum::<f64>();
        pipeline.retain(|(d, _)| *d > t);
        if t % review as usize == 0 {
            if t > 0 {
                cycles += 1;
                stockouts += usize::from(cycle_short);
            }
            cycle_short = false;
            let s = Situation {
                on_hand: net.max(0.0),
                backordered: (-net).max(0.0),
                on_order: pipeline
                    .iter()
                    .map(|&(d, q)| OnOrder {
                        quantity: q,
                        arrives_in_days: (d - t) as u32,
                    })
                    .collect(),
                lead_time: LeadTime::Fixed(lead),
                review_days: review,
                target,
                // Near-continuous orders: whole units would add a little service (about
                // 0.005 here), as the backtest on real sales shows.
                pack_size: 1e-6,
                min_order_quantity: 0.0,
                unit_cost: None,
            };
            let mut over = |d: u32| {
                Ok(Demand::normal(
                    MEAN * f64::from(d),
                    SD * f64::from(d).sqrt(),
                ))
            };
            let r = recommend(&s, &mut over).expect("recommend");
            if r.order_quantity > 0.0 {
                pipeline.push((t + lead as usize, r.order_quantity));
            }
        }
        let demand = (MEAN + SD * rng.normal()).max(0.0);
        let short = (demand - net.max(0.0)).max(0.0);
        // A cycle's stock-out: demand unserved in the days its order protects.
        cycle_short |= short > 0.0;
        net -= demand;
        demand_total += demand;
        short_total += short;
        batch = (batch.0 + demand, batch.1 + short);
        if (t + 1) % per_batch == 0 {
            batches.push(1.0 - batch.1 / batch.0);
            batch = (0.0, 0.0);
        }
    }
    Achieved {
        fill_rate: 1.0 - short_total / demand_total,
        stockout_cycles: stockouts as f64 / cycles as f64,
        batches,
    }
}

/// Three standard errors of the batches' mean.
fn tolerance(batches: &[f64]) -> f64 {
    let n = batches.len() as f64;
    let mean = batches.iter().sum::<f64>() / n;
    let var = batches.iter().map(|b| (b - mean).powi(2)).sum::<f64>() / (n - 1.0);
    3.0 * (var / n).sqrt()
}

#[test]
fn a_fill_rate_target_serves_that_share_of_demand() {
    for (lead, review, beta) in [(2, 1, 0.97), (2, 1, 0.9), (5, 7, 0.97), (3, 7, 0.99)] {
        let a = run(Target::FillRate(beta), lead, review, 70_000);
        let tol = tolerance(&a.batches);
        println!(
            "lead {lead}, review {review}, fill rate {beta}: {:.4} ± {tol:.4}",
            a.fill_rate
        );
        assert!(
            (a.fill_rate - beta).abs() <= tol.max(0.002),
            "lead {lead}, review {review}: fill rate {} for a target of {beta} (± {tol})",
            a.fill_rate
        );
    }
}

#[test]
fn a_cycle_service_level_is_the_share_of_cycles_without_a_stockout() {
    for (lead, review, alpha) in [(2, 1, 0.9), (5, 7, 0.95)] {
        let a = run(Target::CycleServiceLevel(alpha), lead, review, 70_000);
        let cycles = 70_000 / review as usize;
        let tol = 3.0 * (alpha * (1.0 - alpha) / cycles as f64).sqrt();
        println!(
            "lead {lead}, review {review}, cycle service {alpha}: {:.4} ± {tol:.4}",
            1.0 - a.stockout_cycles
        );
        assert!(
            (1.0 - a.stockout_cycles - alpha).abs() <= tol,
            "lead {lead}, review {review}: {} of cycles without a stock-out, target {alpha}",
            1.0 - a.stockout_cycles
        );
    }
}
