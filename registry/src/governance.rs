//! Model-risk governance: which aliases are protected, and whether moving one needs a
//! second pair of eyes. With `require_approval`, a version may be moved onto a protected
//! alias only after a principal other than the one who registered it has approved it
//! (`Registry::approve`). Approvals, and moves refused for want of one, are audited.
//!
//! Rolling a protected alias back is not gated: it returns to a version that held the
//! alias before, and in an incident it must not wait for a reviewer.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The rules the registry applies to alias moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Governance {
    /// Aliases whose moves the rules below cover (`champion` by default with auth on).
    pub protected_aliases: Vec<String>,
    /// Whether a protected alias may point only at a version approved by someone other
    /// than its registrant.
    pub require_approval: bool,
}

impl Governance {
    /// Whether `alias` is protected.
    pub fn protects(&self, alias: &str) -> bool {
        self.protected_aliases.iter().any(|a| a == alias)
    }

    /// Whether moving `alias` needs an approved target version.
    pub fn gates(&self, alias: &str) -> bool {
        self.require_approval && self.protects(alias)
    }
}

/// One principal's approval of a version.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    /// The model.
    pub model: String,
    /// The version approved.
    pub version: u64,
    /// Who approved it (never its registrant).
    pub approved_by: String,
    /// When.
    pub approved_at: DateTime<Utc>,
    /// Why, as the approver wrote it.
    pub reason: String,
}
