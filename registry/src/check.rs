//! How the registry proves a new version's files make a model before it stores them,
//! without knowing any model kind: the server injects a [`VersionCheck`] (it builds the
//! model from the files), so this crate compiles without the runtime.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::Result;

/// File name of the manifest inside a version's folder: the one file the registry itself
/// reads (its text is kept with the version's record).
pub const MANIFEST_FILE: &str = "mercator.json";

/// What a check learned of a version worth keeping with its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// The manifest's description, used when the registration gives none.
    pub description: String,
}

/// Proves that a new version's files make a model: a manifest that parses, its weights
/// among the files, a model that builds from them, a training profile (if any) that
/// fits. Called before anything is written; an error refuses the registration.
pub trait VersionCheck: Send + Sync + std::fmt::Debug {
    /// Checks `files` (paths already checked safe, the manifest among them); errors are
    /// [`crate::RegistryError::InvalidArgument`] naming the file at fault.
    fn check(&self, files: &BTreeMap<String, Bytes>) -> Result<Checked>;
}
