//! Where a client may name files to load from: the folders and bucket prefixes the
//! operator configured, and nothing else. A path is resolved (symlinks, `..`) before it is
//! compared, so it cannot step out of its root; a path outside every root gets the same
//! answer whether or not it exists, so the refusal reveals nothing of the server's disk.

use std::path::{Component, Path, PathBuf};

use crate::{FeatureError, Result};

/// The allowed roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roots {
    /// Local folders, resolved.
    dirs: Vec<PathBuf>,
    /// Object-store prefixes, `scheme://bucket/prefix/`.
    prefixes: Vec<String>,
}

/// How much of a client's location an error quotes.
const SHOWN: usize = 200;

impl Roots {
    /// Roots from folders and `s3://…`/`gs://…`/`az://…` prefixes. A folder that does not
    /// exist yet is created (a fresh data directory has none).
    pub fn new<I, S>(roots: I) -> Result<Roots>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Roots::default();
        for root in roots {
            let root = root.as_ref();
            match url::Url::parse(root) {
                Ok(url) if url.scheme() == "file" => {
                    let path = url.to_file_path().map_err(|()| bad_root(root))?;
                    out.dirs.push(resolve_dir(&path, root)?);
                }
                Ok(url) if url.scheme().len() > 1 => {
                    let mut prefix = url.to_string();
                    if !prefix.ends_with('/') {
                        prefix.push('/');
                    }
                    out.prefixes.push(prefix);
                }
                _ => out.dirs.push(resolve_dir(Path::new(root), root)?),
            }
        }
        Ok(out)
    }

    /// The location to load for a client's `location`: a relative path is taken inside
    /// the first folder root (`<data_dir>/features` by default); anything outside every
    /// root is refused, naming `field` and the roots.
    pub fn resolve(&self, field: &str, location: &str) -> Result<String> {
        let relative = url::Url::parse(location).is_err()
            && !location.is_empty()
            && Path::new(location).is_relative();
        let location = match (relative, self.dirs.first()) {
            (true, Some(first)) => first.join(location).display().to_string(),
            _ => location.to_string(),
        };
        self.check(field, &location)?;
        Ok(location)
    }

    /// The roots as an error names them: folders and prefixes (configuration, no secret).
    fn named(&self) -> String {
        let all: Vec<String> = self
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .chain(self.prefixes.iter().cloned())
            .collect();
        if all.is_empty() {
            "none".into()
        } else {
            all.join(", ")
        }
    }

    /// Refuses a `location` outside every root, naming `field` and the roots.
    pub fn check(&self, field: &str, location: &str) -> Result<()> {
        let allowed = match url::Url::parse(location) {
            Ok(url) if url.scheme() == "file" => url
                .to_file_path()
                .ok()
                .is_some_and(|path| self.allows_path(&path)),
            Ok(url) if url.scheme().len() > 1 => {
                let text = url.to_string();
                url.path_segments()
                    .is_some_and(|mut s| s.all(|seg| seg != ".." && seg != "."))
                    && self.prefixes.iter().any(|p| text.starts_with(p.as_str()))
            }
            _ => self.allows_path(Path::new(location)),
        };
        if allowed {
            return Ok(());
        }
        Err(FeatureError::InvalidRequest {
            field: field.into(),
            message: format!(
                "'{}' is not inside a folder or bucket this server loads from: {} \
                 (features.load_roots; a relative path is read inside the first)",
                shown(location),
                self.named()
            ),
        })
    }

    fn allows_path(&self, path: &Path) -> bool {
        // Resolved when it exists; when not, judged lexically (and the read fails later
        // with "cannot read", which inside a root reveals nothing new).
        let resolved = std::fs::canonicalize(path).ok().or_else(|| lexical(path));
        resolved.is_some_and(|p| self.dirs.iter().any(|d| p.starts_with(d)))
    }
}

/// An absolute path with `.` and `..` folded, or `None` when relative or above `/`.
fn lexical(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn resolve_dir(path: &Path, root: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(path)
        .and_then(|()| std::fs::canonicalize(path))
        .map_err(|e| FeatureError::InvalidRequest {
            field: "load_roots".into(),
            message: format!("'{root}' is not a usable folder: {e}"),
        })
}

fn bad_root(root: &str) -> FeatureError {
    FeatureError::InvalidRequest {
        field: "load_roots".into(),
        message: format!("'{root}' is not a usable folder"),
    }
}

/// A client's text, cut to [`SHOWN`] characters with control characters escaped.
pub fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > SHOWN {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inside_the_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("imports");
        let roots =
            Roots::new([root.display().to_string(), "s3://bucket/features".into()]).expect("roots");
        let inside = root.join("a.csv");
        std::fs::write(&inside, "x\n").expect("write");
        assert!(roots.check("url", &inside.display().to_string()).is_ok());
        assert!(
            roots
                .check("url", &format!("file://{}", inside.display()))
                .is_ok()
        );
        assert!(
            roots
                .check("url", &root.join("not-yet.csv").display().to_string())
                .is_ok()
        );
        assert!(
            roots
                .check("url", "s3://bucket/features/day=1/a.parquet")
                .is_ok()
        );

        let outside = dir.path().join("secret.csv");
        std::fs::write(&outside, "x\n").expect("write");
        for bad in [
            "/etc/passwd".to_string(),
            "/no/such/file".to_string(),
            "file:///etc/passwd".to_string(),
            outside.display().to_string(),
            format!("{}/../secret.csv", root.display()),
            "s3://bucket/other/a.csv".into(),
            "s3://bucket/features/../other/a.csv".into(),
            "s3://bucket/featuresX/a.csv".into(),
            "relative.csv".into(),
        ] {
            let err = roots.check("url", &bad).expect_err(&bad);
            assert!(
                err.to_string().contains("features.load_roots"),
                "{bad}: {err}"
            );
        }
        // A link inside a root to a file outside it is judged by where it points.
        #[cfg(unix)]
        {
            let link = root.join("link.csv");
            std::os::unix::fs::symlink(&outside, &link).expect("symlink");
            assert!(roots.check("url", &link.display().to_string()).is_err());
        }
        // A relative path is read inside the first root; the refusal names the roots.
        let relative = roots
            .resolve("url", "a.csv")
            .expect("inside the first root");
        assert_eq!(relative, root.join("a.csv").display().to_string());
        assert!(roots.resolve("url", "../secret.csv").is_err());
        let err = roots.check("url", "/etc/passwd").expect_err("outside");
        assert!(
            err.to_string().contains(&root.display().to_string())
                && err.to_string().contains("s3://bucket/features/"),
            "{err}"
        );
        // No roots: nothing may be named.
        assert!(
            Roots::default()
                .check("url", &inside.display().to_string())
                .is_err()
        );
    }

    #[test]
    fn shown_text_is_cut_and_escaped() {
        assert_eq!(shown("a\nb"), "a\\nb");
        let long = "x".repeat(10_000);
        assert_eq!(shown(&long).chars().count(), SHOWN + 1);
    }
}
