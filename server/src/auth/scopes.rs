//! What each RPC needs: one table, every method of every service served. A test fails
//! when a method is missing from it (a new RPC must be given a scope) or when an entry
//! names a method that does not exist.

use std::fmt;

/// A permission a credential grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// V2 inference, the typed APIs, model metadata and statistics, registry and
    /// Monitoring reads.
    Infer,
    /// Online and historical feature reads, and the definitions.
    FeaturesRead,
    /// Push, LoadFile (LoadFileProgress, LoadUpload), ApplyDefinitions.
    FeaturesWrite,
    /// Registering and archiving versions.
    ModelsWrite,
    /// Alias moves, promotion, roll-back, traffic splits.
    ModelsPromote,
    /// Outcomes pushed for live quality (`Outcomes/Push`).
    OutcomesWrite,
    /// Repository load and unload, key management, the audit log; and everything else.
    Admin,
}

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 7] = [
        Scope::Infer,
        Scope::FeaturesRead,
        Scope::FeaturesWrite,
        Scope::ModelsWrite,
        Scope::ModelsPromote,
        Scope::OutcomesWrite,
        Scope::Admin,
    ];

    /// The scope's name, as keys and tokens carry it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Infer => "infer",
            Scope::FeaturesRead => "features:read",
            Scope::FeaturesWrite => "features:write",
            Scope::ModelsWrite => "models:write",
            Scope::ModelsPromote => "models:promote",
            Scope::OutcomesWrite => "outcomes:write",
            Scope::Admin => "admin",
        }
    }

    /// The scope named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: health checks, so probes need no secret.
    Open,
    /// Server reflection: open, or any valid credential when configured so.
    Reflection,
    /// A credential granting this scope.
    Scope(Scope),
}

use Access::{Open, Reflection, Scope as S};
use Scope::{Admin, FeaturesRead, FeaturesWrite, Infer, ModelsPromote, ModelsWrite, OutcomesWrite};

/// Every RPC, service by service.
const RULES: &[(&str, &[(&str, Access)])] = &[
    (
        "inference.GRPCInferenceService",
        &[
            // Liveness and readiness are what Triton clients and probes poll.
            ("ServerLive", Open),
            ("ServerReady", Open),
            ("ModelReady", S(Infer)),
            ("ServerMetadata", S(Infer)),
            ("ModelMetadata", S(Infer)),
            ("ModelInfer", S(Infer)),
            ("ModelStreamInfer", S(Infer)),
            ("ModelConfig", S(Infer)),
            ("ModelStatistics", S(Infer)),
            ("RepositoryIndex", S(Admin)),
            ("RepositoryModelLoad", S(Admin)),
            ("RepositoryModelUnload", S(Admin)),
        ],
    ),
    ("mercator.v1.Churn", &[("Score", S(Infer))]),
    ("mercator.v1.Intent", &[("Classify", S(Infer))]),
    (
        "mercator.v1.Forecasting",
        &[("Forecast", S(Infer)), ("ForecastBatch", S(Infer))],
    ),
    (
        "mercator.v1.Inventory",
        &[("Recommend", S(Infer)), ("RecommendBatch", S(Infer))],
    ),
    (
        "mercator.v1.Monitoring",
        &[
            ("GetDrift", S(Infer)),
            ("GetQuality", S(Infer)),
            ("GetExperiments", S(Infer)),
        ],
    ),
    ("mercator.v1.Outcomes", &[("Push", S(OutcomesWrite))]),
    (
        "mercator.v1.Registry",
        &[
            ("RegisterVersion", S(ModelsWrite)),
            ("ListModels", S(Infer)),
            ("GetModel", S(Infer)),
            ("GetVersion", S(Infer)),
            ("SetAlias", S(ModelsPromote)),
            ("Promote", S(ModelsPromote)),
            ("ApproveVersion", S(ModelsPromote)),
            ("RollbackAlias", S(ModelsPromote)),
            ("SetTraffic", S(ModelsPromote)),
            ("AliasHistory", S(Infer)),
            ("ArchiveVersion", S(ModelsWrite)),
            ("AuditLog", S(Admin)),
            ("CreateApiKey", S(Admin)),
            ("ListApiKeys", S(Admin)),
            ("RevokeApiKey", S(Admin)),
            ("CollectGarbage", S(Admin)),
        ],
    ),
    (
        "mercator.v1.FeatureStore",
        &[
            ("ApplyDefinitions", S(FeaturesWrite)),
            ("ListDefinitions", S(FeaturesRead)),
            ("Push", S(FeaturesWrite)),
            ("LoadFile", S(FeaturesWrite)),
            ("LoadFileProgress", S(FeaturesWrite)),
            ("LoadUpload", S(FeaturesWrite)),
            ("GetOnlineFeatures", S(FeaturesRead)),
            ("GetHistoricalFeatures", S(FeaturesRead)),
        ],
    ),
    ("grpc.health.v1.Health", &[("Check", Open), ("Watch", Open)]),
    (
        "grpc.reflection.v1.ServerReflection",
        &[("ServerReflectionInfo", Reflection)],
    ),
    (
        "grpc.reflection.v1alpha.ServerReflection",
        &[("ServerReflectionInfo", Reflection)],
    ),
];

/// What the call at `path` (`/package.Service/Method`) needs. A path the table does not
/// name (no such method) needs `admin`, so an unknown path tells an anonymous caller
/// nothing.
pub fn access(path: &str) -> Access {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return S(Admin);
    };
    RULES
        .iter()
        .find(|(s, _)| *s == service)
        .and_then(|(_, methods)| methods.iter().find(|(m, _)| *m == method))
        .map_or(S(Admin), |(_, access)| *access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_served_has_exactly_one_rule_and_every_rule_an_rpc() {
        let served = crate::descriptors::methods();
        assert!(served.len() >= 40, "descriptor sets read: {}", served.len());
        for (service, method) in &served {
            let rules: Vec<_> = RULES
                .iter()
                .filter(|(s, _)| s == service)
                .flat_map(|(_, methods)| methods.iter().filter(|(m, _)| m == method))
                .collect();
            assert_eq!(
                rules.len(),
                1,
                "/{service}/{method} needs exactly one rule: {rules:?}"
            );
        }
        for (service, methods) in RULES {
            for (method, _) in *methods {
                assert!(
                    served.iter().any(|(s, m)| s == service && m == method),
                    "/{service}/{method} is in the table but not served"
                );
            }
        }
    }

    #[test]
    fn paths_resolve_and_unknown_ones_need_admin() {
        assert_eq!(
            access("/inference.GRPCInferenceService/ModelInfer"),
            S(Infer)
        );
        assert_eq!(access("/grpc.health.v1.Health/Check"), Open);
        assert_eq!(access("/mercator.v1.Registry/Promote"), S(ModelsPromote));
        assert_eq!(access("/mercator.v1.Registry/Nope"), S(Admin));
        assert_eq!(access("garbage"), S(Admin));
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
        }
        assert_eq!(Scope::parse("root"), None);
    }
}
