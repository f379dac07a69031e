//! Where the applied definitions live. One process: a file next to the online store
//! (`FileDefinitions`). Many replicas: the server keeps them in the registry database
//! (an implementation of [`DefinitionsStore`] in the server), so every replica serves the
//! same views and an apply anywhere reaches all of them.

use std::path::PathBuf;

use crate::{FeatureError, Result};

/// Durable, revisioned storage of the definitions file.
#[async_trait::async_trait]
pub trait DefinitionsStore: std::fmt::Debug + Send + Sync {
    /// The current revision and TOML, if any were saved.
    async fn load(&self) -> Result<Option<(u64, String)>>;

    /// Saves a new revision if the current one is still `expected` (else
    /// [`FeatureError::Conflict`]); returns the new revision. `applied` says who applied
    /// it and what it changed, for stores that keep an audit trail.
    async fn save(&self, expected: Option<u64>, toml: &str, applied: &Applied) -> Result<u64>;
}

/// Who made an apply and what it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The principal (empty: the store's own default).
    pub actor: String,
    /// The changes, as `FeatureStore::apply` lists them.
    pub changes: Vec<String>,
}

/// Definitions in a local file, replaced atomically (write, fsync, rename, fsync dir).
/// The revision counts saves since the process opened it (1 if the file existed).
#[derive(Debug)]
pub struct FileDefinitions {
    path: PathBuf,
    revision: std::sync::Mutex<Option<u64>>,
}

impl FileDefinitions {
    /// Definitions kept at `path`.
    pub fn new(path: PathBuf) -> FileDefinitions {
        let revision = path.exists().then_some(1);
        FileDefinitions {
            path,
            revision: std::sync::Mutex::new(revision),
        }
    }

    fn current(&self) -> Option<u64> {
        self.revision.lock().map(|r| *r).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl DefinitionsStore for FileDefinitions {
    async fn load(&self) -> Result<Option<(u64, String)>> {
        let Some(revision) = self.current() else {
            return Ok(None);
        };
        let path = self.path.clone();
        let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .map_err(|e| FeatureError::Io(std::io::Error::other(e)))??;
        Ok(Some((revision, text)))
    }

    async fn save(&self, expected: Option<u64>, toml: &str, _: &Applied) -> Result<u64> {
        if self.current() != expected {
            return Err(FeatureError::Conflict(
                "the definitions changed while this apply was checked".into(),
            ));
        }
        let path = self.path.clone();
        let text = toml.to_string();
        tokio::task::spawn_blocking(move || write_atomically(&path, &text))
            .await
            .map_err(|e| FeatureError::Io(std::io::Error::other(e)))??;
        let next = expected.unwrap_or(0) + 1;
        if let Ok(mut r) = self.revision.lock() {
            *r = Some(next);
        }
        Ok(next)
    }
}

fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("toml.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
