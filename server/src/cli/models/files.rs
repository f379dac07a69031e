//! A version's files as `mercator models register` uploads them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use mercator_runtime::Manifest;
use mercator_runtime::manifest::MANIFEST_FILE;

/// Reads a version's files: every file under a folder (which must hold mercator.json), or
/// a lone XGBoost JSON model, for which the manifest is inferred.
pub fn read_version_files(path: &Path) -> anyhow::Result<BTreeMap<String, Bytes>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut files = BTreeMap::new();
    if meta.is_dir() {
        collect_dir(path, path, &mut files)?;
        if !files.contains_key(MANIFEST_FILE) {
            bail!("{} has no {MANIFEST_FILE} manifest", path.display());
        }
    } else {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = Manifest::infer_for_xgboost(&bytes, "model.json").with_context(|| {
            format!(
                "{} is neither a folder with {MANIFEST_FILE} nor an XGBoost JSON model",
                path.display()
            )
        })?;
        files.insert(
            MANIFEST_FILE.to_string(),
            Bytes::from(serde_json::to_vec_pretty(&manifest)?),
        );
        files.insert("model.json".to_string(), Bytes::from(bytes));
    }
    Ok(files)
}

fn collect_dir(root: &Path, dir: &Path, files: &mut BTreeMap<String, Bytes>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_dir(root, &path, files)?;
        } else {
            let rel = path
                .strip_prefix(root)?
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            files.insert(rel, Bytes::from(bytes));
        }
    }
    Ok(())
}
