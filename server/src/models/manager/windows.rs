//! Drift windows outlive their version's load. A version unloaded when its alias moved on
//! and loaded again by a rollback keeps the window it had, so a promote followed by a
//! rollback does not reset its drift. Versions are immutable, so a window built from a
//! version's profile stays right for every later load of it. The most recently used
//! [`KEPT`] windows are kept; a version loaded after its window was dropped starts anew.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::monitor::drift::Monitor;

/// Windows kept, loaded or not (each is a bounded sample of its version's traffic).
const KEPT: usize = 64;

/// A version's window, by (model, version).
type Kept = ((String, u64), Arc<Monitor>);

/// The drift windows of the versions this server has loaded, newest use last.
#[derive(Default)]
pub(super) struct Windows {
    kept: Mutex<VecDeque<Kept>>,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kept = self.kept.lock().map_or(0, |k| k.len());
        f.debug_struct("Windows").field("kept", &kept).finish()
    }
}

impl Windows {
    /// The window of `model`@`version`: the one it had, or `make`'s.
    pub(super) fn get_or_make(
        &self,
        model: &str,
        version: u64,
        make: impl FnOnce() -> Arc<Monitor>,
    ) -> Arc<Monitor> {
        // A panic while holding the lock leaves a usable list: recover it.
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let at = kept
            .iter()
            .position(|((m, v), _)| m == model && *v == version);
        let entry = match at.and_then(|i| kept.remove(i)) {
            Some(entry) => entry,
            None => ((model.to_string(), version), make()),
        };
        let window = Arc::clone(&entry.1);
        kept.push_back(entry);
        while kept.len() > KEPT {
            kept.pop_front();
        }
        window
    }
}
