//! A version's files as `mercator models register` uploads them: every file under the
//! folder but those its `.mercatorignore` (gitignore rules) leaves out, with a warning for
//! files the manifest does not reference (a training CSV uploaded by mistake is stored
//! with every version).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use bytes::Bytes;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use mercator_runtime::Manifest;
use mercator_runtime::drift::PROFILE_FILE;
use mercator_runtime::manifest::MANIFEST_FILE;

/// The file in a version's folder that lists what not to upload.
const IGNORE_FILE: &str = ".mercatorignore";

/// Reads a version's files: every file under a folder (which must hold mercator.json)
/// that `.mercatorignore` does not leave out, or a lone XGBoost JSON model, for which the
/// manifest is inferred.
pub fn read_version_files(path: &Path) -> anyhow::Result<BTreeMap<String, Bytes>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut files = BTreeMap::new();
    if meta.is_dir() {
        let ignored = ignore_rules(path)?;
        collect_dir(path, path, &ignored, &mut files)?;
        let Some(manifest) = files.get(MANIFEST_FILE) else {
            bail!("{} has no {MANIFEST_FILE} manifest", path.display());
        };
        // An unreadable manifest is the registry's to refuse, with its reasons.
        if let Ok(manifest) = Manifest::parse(manifest) {
            warn_unreferenced(path, &manifest, &files);
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

/// Builds the drift profile of the version in `files` from its training data at `data`
/// (as `mercator profile build` does for a registered one) and adds it as `profile.json`,
/// replacing none: a folder that already has a profile keeps it, and the call is refused.
pub(super) async fn add_profile(
    files: &mut BTreeMap<String, Bytes>,
    data: &str,
) -> anyhow::Result<()> {
    if files.contains_key(PROFILE_FILE) {
        bail!("the version already has a {PROFILE_FILE}: drop --profile-data, or the file");
    }
    let manifest = Manifest::parse(
        files
            .get(MANIFEST_FILE)
            .with_context(|| format!("no {MANIFEST_FILE}"))?,
    )?;
    let weights = files
        .get(&manifest.weights)
        .with_context(|| format!("the weights file '{}' is missing", manifest.weights))?;
    let model = manifest.build_with(weights, &|name| files.get(name).map(|b| b.to_vec()))?;
    let batch = if manifest.max_batch_size > 0 {
        manifest.max_batch_size as usize
    } else {
        PROFILE_BATCH
    };
    let profile = crate::cli::profiling::profile_table(
        &manifest,
        model.as_ref(),
        data,
        mercator_runtime::drift::profile::DEFAULT_BINS,
        batch,
    )
    .await
    .with_context(|| format!("profiling on {data}"))?;
    eprintln!(
        "profiled on {data}: {} rows, {} features, {} predictions",
        profile.rows,
        profile.features.len(),
        profile.predictions.len()
    );
    files.insert(
        PROFILE_FILE.to_string(),
        Bytes::from(serde_json::to_vec(&profile)?),
    );
    Ok(())
}

/// Rows per model call while profiling, when the manifest sets no batch size.
const PROFILE_BATCH: usize = 4096;

/// `mercator models init DIR --from MODEL`: copies an XGBoost JSON model into `dir` as
/// `model.json` beside the manifest inferred from it, never overwriting a manifest.
pub(super) fn init(dir: &Path, from: &Path) -> anyhow::Result<()> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if manifest_path.exists() {
        bail!(
            "{} exists; edit it, or start in another folder",
            manifest_path.display()
        );
    }
    let model = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    let manifest = Manifest::infer_for_xgboost(&model, "model.json")
        .with_context(|| format!("{} is not an XGBoost JSON model", from.display()))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join("model.json"), &model)
        .with_context(|| format!("cannot write {}", dir.join("model.json").display()))?;
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    println!(
        "wrote {} and model.json: check the inputs (feature names, feature-store bindings), \
         add a profile.json for drift, then `mercator models register NAME {}`",
        manifest_path.display(),
        dir.display()
    );
    Ok(())
}

/// The folder's `.mercatorignore`, if it has one.
fn ignore_rules(root: &Path) -> anyhow::Result<Gitignore> {
    let mut builder = GitignoreBuilder::new(root);
    let file = root.join(IGNORE_FILE);
    if file.is_file()
        && let Some(e) = builder.add(&file)
    {
        bail!("{}: {e}", file.display());
    }
    builder
        .build()
        .with_context(|| format!("{}", file.display()))
}

fn collect_dir(
    root: &Path,
    dir: &Path,
    ignored: &Gitignore,
    files: &mut BTreeMap<String, Bytes>,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let is_dir = entry.file_type()?.is_dir();
        if entry.file_name().to_string_lossy().starts_with('.')
            || ignored
                .matched_path_or_any_parents(&path, is_dir)
                .is_ignore()
        {
            continue;
        }
        if is_dir {
            collect_dir(root, &path, ignored, files)?;
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

/// Says which files will be stored although no model reads them (the manifest, the
/// files its kind reads and a drift profile are what a version is made of).
fn warn_unreferenced(root: &Path, manifest: &Manifest, files: &BTreeMap<String, Bytes>) {
    let mut used = manifest.files();
    used.extend([MANIFEST_FILE.to_string(), PROFILE_FILE.to_string()]);
    let extra: Vec<String> = files
        .iter()
        .filter(|(name, _)| !used.contains(name))
        .map(|(name, bytes)| format!("{name} ({})", size(bytes.len())))
        .collect();
    if !extra.is_empty() {
        eprintln!(
            "warning: uploading {} file(s) that the manifest does not reference: {}; \
             list them in {} to leave them out",
            extra.len(),
            extra.join(", "),
            root.join(IGNORE_FILE).display()
        );
    }
}

pub(super) fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}
