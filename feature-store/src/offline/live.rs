//! Which history files count. Compaction writes one file holding the rows of several
//! (named in its footer under [`REPLACES`]) before anything is deleted, so for a while
//! both exist; a reader must count each row once. The rule, over one date partition:
//! compacted files are taken newest first; one whose inputs a newer counted compaction
//! already replaced lost a race with it (two compactors listed the same files) and does
//! not count; one that counts replaces its inputs, and theirs if they were compacted
//! files too. Every other file counts. Rows are then neither lost nor doubled whatever
//! the interleaving of writers, compactors and deletions.

use std::collections::{HashMap, HashSet};

use object_store::path::Path;

/// The footer key listing the files a compacted file replaces (file names in the same
/// partition, one per line).
pub const REPLACES: &str = "mercator.replaces";

/// A history file and, if it is a compaction, the files it replaces.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Where it is.
    pub path: Path,
    /// The paths it replaces (a compacted file), else `None`.
    pub replaces: Option<Vec<Path>>,
}

/// The verdict on a list of files.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Indexes of the files that count, in the order given.
    pub live: Vec<usize>,
    /// Indexes of the files that do not, each with when the file that made it so was
    /// written (microseconds; what a grace period before deletion counts from).
    pub dead: Vec<(usize, i64)>,
}

/// When a file was written, from its name (`<µs, 20 digits>-…`); 0 if unreadable.
pub fn written_micros(path: &Path) -> i64 {
    path.filename()
        .and_then(|f| f.split('-').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

/// Judges `files` (all of one partition, or any superset).
pub fn judge(files: &[Listed]) -> Verdict {
    let index: HashMap<&Path, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (&f.path, i))
        .collect();
    let mut compacted: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].replaces.is_some())
        .collect();
    compacted.sort_by(|&a, &b| files[b].path.cmp(&files[a].path));
    // Replaced (or beaten) files, with when their replacement was written.
    let mut dead: HashMap<usize, i64> = HashMap::new();
    let mut replaced: HashSet<&Path> = HashSet::new();
    for &c in &compacted {
        let inputs = files[c].replaces.as_deref().unwrap_or_default();
        let written = written_micros(&files[c].path);
        if dead.contains_key(&c) {
            continue;
        }
        if inputs.iter().any(|p| replaced.contains(p)) {
            // Lost a race with a newer compaction of the same files.
            dead.insert(c, written);
            continue;
        }
        let mut stack: Vec<&Path> = inputs.iter().collect();
        while let Some(p) = stack.pop() {
            if !replaced.insert(p) {
                continue;
            }
            if let Some(&i) = index.get(p) {
                dead.entry(i).or_insert(written);
                if let Some(theirs) = &files[i].replaces {
                    stack.extend(theirs.iter());
                }
            }
        }
    }
    let mut verdict = Verdict::default();
    for i in 0..files.len() {
        match dead.get(&i) {
            Some(&t) => verdict.dead.push((i, t)),
            None => verdict.live.push(i),
        }
    }
    verdict
}

/// The files a compacted file's footer names, resolved beside it.
pub fn replaces_from(path: &Path, value: Option<&str>) -> Option<Vec<Path>> {
    let value = value?;
    let parts: Vec<_> = path.parts().collect();
    let dir: Path = parts[..parts.len().saturating_sub(1)]
        .iter()
        .cloned()
        .collect();
    Some(
        value
            .lines()
            .filter(|l| !l.is_empty())
            .map(|name| dir.child(name))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, replaces: Option<&[&str]>) -> Listed {
        Listed {
            path: Path::from(format!("d/{name}")),
            replaces: replaces.map(|r| r.iter().map(|n| Path::from(format!("d/{n}"))).collect()),
        }
    }

    fn live(files: &[Listed]) -> Vec<String> {
        judge(files)
            .live
            .into_iter()
            .map(|i| files[i].path.filename().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn each_row_counts_once_whatever_the_race() {
        // Before any deletion: the compaction stands for its inputs.
        let a = file("01-a", None);
        let b = file("02-b", None);
        let c = file("03-c", None);
        let c1 = file("04-c1", Some(&["01-a", "02-b"]));
        assert_eq!(
            live(&[a.clone(), b.clone(), c.clone(), c1.clone()]),
            ["03-c", "04-c1"]
        );
        // A later compaction of the first one and a newer file.
        let c2 = file("05-c2", Some(&["04-c1", "03-c"]));
        assert_eq!(
            live(&[a.clone(), b.clone(), c.clone(), c1.clone(), c2.clone()]),
            ["05-c2"]
        );
        // Two compactors listed overlapping sets: only the newer counts.
        let rival = file("06-r", Some(&["01-a", "02-b", "03-c"]));
        assert_eq!(
            live(&[a.clone(), b.clone(), c.clone(), c1.clone(), rival.clone()]),
            ["06-r"]
        );
        // Inputs deleted, replacement present.
        assert_eq!(live(&[c.clone(), c1.clone()]), ["03-c", "04-c1"]);
        // Dead files carry their replacement's time (the grace counts from it).
        let v = judge(&[a, b, c1]);
        assert_eq!(v.dead, [(0, 4), (1, 4)]);
    }
}
