//! Short-lived state kept beside the features (a chatbot conversation's): a value under
//! a key until its time to live passes. Not a feature: no view, no schema, no history.
//! The embedded store keeps it in memory (a restart forgets conversations, which outlive
//! no deployment anyway); Redis keeps it for every replica, expiring it itself.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{FeatureError, Result};

/// Most keys the embedded store holds at once (expired ones are swept before refusing).
pub const MAX_STATES: usize = 1_000_000;
/// Largest value, in bytes.
pub const MAX_STATE_BYTES: usize = 64 * 1024;
/// Longest key, in bytes.
pub const MAX_STATE_KEY_BYTES: usize = 512;

/// Checks a key and value before either backend stores them.
pub fn check(key: &str, value: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > MAX_STATE_KEY_BYTES {
        return Err(FeatureError::InvalidRequest {
            field: "key".into(),
            message: format!("a state key has 1 to {MAX_STATE_KEY_BYTES} bytes"),
        });
    }
    if value.len() > MAX_STATE_BYTES {
        return Err(FeatureError::InvalidRequest {
            field: "value".into(),
            message: format!("a state value has at most {MAX_STATE_BYTES} bytes"),
        });
    }
    Ok(())
}

/// The embedded store's states.
#[derive(Debug, Default)]
pub struct States {
    map: Mutex<Map>,
}

#[derive(Debug, Default)]
struct Map {
    values: HashMap<String, (Vec<u8>, Instant)>,
    writes: u64,
}

impl Map {
    fn sweep(&mut self, now: Instant) {
        self.values.retain(|_, (_, until)| *until > now);
    }
}

/// Inserts under the map's lock, sweeping now and then and refusing past the cap.
fn insert(map: &mut Map, key: &str, value: &[u8], until: Instant) -> Result<()> {
    let now = Instant::now();
    map.writes += 1;
    if map.writes.is_multiple_of(4096) || map.values.len() >= MAX_STATES {
        map.sweep(now);
    }
    if map.values.len() >= MAX_STATES && !map.values.contains_key(key) {
        return Err(FeatureError::Unavailable(format!(
            "the embedded store holds {MAX_STATES} live states (use Redis for more)"
        )));
    }
    map.values.insert(key.to_string(), (value.to_vec(), until));
    Ok(())
}

impl States {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Map>> {
        self.map
            .lock()
            .map_err(|_| FeatureError::Unavailable("state map poisoned".into()))
    }

    /// Keeps `value` under `key` for `ttl`, replacing what was there.
    pub fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        check(key, value)?;
        let mut map = self.lock()?;
        insert(&mut map, key, value, Instant::now() + ttl)
    }

    /// Keeps `value` under `key` for `ttl` unless a live value is there; whether it did
    /// (the check and the insert under one lock).
    pub fn claim(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        check(key, value)?;
        let now = Instant::now();
        let mut map = self.lock()?;
        if map.values.get(key).is_some_and(|(_, until)| *until > now) {
            return Ok(false);
        }
        insert(&mut map, key, value, now + ttl).map(|()| true)
    }

    /// Forgets the value under `key`.
    pub fn delete(&self, key: &str) -> Result<()> {
        self.lock()?.values.remove(key);
        Ok(())
    }

    /// The value under `key`, unless its time ran out.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let map = self.lock()?;
        Ok(map
            .values
            .get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(v, _)| v.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_lives_until_its_ttl_and_a_write_restarts_it() {
        let s = States::default();
        s.put("a", b"1", Duration::from_millis(30)).expect("put");
        assert_eq!(s.get("a").expect("get").as_deref(), Some(&b"1"[..]));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(s.get("a").expect("get"), None, "expired");
        s.put("a", b"2", Duration::from_secs(60)).expect("put");
        assert_eq!(s.get("a").expect("get").as_deref(), Some(&b"2"[..]));
        assert!(s.put("", b"x", Duration::from_secs(1)).is_err());
        assert!(
            s.put("k", &vec![0; MAX_STATE_BYTES + 1], Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn one_claim_of_a_key_wins_until_its_ttl_or_a_delete() {
        let s = std::sync::Arc::new(States::default());
        let wins: usize = (0..8)
            .map(|_| {
                let s = std::sync::Arc::clone(&s);
                std::thread::spawn(move || s.claim("c", b"1", Duration::from_secs(60)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| usize::from(t.join().expect("thread").expect("claim")))
            .sum();
        assert_eq!(wins, 1);
        s.delete("c").expect("delete");
        assert!(
            s.claim("c", b"2", Duration::from_millis(20))
                .expect("claim")
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            s.claim("c", b"3", Duration::from_secs(1)).expect("claim"),
            "expired"
        );
    }
}
