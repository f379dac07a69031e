//! Errors raised while building a model from its artifacts or running it.

/// What went wrong in the runtime. Load errors describe a bad artifact; input errors
/// describe a request that does not fit the model's signature and name the tensor.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The artifact could not be parsed or describes something this runtime can't run.
    #[error("invalid model artifact: {0}")]
    InvalidArtifact(String),
    /// The manifest's tensor signature does not fit the artifact.
    #[error("signature does not match the model: {0}")]
    Signature(String),
    /// An input tensor does not match the model's signature.
    #[error("input '{input}': {message}")]
    InvalidInput {
        /// Name of the offending input tensor.
        input: String,
        /// What was expected, in words.
        message: String,
    },
    /// A forecaster keyed by series does not know the series (its key parts, joined
    /// with `/`).
    #[error("the model has no series '{0}'")]
    UnknownSeries(String),
    /// A requested output is not one the model produces.
    #[error("unknown output '{0}'")]
    UnknownOutput(String),
}

impl RuntimeError {
    /// Builds an [`RuntimeError::InvalidInput`] for the named input.
    pub fn input(input: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            input: input.into(),
            message: message.into(),
        }
    }

    /// Builds an [`RuntimeError::InvalidArtifact`].
    pub fn artifact(message: impl Into<String>) -> Self {
        Self::InvalidArtifact(message.into())
    }
}

/// Result with [`RuntimeError`].
pub type Result<T> = std::result::Result<T, RuntimeError>;
