//! Serving errors and their one mapping to `tonic::Status`.

use mercator_registry::RegistryError;
use mercator_runtime::RuntimeError;
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// What went wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No loaded model has that name. A registered model is served only once an alias
    /// the server serves points at one of its versions: the message says how.
    #[error(
        "model '{0}' is not loaded: a server serves the versions its aliases point at \
         (models.serve_aliases, champion by default); if it is registered, \
         `mercator models alias {0} champion VERSION` serves one"
    )]
    ModelNotFound(String),
    /// The model is loaded, but not that version (or alias).
    #[error("version '{version}' of model '{model}' is not loaded")]
    VersionNotFound {
        /// Model name.
        model: String,
        /// The version asked for.
        version: String,
    },
    /// Something the request names, other than a model, does not exist (a series a
    /// forecaster does not know, an entity the feature store has no history for).
    #[error("{0}")]
    NotFound(String),
    /// A request field is malformed; `field` names it.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The offending field, e.g. `inputs[features]`.
        field: String,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The request is fine but the model cannot serve it as deployed (e.g. its feature
    /// bindings name a view the feature store does not define).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Too many requests are in flight.
    #[error("server overloaded: {0} requests already in flight")]
    Overloaded(usize),
    /// A version's dynamic-batching queue holds as many requests as it may.
    #[error(
        "the batching queue of model '{model}' version {version} is full ({waiting} requests waiting)"
    )]
    QueueFull {
        /// The model.
        model: String,
        /// The version.
        version: String,
        /// Its `max_queue_size`.
        waiting: usize,
    },
    /// The server cannot answer now (starting or shutting down).
    #[error("{0}")]
    Unavailable(String),
    /// The request's deadline passed before it was answered.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A registry operation failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A bug or an unexpected runtime failure.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServeError {
    /// An [`ServeError::InvalidArgument`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServeError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A stable tag for metrics and `ErrorInfo` reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            ServeError::ModelNotFound(_) => "model_not_found",
            ServeError::VersionNotFound { .. } => "version_not_found",
            ServeError::NotFound(_) => "not_found",
            ServeError::InvalidArgument { .. } => "invalid_argument",
            ServeError::FailedPrecondition(_) => "failed_precondition",
            ServeError::Overloaded(_) => "overloaded",
            ServeError::QueueFull { .. } => "queue_full",
            ServeError::Unavailable(_) => "unavailable",
            ServeError::DeadlineExceeded(_) => "deadline_exceeded",
            ServeError::Registry(e) => e.reason(),
            ServeError::Internal(_) => "internal",
        }
    }
}

impl ServeError {
    /// The gRPC code the error is answered with (as `tonic::Status::from` gives it), for
    /// the metrics of a call whose error is still to be returned.
    pub fn code(&self) -> Code {
        match self {
            ServeError::InvalidArgument { .. } => Code::InvalidArgument,
            ServeError::ModelNotFound(_)
            | ServeError::VersionNotFound { .. }
            | ServeError::NotFound(_) => Code::NotFound,
            ServeError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServeError::Overloaded(_) | ServeError::QueueFull { .. } => Code::ResourceExhausted,
            ServeError::Unavailable(_) => Code::Unavailable,
            ServeError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            ServeError::Internal(_) => Code::Internal,
            ServeError::Registry(e) => e.code(),
        }
    }
}

impl From<RuntimeError> for ServeError {
    fn from(e: RuntimeError) -> ServeError {
        match e {
            RuntimeError::InvalidInput { input, message } => ServeError::invalid(
                format!("inputs[{input}]"),
                format!("input '{input}': {message}"),
            ),
            RuntimeError::UnknownSeries(_) => ServeError::NotFound(e.to_string()),
            RuntimeError::UnknownOutput(name) => {
                ServeError::invalid("outputs", format!("unknown output '{name}'"))
            }
            RuntimeError::InvalidArtifact(_) | RuntimeError::Signature(_) => {
                ServeError::Internal(e.to_string())
            }
        }
    }
}

impl From<ServeError> for tonic::Status {
    fn from(e: ServeError) -> tonic::Status {
        let (text, reason) = (e.to_string(), e.reason());
        match e {
            ServeError::InvalidArgument { field, message } => {
                let mut details = ErrorDetails::with_bad_request_violation(field, message);
                details.set_error_info(reason, "mercator", [] as [(String, String); 0]);
                tonic::Status::with_error_details(Code::InvalidArgument, text, details)
            }
            ServeError::Registry(e) => e.into(),
            other => tonic::Status::new(other.code(), text),
        }
    }
}

/// The canonical upper-case name of a gRPC code, for the `code` metrics label.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
