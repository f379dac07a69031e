//! How many connections a listener holds, and for how long. Every descriptor a hostile
//! client holds is one the stores cannot open, so each listener admits at most
//! `[server] max_connections_per_listener` connections (by default sized from the
//! process's descriptor limit, leaving room for the stores: [`default_cap`]).
//!
//! At the cap a new connection is not simply turned away, or a crowd of idle sockets
//! would lock out every health probe and client for good: it takes the place of the
//! connection that has been quiet the longest, if that one has sent and received
//! nothing for at least [`EVICTABLE_AFTER`]; only when every connection is busy is the
//! newcomer closed. Connections quiet for `[server] idle_timeout_secs` are closed
//! anyway. (A gRPC client's keepalive pings and an HTTP client's requests count as
//! activity; a socket that sends nothing, or half a header a second, is what goes.)
//!
//! Closing is cooperative: the connection's reads see the eviction ([`Activity`]) and
//! fail, and the HTTP server drops the connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// How long a connection must have been quiet before a newcomer may take its place.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

/// How often throttled warnings (accept errors, the cap reached) may be logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// One connection's liveness, shared by the connection and its listener.
#[derive(Debug)]
pub struct Activity {
    /// Milliseconds since the listener's epoch at the last byte read or written.
    last: AtomicU64,
    evicted: AtomicBool,
    /// The task reading the connection, woken to see its eviction.
    reader: AtomicWaker,
    epoch: Instant,
}

impl Activity {
    /// Records that bytes moved now.
    pub fn touch(&self) {
        self.last.store(millis(self.epoch), Ordering::Relaxed);
    }

    /// Whether the listener has closed this connection.
    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Registers the task reading the connection.
    pub fn register(&self, waker: &std::task::Waker) {
        self.reader.register(waker);
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        self.reader.wake();
    }

    fn quiet_for(&self, now: u64) -> u64 {
        now.saturating_sub(self.last.load(Ordering::Relaxed))
    }
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A listener's connections.
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    listener: &'static str,
    max: usize,
    epoch: Instant,
    live: Mutex<HashMap<u64, Arc<Activity>>>,
    next: AtomicU64,
    /// Newcomers closed and connections evicted at the cap since the last warning.
    refused: AtomicU64,
    evicted: AtomicU64,
    warned: Mutex<Option<Instant>>,
}

/// A connection's place on its listener, given back when the connection is dropped.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    inner: Arc<Inner>,
    /// What the connection reports its traffic to.
    pub activity: Arc<Activity>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.inner.lock().remove(&self.id);
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One warning per [`LOG_EVERY`] at most, with the counts since the last.
    fn warn_at_cap(&self) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.is_some_and(|at| at.elapsed() < LOG_EVERY) {
            return;
        }
        *warned = Some(Instant::now());
        tracing::warn!(
            listener = self.listener,
            max = self.max,
            evicted = self.evicted.swap(0, Ordering::Relaxed),
            refused = self.refused.swap(0, Ordering::Relaxed),
            "connection limit reached ([server] max_connections_per_listener): \
             the quietest connections make room, newcomers are closed when none is quiet"
        );
    }
}

impl Connections {
    /// At most `max` connections on `listener` (named in the log); those quiet for
    /// `idle` are closed (`None`: never).
    pub fn new(listener: &'static str, max: usize, idle: Option<Duration>) -> Connections {
        let inner = Arc::new(Inner {
            listener,
            max: max.max(1),
            epoch: Instant::now(),
            live: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            warned: Mutex::new(None),
        });
        if let (Some(idle), Ok(runtime)) = (idle, tokio::runtime::Handle::try_current()) {
            runtime.spawn(sweep(Arc::downgrade(&inner), idle));
        }
        Connections { inner }
    }

    /// A place for a new connection, or `None` when every place is taken by a busy
    /// connection (the newcomer is then to be closed).
    pub fn admit(&self) -> Option<Slot> {
        let inner = &self.inner;
        let now = millis(inner.epoch);
        let mut live = inner.lock();
        if live.len() >= inner.max {
            let quietest = live
                .iter()
                .filter(|(_, a)| !a.evicted())
                .max_by_key(|(_, a)| a.quiet_for(now))
                .map(|(id, a)| (*id, Arc::clone(a)));
            let evictable = EVICTABLE_AFTER.as_millis() as u64;
            match quietest {
                Some((id, activity)) if activity.quiet_for(now) >= evictable => {
                    activity.evict();
                    live.remove(&id);
                    inner.evicted.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    drop(live);
                    inner.refused.fetch_add(1, Ordering::Relaxed);
                    inner.warn_at_cap();
                    return None;
                }
            }
            inner.warn_at_cap();
        }
        let id = inner.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity {
            last: AtomicU64::new(now),
            evicted: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            epoch: inner.epoch,
        });
        live.insert(id, Arc::clone(&activity));
        Some(Slot {
            id,
            inner: Arc::clone(inner),
            activity,
        })
    }

    /// Connections held now (for the tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().len()
    }
}

/// Closes connections quiet for longer than `idle`, for as long as the listener lives.
async fn sweep(inner: Weak<Inner>, idle: Duration) {
    let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = millis(inner.epoch);
        let mut live = inner.lock();
        live.retain(|_, activity| {
            let keep = activity.quiet_for(now) < idle;
            if !keep {
                activity.evict();
            }
            keep
        });
    }
}

/// Warnings about a failing accept, at most one per [`LOG_EVERY`] with the count of
/// those not logged, and the pause before the next try (doubling up to a second): out
/// of descriptors, an accept loop that retried at once would spin and flood the log.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    logged: Option<Instant>,
    unlogged: u64,
    pause: Duration,
}

impl AcceptErrors {
    /// Notes a failed accept and says how long to wait before the next.
    pub fn failed(&mut self, listener: &'static str, error: &std::io::Error) -> Duration {
        if self.logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            tracing::warn!(
                listener,
                %error,
                repeats = self.unlogged,
                "accept failed (repeats within 10 s are counted, not logged)"
            );
            self.logged = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        self.pause = (self.pause * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        self.pause
    }

    /// Notes a successful accept: the pause starts small again.
    pub fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }
}

/// The soft limit on open descriptors, raised to the hard limit first (as a server
/// holding many sockets should: the soft limit is often 1024).
pub fn descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "could not read the descriptor limit: assuming 1024");
            1024
        }
    }
}

/// Connections per listener when the configuration leaves it to the process: half of
/// what the descriptor limit leaves after a quarter (at least 256) kept for the stores,
/// the registry, artifacts and logs.
pub fn default_cap(descriptors: u64) -> usize {
    let kept = (descriptors / 4).max(256);
    let cap = descriptors.saturating_sub(kept) / 2;
    usize::try_from(cap).unwrap_or(usize::MAX).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_quietest_idle_connection_makes_room() {
        let c = Connections::new("test", 2, None);
        let a = c.admit().expect("room");
        let b = c.admit().expect("room");
        // Both just arrived: busy, so a third is refused.
        assert!(c.admit().is_none());
        // `a` has been quiet long enough: it is evicted for the newcomer.
        a.activity.last.store(0, Ordering::Relaxed);
        b.activity.touch();
        std::thread::sleep(EVICTABLE_AFTER + Duration::from_millis(50));
        b.activity.touch();
        let d = c.admit().expect("room made");
        assert!(a.activity.evicted());
        assert!(!b.activity.evicted());
        assert_eq!(c.len(), 2);
        drop(d);
        assert_eq!(c.len(), 1);
        // The evicted slot's drop takes nothing else with it.
        drop(a);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn the_default_cap_leaves_room_for_the_stores() {
        assert_eq!(default_cap(1024), 384);
        assert_eq!(default_cap(1 << 20), 393_216);
        assert_eq!(default_cap(10), 16);
    }

    #[test]
    fn accept_errors_back_off_to_a_second() {
        let mut e = AcceptErrors::default();
        let error = std::io::Error::other("EMFILE");
        let pauses: Vec<_> = (0..12).map(|_| e.failed("test", &error)).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert_eq!(pauses[11], Duration::from_secs(1));
        assert_eq!(e.unlogged, 11);
        e.succeeded();
        assert_eq!(e.failed("test", &error), Duration::from_millis(5));
    }
}
