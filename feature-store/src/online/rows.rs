//! The embedded store's rows in memory, laid out for size: one allocation per entity
//! holding `[key length u16][key][event time i64][values]`, in a hash table of boxed
//! slices (16 bytes per slot) rather than a map of separately allocated keys and rows.
//! Values are dense, in the view's field-id order, each a tag byte and the value (see
//! `codec`; a null is the tag alone): 5 bytes per float32, 160 bytes for 32 of them.
//! A row written before a field existed simply ends early: the field reads as null.

use hashbrown::HashTable;

use crate::online::codec::{Reader, put_value};
use crate::value::Value;
use crate::{FeatureError, Result};

/// Entities per view are spread over this many independently locked shards.
pub(crate) const SHARDS: usize = 64;

/// FNV-1a over the key: stable across runs and fast on short keys.
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The shard of a key hash. Mixed so it does not share bits with the bucket index or the
/// control byte the hash table takes from the same hash.
pub(crate) fn shard_of(hash: u64) -> usize {
    ((hash ^ (hash >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % SHARDS
}

/// One shard: rows keyed by their own key bytes.
#[derive(Default)]
pub(crate) struct Shard {
    table: HashTable<Box<[u8]>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("rows", &self.table.len())
            .finish()
    }
}

/// A row read in place.
pub(crate) struct RowRef<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) event_time_micros: i64,
    /// Dense values, by field id.
    pub(crate) values: &'a [u8],
}

/// Splits a row built by [`encode`]. Rows are built here from checked input, so a short
/// one is a bug; it reads as an empty key rather than panicking.
pub(crate) fn parse(row: &[u8]) -> RowRef<'_> {
    let n = row
        .get(..2)
        .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let key = row.get(2..2 + n).unwrap_or_default();
    let event_time_micros = row
        .get(2 + n..10 + n)
        .and_then(|b| b.try_into().ok())
        .map_or(i64::MIN, i64::from_le_bytes);
    RowRef {
        key,
        event_time_micros,
        values: row.get(10 + n..).unwrap_or_default(),
    }
}

/// Builds a row; `values` by field id (trailing nulls are dropped).
pub(crate) fn encode(
    key: &str,
    event_time_micros: i64,
    values: &[Option<Value>],
) -> Result<Box<[u8]>> {
    let n = u16::try_from(key.len())
        .map_err(|_| FeatureError::Corrupt(format!("a key of {} bytes", key.len())))?;
    let used = values
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(10 + key.len() + used * 5);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&event_time_micros.to_le_bytes());
    for v in &values[..used] {
        put_value(&mut out, v.as_ref());
    }
    Ok(out.into_boxed_slice())
}

/// Decodes a row's values into `slots` by field id (slots past the row's end stay null).
pub(crate) fn decode_values(values: &[u8], slots: &mut [Option<Value>]) -> Result<()> {
    slots.iter_mut().for_each(|s| *s = None);
    let mut r = Reader::new(values);
    let mut id = 0;
    while !r.is_empty() {
        let value = r.value()?;
        if let Some(slot) = slots.get_mut(id) {
            *slot = value;
        }
        id += 1;
    }
    Ok(())
}

impl Shard {
    /// The row of `key`, if any.
    pub(crate) fn get(&self, hash: u64, key: &[u8]) -> Option<&[u8]> {
        self.table
            .find(hash, |row| parse(row).key == key)
            .map(|b| &b[..])
    }

    /// Stores `row` unless the stored row of its key has a newer event time; true if
    /// stored (an equal event time replaces: the later write wins).
    pub(crate) fn put_if_not_older(&mut self, hash: u64, row: Box<[u8]>) -> bool {
        let new = parse(&row);
        match self.table.find_mut(hash, |old| parse(old).key == new.key) {
            Some(old) if parse(old).event_time_micros > new.event_time_micros => false,
            Some(old) => {
                *old = row;
                true
            }
            None => {
                self.table
                    .insert_unique(hash, row, |r| hash_key(parse(r).key));
                true
            }
        }
    }

    /// Rows stored.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every row.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.table.iter().map(|b| &b[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_older_rows_lose() {
        let mut shard = Shard::default();
        let row = |t: i64, v: f32| {
            encode(
                "c1",
                t,
                &[Some(Value::Float32(v)), None, Some(Value::Bool(true)), None],
            )
            .unwrap()
        };
        let h = hash_key(b"c1");
        assert!(shard.put_if_not_older(h, row(10, 1.0)));
        assert!(!shard.put_if_not_older(h, row(9, 9.0)), "older loses");
        assert!(
            shard.put_if_not_older(h, row(10, 2.0)),
            "equal time: later wins"
        );
        let stored = parse(shard.get(h, b"c1").unwrap());
        assert_eq!((stored.key, stored.event_time_micros), (&b"c1"[..], 10));
        let mut slots = vec![Some(Value::Int64(7)); 5];
        decode_values(stored.values, &mut slots).unwrap();
        assert_eq!(
            slots,
            vec![
                Some(Value::Float32(2.0)),
                None,
                Some(Value::Bool(true)),
                None,
                None
            ]
        );
        assert_eq!(
            stored.values.len(),
            5 + 1 + 2,
            "the trailing null is dropped"
        );
        assert!(shard.get(h, b"c2").is_none());
        assert_eq!(shard.len(), 1);
    }
}
