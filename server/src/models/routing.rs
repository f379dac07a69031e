//! Traffic routing: which loaded version answers a request that names no version, and
//! which versions get a shadow copy of it.
//!
//! The registry stores a model's split as aliases with percents; the manager resolves it
//! to loaded version numbers once per table ([`Routes`]), so routing a request is a hash
//! and a scan of two or three entries. A request with an entity key (a customer, a
//! series, a chat session) is placed by a stable hash of the model name and the key, so
//! the same entity reaches the same route on every request and on every replica; one
//! without a key is placed at random.

use twox_hash::XxHash64;

/// Resolution of the split: points run over `0..SCALE` (basis points of the traffic).
pub const SCALE: u32 = 10_000;

/// Seeds of the two independent placements: the live route and the shadow sampling.
const LIVE_SEED: u64 = 0x6d65_7263_6174_6f72;
const SHADOW_SEED: u64 = 0x7368_6164_6f77_7321;

/// Separates the parts of a composite entity key (e.g. SKU and location) before hashing:
/// the feature store's separator, so a key reads the same everywhere.
pub use mercator_features::online::KEY_SEPARATOR;

/// A model's default traffic split, resolved to loaded versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// Live routes as (exclusive upper point, version), by increasing point; the last
    /// bound is [`SCALE`]. Empty: the champion answers everything.
    pub live: Vec<(u32, u64)>,
    /// Shadow routes as (share in points, version).
    pub shadow: Vec<(u32, u64)>,
}

impl Routes {
    /// Resolves percent routes to versions: `version_of(alias)` gives the loaded version
    /// an alias points at. A live route whose alias has no loaded version gives its share
    /// to the champion (`fallback`), so a failed canary never takes traffic away; a shadow
    /// route without one is left out.
    pub fn resolve(
        routes: &[mercator_registry::model::TrafficRoute],
        version_of: impl Fn(&str) -> Option<u64>,
        fallback: Option<u64>,
    ) -> Routes {
        let mut out = Routes::default();
        let mut upper = 0;
        for r in routes.iter().filter(|r| !r.shadow) {
            let Some(version) = version_of(&r.alias).or(fallback) else {
                continue;
            };
            upper += r.percent * (SCALE / 100);
            out.live.push((upper.min(SCALE), version));
        }
        if let Some(last) = out.live.last_mut() {
            // Routes whose versions are all missing leave a gap that the last one closes.
            last.0 = SCALE;
        }
        out.shadow = routes
            .iter()
            .filter(|r| r.shadow)
            .filter_map(|r| Some((r.percent * (SCALE / 100), version_of(&r.alias)?)))
            .collect();
        out
    }

    /// Whether any request can be shadowed.
    pub fn has_shadow(&self) -> bool {
        !self.shadow.is_empty()
    }

    /// Whether the split sends anything anywhere (else the champion answers all).
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.shadow.is_empty()
    }

    /// The version whose live share holds `at` (`None`: the champion answers).
    pub fn live_version(&self, at: Placement) -> Option<u64> {
        self.live
            .iter()
            .find(|(upper, _)| at.live < *upper)
            .map(|(_, v)| *v)
    }

    /// The versions whose shadow share holds `at`, but `live` (a version never shadows
    /// itself).
    pub fn shadow_versions(&self, at: Placement, live: u64) -> impl Iterator<Item = u64> + '_ {
        self.shadow
            .iter()
            .filter(move |(share, v)| at.shadow < *share && *v != live)
            .map(|(_, v)| *v)
    }
}

/// Where a request falls in the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    live: u32,
    shadow: u32,
}

impl Placement {
    /// The placement of entity `key` for `model`: the same on every call and every
    /// replica (XxHash64 is specified, not randomly seeded per process).
    pub fn of_entity(model: &str, key: &str) -> Placement {
        let hash = |seed| {
            let mut h = XxHash64::with_seed(seed);
            std::hash::Hasher::write(&mut h, model.as_bytes());
            std::hash::Hasher::write(&mut h, &[0]);
            std::hash::Hasher::write(&mut h, key.as_bytes());
            (std::hash::Hasher::finish(&h) % u64::from(SCALE)) as u32
        };
        Placement {
            live: hash(LIVE_SEED),
            shadow: hash(SHADOW_SEED),
        }
    }

    /// A random placement, for requests without an entity key.
    pub fn random() -> Placement {
        Placement {
            live: fastrand::u32(..SCALE),
            shadow: fastrand::u32(..SCALE),
        }
    }

    /// By the entity key when there is one, at random otherwise.
    pub fn of(model: &str, key: Option<&str>) -> Placement {
        key.map_or_else(Placement::random, |k| Placement::of_entity(model, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mercator_registry::model::TrafficRoute;

    fn route(alias: &str, percent: u32, shadow: bool) -> TrafficRoute {
        TrafficRoute {
            alias: alias.into(),
            percent,
            shadow,
        }
    }

    #[test]
    fn percents_become_cumulative_points() {
        let routes = Routes::resolve(
            &[
                route("champion", 90, false),
                route("challenger", 10, false),
                route("candidate", 50, true),
            ],
            |a| match a {
                "champion" => Some(1),
                "challenger" => Some(2),
                "candidate" => Some(3),
                _ => None,
            },
            Some(1),
        );
        assert_eq!(routes.live, vec![(9_000, 1), (10_000, 2)]);
        assert_eq!(routes.shadow, vec![(5_000, 3)]);
    }

    #[test]
    fn a_route_without_a_loaded_version_falls_back_to_the_champion() {
        let routes = Routes::resolve(
            &[
                route("champion", 90, false),
                route("challenger", 10, false),
                route("candidate", 100, true),
            ],
            |a| (a == "champion").then_some(1),
            Some(1),
        );
        assert_eq!(routes.live, vec![(9_000, 1), (10_000, 1)]);
        assert!(routes.shadow.is_empty());
    }

    #[test]
    fn entity_placement_is_stable_and_spread() {
        assert_eq!(
            Placement::of_entity("churn", "c-1"),
            Placement::of_entity("churn", "c-1")
        );
        assert_ne!(
            Placement::of_entity("churn", "c-1"),
            Placement::of_entity("other", "c-1")
        );
        // Pinned: a change of hash would move customers to other routes on upgrade, and
        // replicas on different releases would disagree.
        let p = Placement::of_entity("churn", "c-1");
        assert_eq!((p.live, p.shadow), (3639, 7396));
        let below = (0..10_000)
            .filter(|i| Placement::of_entity("churn", &format!("c-{i}")).live < 1_000)
            .count();
        // 10% of 10,000 keys: 1,000 ± 4.5σ (σ = 30).
        assert!((865..=1_135).contains(&below), "{below}");
    }
}
