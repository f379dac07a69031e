//! Files read at start and read again when they change: the JWKS that verifies tokens,
//! the TLS certificate and key, the client CA. Operators rotate them in place (a
//! Kubernetes Secret update, certbot's renewal) and the server must follow without a
//! restart, and without dropping anything when a half-written file fails to parse.
//!
//! Change is seen by polling each file's length and modification time, which works the
//! same on every filesystem and through the symlink swaps Kubernetes uses for mounted
//! Secrets. A file that fails to parse is logged and the previous content kept.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

/// What identifies a version of a set of files: each one's length and mtime.
type Stamp = Vec<Option<(u64, SystemTime)>>;

/// The parsed content of some files, kept current.
#[derive(Debug)]
pub struct Watched<T> {
    current: ArcSwap<T>,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Reads `paths` with `load` now (an error here is the caller's to report), then
    /// polls them every `every` for as long as the returned value is alive, replacing
    /// the content when one changes and `load` succeeds. `what` names the content in
    /// the log.
    pub fn start<F>(
        what: &'static str,
        paths: Vec<PathBuf>,
        every: Duration,
        load: F,
    ) -> Result<Arc<Watched<T>>, String>
    where
        F: Fn() -> Result<T, String> + Send + Sync + 'static,
    {
        let mut seen = stamp(&paths);
        let watched = Arc::new(Watched {
            current: ArcSwap::from_pointee(load()?),
        });
        if every.is_zero() {
            return Ok(watched);
        }
        let weak: Weak<Watched<T>> = Arc::downgrade(&watched);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(watched) = weak.upgrade() else {
                        return;
                    };
                    let now = stamp(&paths);
                    if now == seen {
                        continue;
                    }
                    match load() {
                        Ok(value) => {
                            watched.current.store(Arc::new(value));
                            seen = now;
                            tracing::info!(what, "reloaded");
                        }
                        // Kept unseen, so a later tick tries again once the write ends.
                        Err(error) => tracing::warn!(what, %error, "reload failed: kept the old"),
                    }
                }
            });
        }
        Ok(watched)
    }

    /// The content as last read successfully.
    pub fn get(&self) -> Arc<T> {
        self.current.load_full()
    }
}

fn stamp(paths: &[PathBuf]) -> Stamp {
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_changed_file_is_read_again_and_a_broken_one_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n");
        std::fs::write(&path, "1").unwrap();
        let read = path.clone();
        let watched = Watched::start(
            "n",
            vec![path.clone()],
            Duration::from_millis(20),
            move || {
                std::fs::read_to_string(&read)
                    .map_err(|e| e.to_string())?
                    .trim()
                    .parse::<u32>()
                    .map_err(|e| e.to_string())
            },
        )
        .unwrap();
        assert_eq!(*watched.get(), 1);
        std::fs::write(&path, "22").unwrap();
        wait_for(|| *watched.get() == 22).await;
        std::fs::write(&path, "not a number").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            *watched.get(),
            22,
            "a file that fails to parse keeps the old value"
        );
        std::fs::write(&path, "333").unwrap();
        wait_for(|| *watched.get() == 333).await;
    }

    async fn wait_for(ok: impl Fn() -> bool) {
        for _ in 0..500 {
            if ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never changed");
    }
}
