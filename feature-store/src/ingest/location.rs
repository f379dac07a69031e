//! Where a load reads from or writes to: a URL or local path, resolved to an object
//! store and a path in it.

use std::sync::Arc;

use crate::{FeatureError, Result};

/// Resolves a URL or local path to an object store and a path in it.
pub(crate) fn locate(
    location: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    let url = match url::Url::parse(location) {
        Ok(u) if u.scheme().len() > 1 => u,
        _ => {
            let abs =
                std::fs::canonicalize(location).map_err(|e| FeatureError::InvalidRequest {
                    field: "url".into(),
                    message: format!("cannot read '{location}': {e}"),
                })?;
            url::Url::from_file_path(&abs).map_err(|()| FeatureError::InvalidRequest {
                field: "url".into(),
                message: format!("'{location}' is not a usable path"),
            })?
        }
    };
    let (store, path) =
        object_store::parse_url_opts(&url, crate::object_env::from_env()).map_err(|e| {
            FeatureError::InvalidRequest {
                field: "url".into(),
                message: format!("'{location}': {e}"),
            }
        })?;
    Ok((Arc::from(store), path))
}

/// Like [`locate`], for a file that may not exist yet (its directory must).
pub(crate) fn locate_for_write(
    location: &str,
) -> Result<(Arc<dyn object_store::ObjectStore>, object_store::path::Path)> {
    match url::Url::parse(location) {
        Ok(u) if u.scheme().len() > 1 => locate(location),
        _ => {
            let path = std::path::Path::new(location);
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            let name = path
                .file_name()
                .ok_or_else(|| FeatureError::InvalidRequest {
                    field: "output".into(),
                    message: format!("'{location}' names no file"),
                })?;
            let dir = std::fs::canonicalize(dir).map_err(|e| FeatureError::InvalidRequest {
                field: "output".into(),
                message: format!("'{}': {e}", dir.display()),
            })?;
            let url = url::Url::from_file_path(dir.join(name)).map_err(|()| {
                FeatureError::InvalidRequest {
                    field: "output".into(),
                    message: format!("'{location}' is not a usable path"),
                }
            })?;
            let (store, path) =
                object_store::parse_url(&url).map_err(|e| FeatureError::InvalidRequest {
                    field: "output".into(),
                    message: e.to_string(),
                })?;
            Ok((Arc::from(store), path))
        }
    }
}

/// Whether a location names a Parquet file (by extension), rather than CSV.
pub fn is_parquet(location: &str) -> bool {
    let lower = location.to_ascii_lowercase();
    lower.ends_with(".parquet") || lower.ends_with(".pq")
}
