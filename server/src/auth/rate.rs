//! Per-principal rate limits: a token bucket per (principal, scope), refilled at the
//! rate `[auth] rate_limits` sets for the scope. A call over its principal's budget is
//! refused with RESOURCE_EXHAUSTED before any handler runs, carrying a `RetryInfo` that
//! says when a token will be there, so well-behaved clients back off exactly that long.
//!
//! Buckets live in this process: with N replicas behind a balancer a principal gets up
//! to N times the rate, the usual trade of a limit that costs no network round trip.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Scope;

/// Most buckets kept; past this the idlest half is forgotten (a forgotten bucket starts
/// full, which errs on the caller's side).
const MAX_BUCKETS: usize = 100_000;

/// A scope's budget: tokens per second, and how many may be spent at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Calls per second, sustained.
    pub per_second: f64,
    /// Calls allowed in a burst (the bucket's size).
    pub burst: f64,
}

impl Rate {
    /// `RATE` or `RATE/BURST` (calls per second, burst defaulting to one second's worth).
    pub fn parse(text: &str) -> Option<Rate> {
        let (rate, burst) = match text.split_once('/') {
            Some((r, b)) => (r.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?),
            None => {
                let r = text.trim().parse::<f64>().ok()?;
                (r, r.max(1.0))
            }
        };
        (rate > 0.0 && rate.is_finite() && burst >= 1.0 && burst.is_finite()).then_some(Rate {
            per_second: rate,
            burst,
        })
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The rate limits of every principal.
#[derive(Debug)]
pub struct RateLimits {
    rates: HashMap<Scope, Rate>,
    buckets: Mutex<HashMap<(String, Scope), Bucket>>,
}

impl RateLimits {
    /// Limits at `rates` per scope; scopes not named are unlimited.
    pub fn new(rates: HashMap<Scope, Rate>) -> RateLimits {
        RateLimits {
            rates,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `principal`'s call needing `scope`; when there is none, how long
    /// until there will be.
    pub fn take(&self, principal: &str, scope: Scope) -> Result<(), Duration> {
        let Some(rate) = self.rates.get(&scope) else {
            return Ok(());
        };
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&(principal.to_string(), scope)) {
            forget_idlest(&mut buckets);
        }
        let bucket = buckets
            .entry((principal.to_string(), scope))
            .or_insert(Bucket {
                tokens: rate.burst,
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - bucket.tokens) / rate.per_second,
        ))
    }
}

fn forget_idlest(buckets: &mut HashMap<(String, Scope), Bucket>) {
    let mut ages: Vec<Instant> = buckets.values().map(|b| b.at).collect();
    ages.sort_unstable();
    if let Some(cut) = ages.get(ages.len() / 2).copied() {
        buckets.retain(|_, b| b.at > cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_bad_ones_do_not() {
        assert_eq!(
            Rate::parse("100"),
            Some(Rate {
                per_second: 100.0,
                burst: 100.0
            })
        );
        assert_eq!(
            Rate::parse("0.5/3"),
            Some(Rate {
                per_second: 0.5,
                burst: 3.0
            })
        );
        for bad in ["", "x", "0", "-1", "5/0", "inf", "NaN", "1/x"] {
            assert_eq!(Rate::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_burst_is_spent_then_refused_with_a_wait_and_principals_are_apart() {
        let limits = RateLimits::new(HashMap::from([(
            Scope::Infer,
            Rate {
                per_second: 0.001,
                burst: 2.0,
            },
        )]));
        assert!(limits.take("a", Scope::Infer).is_ok());
        assert!(limits.take("a", Scope::Infer).is_ok());
        let wait = limits.take("a", Scope::Infer).expect_err("spent");
        assert!(wait > Duration::from_secs(100), "{wait:?}");
        assert!(limits.take("b", Scope::Infer).is_ok(), "another principal");
        assert!(limits.take("a", Scope::Admin).is_ok(), "an unlimited scope");
    }
}
