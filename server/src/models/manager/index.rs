//! The repository index (Triton's repository extension): every registered model's
//! versions as this server sees them.

use super::ModelManager;
use crate::error::ServeError;

/// One entry of the repository index: a model version and whether it serves here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Model name.
    pub name: String,
    /// Version number ("" for a model with no version to serve).
    pub version: String,
    /// Whether it is loaded and serving.
    pub ready: bool,
    /// Why not, when not.
    pub reason: String,
}

impl ModelManager {
    /// Every registered model's versions as this server sees them: the ones it serves
    /// (ready), the ones a served alias points at that failed to load, and models it
    /// serves nothing of, with the reason.
    pub async fn index(&self) -> Result<Vec<IndexEntry>, ServeError> {
        let listing = self.registry.list_models().await?;
        let table = self.models.snapshot();
        let failures = self.failures();
        let unloaded = self.unloaded.lock().map(|u| u.clone()).unwrap_or_default();
        let mut index = Vec::new();
        for model in listing {
            let served = table.models.get(&model.name);
            for version in served.iter().flat_map(|e| e.versions.keys()) {
                index.push(IndexEntry {
                    name: model.name.clone(),
                    version: version.to_string(),
                    ready: true,
                    reason: String::new(),
                });
            }
            for ((_, version), f) in
                failures.range((model.name.clone(), 0)..=(model.name.clone(), u64::MAX))
            {
                index.push(IndexEntry {
                    name: model.name.clone(),
                    version: version.to_string(),
                    ready: false,
                    reason: f.message.clone(),
                });
            }
            if served.is_none() && !index.iter().any(|e| e.name == model.name) {
                index.push(IndexEntry {
                    name: model.name.clone(),
                    version: String::new(),
                    ready: false,
                    reason: if unloaded.contains(&model.name) {
                        "unloaded".into()
                    } else {
                        format!(
                            "no version behind the served aliases ({})",
                            self.aliases.join(", ")
                        )
                    },
                });
            }
        }
        Ok(index)
    }
}
