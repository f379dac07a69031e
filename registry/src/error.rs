//! Registry errors, with a stable reason tag for metrics and error details.

/// What went wrong in the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A model, version or alias that does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A request field that is malformed; `field` names it.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The offending field, e.g. `files[2].path`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The request conflicts with the current state (e.g. aliasing an archived version).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A governance rule refuses the caller (approving a version they registered).
    #[error("{0}")]
    PermissionDenied(String),
    /// A stored file does not match the checksum or size the registry recorded.
    #[error("artifact integrity check failed: {0}")]
    Integrity(String),
    /// The SQL store failed.
    #[error("registry database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("registry migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Object storage failed.
    #[error("artifact storage error: {0}")]
    Storage(#[from] object_store::Error),
    /// The configuration (a URL, say) is unusable.
    #[error("registry configuration: {0}")]
    Config(String),
}

impl RegistryError {
    /// An [`RegistryError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A stable, low-cardinality tag for metrics labels and `ErrorInfo` reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            RegistryError::NotFound(_) => "not_found",
            RegistryError::InvalidArgument { .. } => "invalid_argument",
            RegistryError::FailedPrecondition(_) => "failed_precondition",
            RegistryError::PermissionDenied(_) => "permission_denied",
            RegistryError::Integrity(_) => "integrity",
            RegistryError::Database(_) => "database",
            RegistryError::Migration(_) => "migration",
            RegistryError::Storage(_) => "storage",
            RegistryError::Config(_) => "config",
        }
    }
}

/// Result with [`RegistryError`].
pub type Result<T> = std::result::Result<T, RegistryError>;
