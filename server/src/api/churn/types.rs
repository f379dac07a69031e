//! `Churn/Score` in its own terms: the request, each customer's score with its reasons
//! and intervention, and the answer. `grpc/churn.rs` converts them to and from protobuf.

/// Customers to score.
#[derive(Debug, Clone, Default)]
pub struct ScoreRequest {
    /// The model; empty for [`super::DEFAULT_MODEL`].
    pub model: String,
    /// The version or alias; empty for the traffic split.
    pub version: String,
    /// The customers, in the order the answer keeps.
    pub customer_ids: Vec<String>,
    /// How many reasons to give each score (0: none).
    pub top_reasons: u32,
}

/// Whether a customer could be scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerStatus {
    /// Scored from the features the store holds.
    Scored,
    /// The store holds no feature of the customer: not scored.
    NoFeatures,
}

/// Where the value of a reason's feature came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The store's value.
    Present,
    /// Absent from the store: the manifest's default (or NaN).
    Missing,
    /// Past the view's TTL: the manifest's default (or NaN).
    Expired,
}

/// One feature's share of a customer's churn log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// `view:field`.
    pub feature: String,
    /// The value the model saw.
    pub value: f64,
    /// Where it came from.
    pub source: Source,
    /// Its contribution to the log-odds.
    pub contribution: f64,
    /// Whether it raises the risk (else lowers it).
    pub raises_risk: bool,
}

/// The runbook's action for a customer, and the rule that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    /// What to do (for a customer in control: what would have been done).
    pub action: String,
    /// The rule that chose it.
    pub rule: String,
    /// Whether the customer is in the rule's control group: do nothing for them.
    pub control: bool,
    /// The rule's experiment ("" when it holds out no one).
    pub experiment: String,
}

/// One customer's score.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerScore {
    /// The customer.
    pub customer_id: String,
    /// Whether it was scored.
    pub status: CustomerStatus,
    /// The churn probability (0 when not scored).
    pub probability: f64,
    /// The risk band ("" when not scored).
    pub risk_band: String,
    /// Features absent from the store.
    pub missing_features: Vec<String>,
    /// Features past their view's TTL.
    pub expired_features: Vec<String>,
    /// The version that scored it.
    pub model_version: String,
    /// The largest contributions, largest first, when asked for.
    pub reasons: Vec<Reason>,
    /// The runbook's action, if a rule matched.
    pub intervention: Option<Intervention>,
    /// How much the action raises the favourable outcome's probability (for churn, the
    /// fall in churn), from the runbook's uplift model, when it scored the customer.
    pub uplift: Option<f64>,
}

/// The scores of a call, in the order of its customers.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreAnswer {
    /// The model.
    pub model: String,
    /// The version, when every customer reached the same one ("" across a split).
    pub version: String,
    /// One score per customer.
    pub scores: Vec<CustomerScore>,
}
