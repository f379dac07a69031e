//! Feature store errors, with a stable reason tag for metrics and error details.

/// What went wrong in the feature store.
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    /// A definition file or field is malformed; `field` names where.
    #[error("{field}: {message}")]
    InvalidDefinition {
        /// Where, e.g. `feature_views[customer].fields[3].type`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Applying the definitions would break data already stored.
    #[error("incompatible change: {0}")]
    Incompatible(String),
    /// No feature view with that name.
    #[error("feature view '{0}' not found")]
    UnknownView(String),
    /// A pushed row does not fit the view's schema; nothing of the call was applied.
    #[error("rows[{row}].{field}: {message}")]
    InvalidRow {
        /// Index of the row in the call.
        row: usize,
        /// The offending field (or the entity key).
        field: String,
        /// What was expected.
        message: String,
    },
    /// A request names something malformed or unknown; `field` says where.
    #[error("{field}: {message}")]
    InvalidRequest {
        /// The offending request field, e.g. `features[2]`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the local log failed.
    #[error("feature store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Another apply changed the definitions first; nothing was written.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A store the feature store relies on failed or could not be reached; the message
    /// starts with which (`online store (redis)`, `offline store`, `registry`, …).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The local log holds bytes that are not a valid record (beyond a torn tail).
    #[error("feature store log is corrupt: {0}")]
    Corrupt(String),
}

impl FeatureError {
    /// An [`FeatureError::InvalidDefinition`].
    pub fn definition(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidDefinition {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A stable, low-cardinality tag.
    pub fn reason(&self) -> &'static str {
        match self {
            FeatureError::InvalidDefinition { .. } => "invalid_definition",
            FeatureError::Incompatible(_) => "incompatible",
            FeatureError::UnknownView(_) => "unknown_view",
            FeatureError::InvalidRow { .. } => "invalid_row",
            FeatureError::InvalidRequest { .. } => "invalid_request",
            FeatureError::Io(_) => "io",
            FeatureError::Unavailable(_) => "unavailable",
            FeatureError::Conflict(_) => "conflict",
            FeatureError::Corrupt(_) => "corrupt",
        }
    }
}

/// Result with [`FeatureError`].
pub type Result<T> = std::result::Result<T, FeatureError>;
