//! The registry's proof that a version's files make a model ([`VersionCheck`]), done the
//! way a load does it: the manifest parses (typed sections included), its weights are
//! among the files, the model builds from them, and a training profile fits its columns.

use std::collections::BTreeMap;

use bytes::Bytes;
use mercator_registry::check::{Checked, MANIFEST_FILE, VersionCheck};
use mercator_registry::{RegistryError, Result};
use mercator_runtime::Manifest;
use mercator_runtime::drift::{Columns, PROFILE_FILE, Profile};

/// Builds a version's model from its files to prove them.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildCheck;

impl VersionCheck for BuildCheck {
    fn check(&self, files: &BTreeMap<String, Bytes>) -> Result<Checked> {
        let manifest_bytes = files.get(MANIFEST_FILE).ok_or_else(|| {
            RegistryError::invalid(
                "files",
                format!("the manifest '{MANIFEST_FILE}' is missing"),
            )
        })?;
        let manifest = Manifest::parse(manifest_bytes)
            .map_err(|e| RegistryError::invalid(MANIFEST_FILE, e.to_string()))?;
        let weights = files.get(&manifest.weights).ok_or_else(|| {
            RegistryError::invalid(
                MANIFEST_FILE,
                format!("weights file '{}' is not among the files", manifest.weights),
            )
        })?;
        manifest
            .build_with(weights, &|name| files.get(name).map(|b| b.to_vec()))
            .map_err(|e| RegistryError::invalid(MANIFEST_FILE, e.to_string()))?;
        // A training profile, when one comes along, must describe this model's columns.
        if let Some(profile) = files.get(PROFILE_FILE) {
            Profile::parse(profile, &Columns::of(&manifest))
                .map_err(|e| RegistryError::invalid(PROFILE_FILE, e.to_string()))?;
        }
        Ok(Checked {
            description: manifest.description,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_registry_and_the_runtime_name_the_manifest_alike() {
        assert_eq!(
            mercator_registry::check::MANIFEST_FILE,
            mercator_runtime::manifest::MANIFEST_FILE
        );
    }
}
