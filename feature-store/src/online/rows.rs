//! The embedded store's rows in memory, laid out for size and for reads that index
//! rather than parse.
//!
//! A shard keeps its rows back to back in pages of a few tens of KiB: each row is
//! `[key length, varint][key][fixed bytes]`, the fixed bytes laid out by the shard's
//! [`Layout`] (event time once, presence bits, values at fixed offsets). A hash table of
//! 32-bit row handles (page and offset) finds a key: 4 bytes and a control byte per
//! slot, rather than a pointer and an allocation per entity. Text and lists live in a
//! side allocation per row. Rows are never removed, only replaced in place (a key's
//! fixed bytes keep their size under one layout), so pages only fill.

use std::sync::Arc;

use hashbrown::HashTable;

use crate::online::layout::{Layout, NO_SIDE};
use crate::online::{KEY_SEPARATOR, MAX_KEY_BYTES};
use crate::value::Value;
use crate::{FeatureError, Result};

/// Entities per view are spread over this many independently locked shards.
pub(crate) const SHARDS: usize = 64;

/// Smallest page, in bytes: small enough that a shard's last, part-filled page costs
/// little, large enough that a page's unusable tail is a fraction of a row per row.
const MIN_PAGE_BYTES: usize = 32 << 10;

/// FNV-1a over a key's parts joined by the separator (as [`super::join_key`] joins
/// them): stable across runs and fast on short keys.
pub(crate) fn hash_parts<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.into_iter().enumerate() {
        let sep = [KEY_SEPARATOR as u8];
        let bytes = if i > 0 { &sep[..] } else { &[][..] };
        for b in bytes.iter().chain(part) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The hash of a key already joined.
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    hash_parts([key])
}

/// The hash of a key given by parts.
pub(crate) fn hash_key_parts(parts: &[String]) -> u64 {
    hash_parts(parts.iter().map(String::as_bytes))
}

/// Whether a stored key is `parts` joined by the separator.
fn key_is(stored: &[u8], parts: &[String]) -> bool {
    let mut rest = stored;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            match rest.split_first() {
                Some((&b, tail)) if b == KEY_SEPARATOR as u8 => rest = tail,
                _ => return false,
            }
        }
        match rest.strip_prefix(part.as_bytes()) {
            Some(tail) => rest = tail,
            None => return false,
        }
    }
    rest.is_empty()
}

/// The shard of a key hash. Mixed so it does not share bits with the bucket index or the
/// control byte the hash table takes from the same hash.
pub(crate) fn shard_of(hash: u64) -> usize {
    ((hash ^ (hash >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % SHARDS
}

/// One shard: rows of one layout, found by key.
#[derive(Default)]
pub(crate) struct Shard {
    layout: Arc<Layout>,
    table: HashTable<u32>,
    pages: Vec<Vec<u8>>,
    /// Side allocations (text, lists), by the id a row's fixed bytes hold.
    sides: Vec<Option<Box<[u8]>>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("rows", &self.table.len())
            .field("pages", &self.pages.len())
            .finish()
    }
}

/// A row read in place.
pub(crate) struct RowRef<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) fixed: &'a [u8],
    pub(crate) side: Option<&'a [u8]>,
}

impl RowRef<'_> {
    pub(crate) fn event_time_micros(&self) -> i64 {
        Layout::event_time(self.fixed)
    }
}

/// Page size for a layout: a power of two that holds the longest possible row.
fn page_bits(layout: &Layout) -> u32 {
    let longest = 2 + MAX_KEY_BYTES + layout.width();
    longest
        .max(MIN_PAGE_BYTES)
        .next_power_of_two()
        .trailing_zeros()
}

fn put_varint(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.push(0x80 | (n & 0x7f) as u8);
        out.push((n >> 7) as u8);
    }
}

/// A key's length and where its bytes start, from the varint at `at`.
fn get_varint(page: &[u8], at: usize) -> (usize, usize) {
    let b0 = page.get(at).copied().unwrap_or(0);
    if b0 < 0x80 {
        (usize::from(b0), at + 1)
    } else {
        let b1 = page.get(at + 1).copied().unwrap_or(0);
        (usize::from(b0 & 0x7f) | usize::from(b1) << 7, at + 2)
    }
}

impl Shard {
    /// An empty shard of `layout`.
    pub(crate) fn new(layout: Arc<Layout>) -> Shard {
        Shard {
            layout,
            ..Shard::default()
        }
    }

    /// The layout its rows are stored in.
    pub(crate) fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The key and fixed bytes of the row at `handle`; out-of-range reads as empty (rows
    /// are written here from checked input, so that would be a bug, not a panic).
    fn at(pages: &[Vec<u8>], bits: u32, width: usize, handle: u32) -> (&[u8], &[u8], usize) {
        let page = pages
            .get((handle >> bits) as usize)
            .map_or(&[][..], Vec::as_slice);
        let (n, key_at) = get_varint(page, (handle & ((1 << bits) - 1)) as usize);
        let key = page.get(key_at..key_at + n).unwrap_or_default();
        let fixed_at = key_at + n;
        let fixed = page.get(fixed_at..fixed_at + width).unwrap_or_default();
        (key, fixed, fixed_at)
    }

    fn row(&self, handle: u32) -> RowRef<'_> {
        let (key, fixed, _) = Shard::at(
            &self.pages,
            page_bits(&self.layout),
            self.layout.width(),
            handle,
        );
        let side = match self.layout.side_id(fixed) {
            NO_SIDE => None,
            id => self.sides.get(id as usize).and_then(Option::as_deref),
        };
        RowRef { key, fixed, side }
    }

    /// The row of the key given by `parts`, if any.
    pub(crate) fn get(&self, hash: u64, parts: &[String]) -> Option<RowRef<'_>> {
        let bits = page_bits(&self.layout);
        let width = self.layout.width();
        let handle = self.table.find(hash, |&h| {
            key_is(Shard::at(&self.pages, bits, width, h).0, parts)
        })?;
        Some(self.row(*handle))
    }

    /// Stores a row of `values` (by field id; they must fit the layout) for `key` unless
    /// the stored row of the key has a newer event time; true if stored (an equal event
    /// time replaces: the later write wins).
    pub(crate) fn put_if_not_older(
        &mut self,
        hash: u64,
        key: &str,
        event_time_micros: i64,
        values: &[Option<Value>],
    ) -> Result<bool> {
        let bits = page_bits(&self.layout);
        let width = self.layout.width();
        let Shard {
            layout,
            table,
            pages,
            sides,
        } = self;
        let found = table
            .find(hash, |&h| {
                Shard::at(pages, bits, width, h).0 == key.as_bytes()
            })
            .copied();
        let (fixed_page, fixed_at, side_id) = match found {
            Some(handle) => {
                let (_, fixed, fixed_at) = Shard::at(pages, bits, width, handle);
                if Layout::event_time(fixed) > event_time_micros {
                    return Ok(false);
                }
                let side_id = layout.side_id(fixed);
                ((handle >> bits) as usize, fixed_at, side_id)
            }
            None => {
                if key.len() > MAX_KEY_BYTES {
                    return Err(FeatureError::Corrupt(format!(
                        "a key of {} bytes",
                        key.len()
                    )));
                }
                let page_bytes = 1usize << bits;
                let need = 2 + key.len() + width;
                if pages.last().is_none_or(|p| p.len() + need > page_bytes) {
                    if pages.len() >= 1 << (32 - bits) {
                        return Err(FeatureError::Unavailable(format!(
                            "online store (embedded): a shard is full at {} GiB; use Redis for views this large",
                            (pages.len() << bits) >> 30
                        )));
                    }
                    pages.push(Vec::with_capacity(page_bytes));
                }
                let page_no = pages.len() - 1;
                let page = &mut pages[page_no];
                let handle = ((page_no as u32) << bits) | page.len() as u32;
                put_varint(page, key.len());
                page.extend_from_slice(key.as_bytes());
                let fixed_at = page.len();
                page.resize(fixed_at + width, 0);
                table.insert_unique(hash, handle, |&h| {
                    hash_key(Shard::at(pages, bits, width, h).0)
                });
                (page_no, fixed_at, NO_SIDE)
            }
        };
        let fixed = &mut pages[fixed_page][fixed_at..fixed_at + width];
        let side = layout.encode(fixed, event_time_micros, values)?;
        // A row keeps its side slot once it has one, even while it has no side values.
        let id = match (side, side_id) {
            (None, NO_SIDE) => NO_SIDE,
            (Some(bytes), NO_SIDE) => {
                sides.push(Some(bytes));
                u32::try_from(sides.len() - 1).map_err(|_| {
                    FeatureError::Unavailable(
                        "online store (embedded): more than 4 billion rows with text in a shard"
                            .into(),
                    )
                })?
            }
            (side, id) => {
                if let Some(slot) = sides.get_mut(id as usize) {
                    *slot = side;
                }
                id
            }
        };
        layout.set_side_id(fixed, id);
        Ok(true)
    }

    /// This shard's rows rewritten in `layout`, which must hold them all.
    pub(crate) fn relaid(&self, layout: Arc<Layout>) -> Result<Shard> {
        let mut out = Shard::new(layout);
        out.table.reserve(self.table.len(), |_| 0);
        let mut values = Vec::new();
        for row in self.iter() {
            self.layout.decode(row.fixed, row.side, &mut values)?;
            let key = std::str::from_utf8(row.key)
                .map_err(|_| FeatureError::Corrupt("a stored key is not UTF-8".into()))?;
            out.put_if_not_older(hash_key(row.key), key, row.event_time_micros(), &values)?;
        }
        Ok(out)
    }

    /// Takes `layout` without rewriting rows: for layouts that only add unset fields.
    pub(crate) fn set_layout(&mut self, layout: Arc<Layout>) {
        self.layout = layout;
    }

    /// Rows stored.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every row.
    pub(crate) fn iter(&self) -> impl Iterator<Item = RowRef<'_>> {
        self.table.iter().map(|&h| self.row(h))
    }

    /// Bytes this shard holds: pages, table, side allocations.
    pub(crate) fn bytes(&self) -> usize {
        self.pages.iter().map(Vec::capacity).sum::<usize>()
            + self.pages.capacity() * std::mem::size_of::<Vec<u8>>()
            + self.table.allocation_size()
            + self.sides.capacity() * std::mem::size_of::<Option<Box<[u8]>>>()
            + self.sides.iter().flatten().map(|s| s.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Vec<String> {
        k.split(KEY_SEPARATOR).map(str::to_string).collect()
    }

    #[test]
    fn rows_round_trip_older_rows_lose_and_text_keeps_its_slot() {
        let values = |v: f32, text: Option<&str>| {
            vec![
                Some(Value::Float32(v)),
                None,
                text.map(|t| Value::String(t.into())),
            ]
        };
        let layout = Layout::default()
            .with_fields(&["a", "b", "c"])
            .unwrap()
            .widened(&values(1.0, Some("x")), false)
            .unwrap();
        let mut shard = Shard::new(Arc::new(layout));
        let k = "s1\u{1f}l1";
        let h = hash_key(k.as_bytes());
        assert_eq!(h, hash_key_parts(&key(k)), "joined and by parts hash alike");
        assert!(
            shard
                .put_if_not_older(h, k, 10, &values(1.0, Some("x")))
                .unwrap()
        );
        assert!(
            !shard.put_if_not_older(h, k, 9, &values(9.0, None)).unwrap(),
            "older loses"
        );
        assert!(
            shard
                .put_if_not_older(h, k, 10, &values(2.0, None))
                .unwrap(),
            "equal time: later wins"
        );
        assert!(
            shard
                .put_if_not_older(h, k, 11, &values(3.0, Some("yz")))
                .unwrap()
        );
        assert_eq!(shard.sides.len(), 1, "a row reuses its side slot");
        let row = shard.get(h, &key(k)).unwrap();
        assert_eq!((row.key, row.event_time_micros()), (k.as_bytes(), 11));
        let mut back = Vec::new();
        shard
            .layout()
            .decode(row.fixed, row.side, &mut back)
            .unwrap();
        assert_eq!(back, values(3.0, Some("yz")));
        assert!(
            shard.get(h, &key("s1")).is_none(),
            "a prefix is another key"
        );
        assert!(shard.get(hash_key(b"s2"), &key("s2")).is_none());
        assert_eq!(shard.len(), 1);
    }

    #[test]
    fn many_rows_span_pages_and_survive_a_relayout() {
        let layout = Layout::default()
            .with_fields(&["a"])
            .unwrap()
            .widened(&[Some(Value::Int64(0))], false)
            .unwrap();
        let mut shard = Shard::new(Arc::new(layout));
        let keys: Vec<String> = (0..5000).map(|i| format!("key-{i}")).collect();
        for (i, k) in keys.iter().enumerate() {
            let v = [Some(Value::Int64(i as i64))];
            assert!(
                shard
                    .put_if_not_older(hash_key(k.as_bytes()), k, 1, &v)
                    .unwrap()
            );
        }
        assert!(shard.pages.len() > 1);
        let wider = shard
            .layout()
            .widened(&[Some(Value::Float32(0.5))], true)
            .unwrap();
        let relaid = shard.relaid(Arc::new(wider)).unwrap();
        for (i, k) in keys.iter().enumerate() {
            let row = relaid.get(hash_key(k.as_bytes()), &key(k)).unwrap();
            assert_eq!(
                relaid.layout().value(row.fixed, row.side, 0).unwrap(),
                Some(Value::Int64(i as i64))
            );
        }
        assert_eq!(relaid.len(), keys.len());
        assert!(relaid.bytes() > 0);
    }
}
