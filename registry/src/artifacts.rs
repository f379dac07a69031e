//! Artifact I/O over `object_store`: where a version's files live, writing them through a
//! staging area, and reading them back with their checksums verified.
//!
//! Layout under the store's root: `models/<name>/<version>/<path>` for registered
//! versions and `staging/<uuid>/<path>` for uploads in progress. A version becomes visible
//! only when its row commits in the registry, so files under `models/` without a row are
//! leftovers of a failed registration and are overwritten by the next one.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use sha2::{Digest, Sha256};

use crate::model::{ArtifactFile, ModelVersion};
use crate::{RegistryError, Result};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Builds a cloud store: environment first, then the URL, then explicit options.
macro_rules! configured {
    ($builder:ty, $url:expr, $options:expr) => {{
        let mut b = <$builder>::from_env().with_url($url);
        for (k, v) in &$options {
            b = b.with_config(k.parse().map_err(|e| bad_option(k, e))?, v);
        }
        Arc::new(b.build()?)
    }};
}

fn bad_option(key: &str, e: object_store::Error) -> RegistryError {
    RegistryError::Config(format!("artifact store option '{key}': {e}"))
}

/// The object store holding model artifacts.
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
    url: String,
    /// The folder of a local store: what `object_store` cannot list there (the
    /// `name#N` files a write killed half-way leaves) is cleaned from it directly.
    local: Option<std::path::PathBuf>,
}

impl ArtifactStore {
    /// Opens the store a URL names: `file:///abs/dir` (or a plain directory path),
    /// `memory://`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`.
    /// Cloud credentials come from the usual environment variables (`AWS_*`,
    /// `GOOGLE_*`, `AZURE_*`).
    pub fn open(url: &str) -> Result<ArtifactStore> {
        Self::open_with(url, std::iter::empty::<(String, String)>())
    }

    /// Like [`ArtifactStore::open`], with object_store configuration keys on top of the
    /// environment, e.g. `("aws_endpoint", "http://127.0.0.1:9000")`,
    /// `("aws_allow_http", "true")`. An unknown key is a configuration error.
    pub fn open_with(
        url: &str,
        options: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ArtifactStore> {
        let options: Vec<(String, String)> = options.into_iter().collect();
        let parsed = match url::Url::parse(url) {
            Ok(u) if u.scheme().len() > 1 => u,
            // A bare path (or a Windows drive letter) is a local directory.
            _ => return Self::local(std::path::Path::new(url), url),
        };
        let prefix = Path::parse(parsed.path().trim_start_matches('/')).map_err(|e| {
            RegistryError::Config(format!("artifact URL path '{}': {e}", parsed.path()))
        })?;
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "file" => {
                let dir = parsed.to_file_path().map_err(|_| {
                    RegistryError::Config(format!("'{url}' is not a local file URL"))
                })?;
                return Self::local(&dir, url);
            }
            "memory" => Arc::new(object_store::memory::InMemory::new()),
            "s3" | "s3a" => configured!(object_store::aws::AmazonS3Builder, url, options),
            "gs" => configured!(object_store::gcp::GoogleCloudStorageBuilder, url, options),
            "az" | "azure" | "abfs" | "abfss" => {
                configured!(object_store::azure::MicrosoftAzureBuilder, url, options)
            }
            other => {
                return Err(RegistryError::Config(format!(
                    "artifact store scheme '{other}' is not supported (file, memory, s3, gs, az)"
                )));
            }
        };
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            store
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(ArtifactStore {
            store,
            url: url.to_string(),
            local: None,
        })
    }

    fn local(dir: &std::path::Path, url: &str) -> Result<ArtifactStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            RegistryError::Config(format!(
                "cannot create artifact directory {}: {e}",
                dir.display()
            ))
        })?;
        // Empty folders go with their last file, so a finished upload leaves no
        // `staging/<id>/` behind.
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?
            .with_automatic_cleanup(true);
        Ok(ArtifactStore {
            store: Arc::new(store),
            url: url.to_string(),
            local: Some(dir.to_path_buf()),
        })
    }

    /// Wraps an existing store (tests use this with fault-injecting stores).
    pub fn from_store(store: Arc<dyn ObjectStore>, url: impl Into<String>) -> ArtifactStore {
        ArtifactStore {
            store,
            url: url.into(),
            local: None,
        }
    }

    /// The URL the store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Prefix of a version's folder, e.g. `models/churn/3`.
    pub fn version_prefix(model: &str, version: u64) -> String {
        format!("models/{model}/{version}")
    }

    fn path(prefix: &str, file: &str) -> Result<Path> {
        Path::parse(format!("{prefix}/{file}"))
            .map_err(|e| RegistryError::invalid("files.path", e.to_string()))
    }

    /// Writes files under a fresh staging prefix and returns that prefix.
    pub(crate) async fn stage(&self, files: &BTreeMap<String, Bytes>) -> Result<String> {
        let prefix = format!("staging/{}", uuid::Uuid::new_v4());
        for (name, content) in files {
            self.store
                .put(
                    &Self::path(&prefix, name)?,
                    PutPayload::from(content.clone()),
                )
                .await?;
        }
        Ok(prefix)
    }

    /// Copies staged files into a version's folder.
    pub(crate) async fn publish(
        &self,
        staging: &str,
        files: &BTreeMap<String, Bytes>,
        target: &str,
    ) -> Result<()> {
        for name in files.keys() {
            self.store
                .copy(&Self::path(staging, name)?, &Self::path(target, name)?)
                .await?;
        }
        Ok(())
    }

    /// Deletes uploads left in `staging/` by registrations that died (a killed process)
    /// and are older than `older_than`; returns how many uploads were removed. A live
    /// registration stages and publishes within seconds, so an hour-old upload is dead.
    pub(crate) async fn remove_stale_staging(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let staging = Path::from("staging");
        let stale: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&staging))
            .try_filter(|m| futures::future::ready(m.last_modified < cutoff))
            .try_collect()
            .await?;
        let mut uploads = std::collections::BTreeSet::new();
        for meta in stale {
            if let Some(upload) = meta.location.parts().nth(1) {
                uploads.insert(upload.as_ref().to_string());
            }
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(root) = &self.local {
            let staging = root.join("staging");
            let cutoff = std::time::SystemTime::now()
                .checked_sub(older_than)
                .unwrap_or(std::time::UNIX_EPOCH);
            let swept = tokio::task::spawn_blocking(move || sweep_local(&staging, cutoff))
                .await
                .map_err(|e| local_error(std::io::Error::other(e)))??;
            uploads.extend(swept);
        }
        Ok(uploads.len())
    }

    /// Deletes everything under `prefix`, ignoring what is already gone.
    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<()> {
        let prefix = Path::parse(prefix).map_err(|e| RegistryError::Config(e.to_string()))?;
        let paths: Vec<Path> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for p in paths {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads one file of a version and checks it against the recorded size and sha256.
    pub async fn fetch_file(&self, version: &ModelVersion, file: &ArtifactFile) -> Result<Bytes> {
        let path = Self::path(&version.artifact_prefix, &file.path)?;
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(RegistryError::Integrity(format!(
                    "{}@{}: file '{}' is missing from {}",
                    version.model, version.version, file.path, self.url
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let digest = sha256_hex(&bytes);
        if bytes.len() as u64 != file.size_bytes || digest != file.sha256 {
            return Err(RegistryError::Integrity(format!(
                "{}@{}: file '{}' has sha256 {digest} and {} bytes, the registry recorded {} and {} bytes",
                version.model,
                version.version,
                file.path,
                bytes.len(),
                file.sha256,
                file.size_bytes
            )));
        }
        Ok(bytes)
    }

    /// What object storage says about a version's files, without reading them (entity
    /// tag, object version, size, last modified): it changes when a file is rewritten,
    /// appears or disappears. A server that failed to load a version compares it to
    /// decide whether trying again could give another result.
    pub async fn fingerprint(&self, version: &ModelVersion) -> Result<Fingerprint> {
        let mut files = Vec::with_capacity(version.files.len());
        for file in &version.files {
            let path = Self::path(&version.artifact_prefix, &file.path)?;
            let seen = match self.store.head(&path).await {
                Ok(m) => Some(format!(
                    "etag={:?} version={:?} size={} modified={}",
                    m.e_tag,
                    m.version,
                    m.size,
                    m.last_modified.to_rfc3339()
                )),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            files.push((file.path.clone(), seen));
        }
        Ok(Fingerprint(files))
    }

    /// Reads every file of a version, each verified against its checksum.
    pub async fn fetch_version(&self, version: &ModelVersion) -> Result<BTreeMap<String, Bytes>> {
        let mut out = BTreeMap::new();
        for file in &version.files {
            out.insert(file.path.clone(), self.fetch_file(version, file).await?);
        }
        Ok(out)
    }

    /// Overwrites one stored file. For tests that simulate corruption after registration.
    #[doc(hidden)]
    pub async fn overwrite_for_test(
        &self,
        version: &ModelVersion,
        file: &str,
        content: Bytes,
    ) -> Result<()> {
        self.store
            .put(
                &Self::path(&version.artifact_prefix, file)?,
                PutPayload::from(content),
            )
            .await?;
        Ok(())
    }
}

/// The object metadata of a version's files, by path (`None`: the file is missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(Vec<(String, Option<String>)>);

/// A local folder's I/O error as the storage error it is.
fn local_error(e: std::io::Error) -> RegistryError {
    RegistryError::Storage(object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    })
}

/// Removes from a local store's `staging` folder every file last written before
/// `cutoff`, including the `name#N` files that a write killed half-way leaves (which
/// `object_store` does not list), then the folders left empty; returns the uploads
/// (`staging/<id>`) it took anything from.
fn sweep_local(
    staging: &std::path::Path,
    cutoff: std::time::SystemTime,
) -> Result<std::collections::BTreeSet<String>> {
    let mut swept = std::collections::BTreeSet::new();
    let uploads = match std::fs::read_dir(staging) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(swept),
        Err(e) => return Err(local_error(e)),
    };
    for upload in uploads.flatten() {
        let name = upload.file_name().to_string_lossy().to_string();
        let mut stack = vec![upload.path()];
        let mut dirs = Vec::new();
        while let Some(path) = stack.pop() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    stack.extend(entries.flatten().map(|e| e.path()));
                }
                dirs.push(path);
            } else if meta.modified().is_ok_and(|m| m < cutoff)
                && std::fs::remove_file(&path).is_ok()
            {
                swept.insert(name.clone());
            }
        }
        // Deepest first; a folder still holding a live upload's files stays.
        for dir in dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(swept)
}
