//! How the embedded store lays out one view's rows: a fixed number of bytes per row,
//! `[event time i64][presence bitmap][values][side id u32]`, every value at an offset
//! known from its field, so a read indexes instead of parsing.
//!
//! The layout follows the data, not the definition: the log replays rows without their
//! schema (and a definition may change between runs). A field takes the fixed width of
//! the first type written to it (float32 4 bytes, float64 and int64 8, bool 1). A field
//! written with a second type, or holding text or lists, is *variable*: its value goes,
//! tagged, into the row's side allocation (see `codec`), and the row keeps that
//! allocation's id. A field gets a presence bit only once it must: when a row stores it
//! as null, or when rows that predate its first value exist. A view whose rows carry
//! every value, the usual case, pays for no bitmap.
//!
//! Each of those changes only widens (no bit → bit, unset → fixed → variable), so a
//! view's rows are rewritten at most three times per field over its life.

use std::collections::HashMap;

use crate::online::Feature;
use crate::online::codec::{Reader, put_value};
use crate::value::{Status, Value};
use crate::{FeatureError, Result};

/// How a field's value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// No row has given a value yet: always null, no bytes.
    Unset,
    F32,
    F64,
    I64,
    Bool,
    /// Tagged, in the row's side allocation: text, lists, and fields of changing type.
    Var,
}

impl Kind {
    fn of(value: &Value) -> Kind {
        match value {
            Value::Float32(_) => Kind::F32,
            Value::Float64(_) => Kind::F64,
            Value::Int64(_) => Kind::I64,
            Value::Bool(_) => Kind::Bool,
            Value::String(_) | Value::Float32List(_) => Kind::Var,
        }
    }

    fn width(self) -> usize {
        match self {
            Kind::Unset | Kind::Var => 0,
            Kind::Bool => 1,
            Kind::F32 => 4,
            Kind::F64 | Kind::I64 => 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    kind: Kind,
    /// Presence bit, if the field can be null in a row (never for `Unset` or `Var`).
    bit: Option<u16>,
    /// Offset of the value in the row's fixed bytes.
    offset: usize,
}

/// Where the bitmap starts: after the event time.
const BITMAP_AT: usize = 8;
/// A row without a side allocation.
pub(crate) const NO_SIDE: u32 = u32::MAX;

/// A view's row layout. Field ids are stable: fields are only ever appended.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layout {
    names: Vec<String>,
    index: HashMap<String, u16>,
    slots: Vec<Slot>,
    /// Offset of the side id, if any field is variable.
    side_at: Option<usize>,
    width: usize,
}

impl Layout {
    /// Fixed bytes per row.
    pub(crate) fn width(&self) -> usize {
        self.width.max(BITMAP_AT)
    }

    /// Field names by id.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// Fields known.
    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }

    /// The id of each name, `None` for names never written. Cheap when `names` follow
    /// the layout's order (a model's inputs usually list a view's fields in order): each
    /// name is tried at the position after the previous one before the map is asked.
    pub(crate) fn ids(&self, names: &[&str]) -> Vec<Option<u16>> {
        let mut next = 0;
        names
            .iter()
            .map(|name| {
                let id = match self.names.get(next) {
                    Some(n) if n == name => Some(next as u16),
                    _ => self.index.get(*name).copied(),
                };
                if let Some(id) = id {
                    next = usize::from(id) + 1;
                }
                id
            })
            .collect()
    }

    /// This layout with `names` it lacks appended, unset (rows keep their bytes).
    pub(crate) fn with_fields(&self, names: &[&str]) -> Result<Layout> {
        let mut kinds: Vec<(Kind, bool)> = self
            .slots
            .iter()
            .map(|s| (s.kind, s.bit.is_some()))
            .collect();
        let mut all = self.names.clone();
        for name in names {
            if !self.index.contains_key(*name) && !all.iter().any(|n| n == name) {
                all.push((*name).to_string());
                kinds.push((Kind::Unset, false));
            }
        }
        Layout::build(all, &kinds)
    }

    /// Whether a row of `values` (by field id) can be stored as it is.
    pub(crate) fn fits(&self, values: &[Option<Value>]) -> bool {
        values.len() <= self.slots.len()
            && self
                .slots
                .iter()
                .zip(nulls_after(values))
                .all(|(s, v)| match v {
                    None => s.kind == Kind::Unset || s.kind == Kind::Var || s.bit.is_some(),
                    Some(v) => s.kind == Kind::Var || s.kind == Kind::of(v),
                })
    }

    /// The narrowest layout that holds both this layout's rows and `values`. When
    /// `has_rows`, a field getting its first value gets a presence bit too: the rows
    /// already stored lack it.
    pub(crate) fn widened(&self, values: &[Option<Value>], has_rows: bool) -> Result<Layout> {
        let kinds: Vec<(Kind, bool)> = self
            .slots
            .iter()
            .zip(nulls_after(values))
            .map(|(s, v)| {
                let bit = s.bit.is_some();
                match (s.kind, v) {
                    (Kind::Unset, None) | (Kind::Var, _) => (s.kind, false),
                    (Kind::Unset, Some(v)) => (Kind::of(v), has_rows && Kind::of(v) != Kind::Var),
                    (k, None) => (k, true),
                    (k, Some(v)) if Kind::of(v) == k => (k, bit),
                    (_, Some(_)) => (Kind::Var, false),
                }
            })
            .collect();
        Layout::build(self.names.clone(), &kinds)
    }

    fn build(names: Vec<String>, kinds: &[(Kind, bool)]) -> Result<Layout> {
        if names.len() >= usize::from(u16::MAX) {
            return Err(FeatureError::Corrupt(
                "a view with more than 65534 fields".into(),
            ));
        }
        let bits = kinds.iter().filter(|(_, bit)| *bit).count();
        let bitmap_bytes = bits.div_ceil(8);
        let mut offset = BITMAP_AT + bitmap_bytes;
        let mut next_bit = 0u16;
        let slots = kinds
            .iter()
            .map(|&(kind, bit)| {
                let slot = Slot {
                    kind,
                    bit: bit.then_some(next_bit),
                    offset,
                };
                next_bit += u16::from(bit);
                offset += kind.width();
                slot
            })
            .collect();
        let side_at = kinds.iter().any(|(k, _)| *k == Kind::Var).then_some(offset);
        let width = offset + if side_at.is_some() { 4 } else { 0 };
        let index = names
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i as u16))
            .collect();
        Ok(Layout {
            names,
            index,
            slots,
            side_at,
            width,
        })
    }

    /// Whether rows stored under `self` read the same under `other` (only unset fields
    /// were appended), so a shard can take `other` without rewriting its rows.
    pub(crate) fn rows_read_same_under(&self, other: &Layout) -> bool {
        self.width() == other.width()
            && other.names.starts_with(&self.names)
            && other.slots.starts_with(&self.slots)
            && other.slots[self.slots.len()..]
                .iter()
                .all(|s| s.kind == Kind::Unset && s.bit.is_none())
    }

    /// Writes a row's fixed bytes into `out` (`width()` long; the side id is left to
    /// [`Layout::set_side_id`]) and returns its side allocation's bytes, if a variable
    /// field has a value. `values` must fit.
    pub(crate) fn encode(
        &self,
        out: &mut [u8],
        event_time_micros: i64,
        values: &[Option<Value>],
    ) -> Result<Option<Box<[u8]>>> {
        let misfit = || FeatureError::Corrupt("a row that does not fit its layout".into());
        if out.len() != self.width() || !self.fits(values) {
            return Err(misfit());
        }
        out.fill(0);
        out[..BITMAP_AT].copy_from_slice(&event_time_micros.to_le_bytes());
        let mut side = Vec::new();
        let mut any_side = false;
        for (slot, value) in self.slots.iter().zip(nulls_after(values)) {
            if slot.kind == Kind::Var {
                any_side |= value.is_some();
                put_value(&mut side, value.as_ref());
                continue;
            }
            let Some(value) = value else { continue };
            if let Some(b) = slot.bit {
                out[BITMAP_AT + usize::from(b / 8)] |= 1 << (b % 8);
            }
            let at = &mut out[slot.offset..slot.offset + slot.kind.width()];
            match value {
                Value::Float32(x) => at.copy_from_slice(&x.to_le_bytes()),
                Value::Float64(x) => at.copy_from_slice(&x.to_le_bytes()),
                Value::Int64(x) => at.copy_from_slice(&x.to_le_bytes()),
                Value::Bool(x) => at[0] = u8::from(*x),
                Value::String(_) | Value::Float32List(_) => return Err(misfit()),
            }
        }
        Ok(any_side.then(|| side.into_boxed_slice()))
    }

    /// Writes a row's side id into its fixed bytes (nothing if no field is variable).
    pub(crate) fn set_side_id(&self, fixed: &mut [u8], id: u32) {
        if let Some(at) = self.side_at.filter(|&at| fixed.len() >= at + 4) {
            fixed[at..at + 4].copy_from_slice(&id.to_le_bytes());
        }
    }

    /// The event time of a row's fixed bytes.
    pub(crate) fn event_time(fixed: &[u8]) -> i64 {
        fixed
            .get(..BITMAP_AT)
            .and_then(|b| b.try_into().ok())
            .map_or(i64::MIN, i64::from_le_bytes)
    }

    /// The side allocation's id of a row's fixed bytes ([`NO_SIDE`] if none).
    pub(crate) fn side_id(&self, fixed: &[u8]) -> u32 {
        self.side_at
            .and_then(|at| fixed.get(at..at + 4))
            .and_then(|b| b.try_into().ok())
            .map_or(NO_SIDE, u32::from_le_bytes)
    }

    /// Field `id` of a row: its fixed bytes and its side allocation's bytes.
    pub(crate) fn value(
        &self,
        fixed: &[u8],
        side: Option<&[u8]>,
        id: u16,
    ) -> Result<Option<Value>> {
        match self.slots.get(usize::from(id)) {
            // An unset field reads null whatever the row.
            Some(&slot) if slot.kind == Kind::Var => self.side_value(side, id),
            Some(&slot) if slot.kind != Kind::Unset => {
                self.check_width(fixed)?;
                Ok(fixed_value(slot, fixed))
            }
            _ => Ok(None),
        }
    }

    /// Appends fields `ids` of a row to `out` as read at a time when the row is
    /// `expired` or not. The serving path: one pass, each value built where it lands.
    pub(crate) fn read_into(
        &self,
        fixed: &[u8],
        side: Option<&[u8]>,
        ids: &[Option<u16>],
        expired: bool,
        out: &mut Vec<Feature>,
    ) -> Result<()> {
        self.check_width(fixed)?;
        out.reserve(ids.len());
        for id in ids {
            let value = match id.and_then(|id| Some((id, *self.slots.get(usize::from(id))?))) {
                Some((id, slot)) if slot.kind == Kind::Var => self.side_value(side, id)?,
                Some((_, slot)) => fixed_value(slot, fixed),
                None => None,
            };
            out.push(match value {
                None => (None, Status::Missing),
                Some(_) if expired => (None, Status::Expired),
                Some(v) => (Some(v), Status::Present),
            });
        }
        Ok(())
    }

    fn check_width(&self, fixed: &[u8]) -> Result<()> {
        if fixed.len() == self.width() {
            Ok(())
        } else {
            Err(FeatureError::Corrupt(
                "a row of another width than its layout".into(),
            ))
        }
    }

    /// Variable field `id` from a row's side allocation, which holds the variable
    /// fields in id order: those before it are skipped.
    fn side_value(&self, side: Option<&[u8]>, id: u16) -> Result<Option<Value>> {
        let Some(side) = side else { return Ok(None) };
        let mut r = Reader::new(side);
        for s in &self.slots[..usize::from(id)] {
            if s.kind == Kind::Var {
                r.value()?;
            }
        }
        r.value()
    }

    /// Every field of a row into `values` (by id; resized to the layout's fields).
    pub(crate) fn decode(
        &self,
        fixed: &[u8],
        side: Option<&[u8]>,
        values: &mut Vec<Option<Value>>,
    ) -> Result<()> {
        values.clear();
        let mut r = side.map(Reader::new);
        for (id, slot) in self.slots.iter().enumerate() {
            values.push(match (slot.kind, r.as_mut()) {
                (Kind::Var, Some(r)) => r.value()?,
                (Kind::Var, None) => None,
                _ => self.value(fixed, None, id as u16)?,
            });
        }
        Ok(())
    }
}

/// `values`, then nulls for the fields a row predates.
fn nulls_after(values: &[Option<Value>]) -> impl Iterator<Item = &Option<Value>> {
    values.iter().chain(std::iter::repeat(&None))
}

/// A fixed-width field's value from a row whose width was checked (every slot lies
/// within it); `None` when the row has no value. Always inlined: a value returned
/// through a call and copied cost more than the read itself (store-forwarding stalls on
/// the enum's bytes).
#[inline(always)]
fn fixed_value(slot: Slot, fixed: &[u8]) -> Option<Value> {
    let present = match slot.bit {
        Some(b) => fixed[BITMAP_AT + usize::from(b / 8)] & (1 << (b % 8)) != 0,
        None => slot.kind != Kind::Unset,
    };
    if !present {
        return None;
    }
    let at = slot.offset;
    match slot.kind {
        Kind::Unset | Kind::Var => None,
        Kind::F32 => Some(Value::Float32(f32::from_le_bytes(bytes(fixed, at)))),
        Kind::F64 => Some(Value::Float64(f64::from_le_bytes(bytes(fixed, at)))),
        Kind::I64 => Some(Value::Int64(i64::from_le_bytes(bytes(fixed, at)))),
        Kind::Bool => Some(Value::Bool(fixed[at] != 0)),
    }
}

/// `N` bytes of `fixed` from `at`; zeros past its end (callers check the width first).
#[inline]
fn bytes<const N: usize>(fixed: &[u8], at: usize) -> [u8; N] {
    fixed
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(layout: &Layout, values: &[Option<Value>]) -> (Vec<u8>, Option<Box<[u8]>>) {
        let mut fixed = vec![0; layout.width()];
        let side = layout.encode(&mut fixed, 7, values).unwrap();
        layout.set_side_id(&mut fixed, if side.is_some() { 3 } else { NO_SIDE });
        (fixed, side)
    }

    #[test]
    fn a_dense_float_row_is_its_values_and_event_time() {
        let names: Vec<String> = (0..32).map(|i| format!("f{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let empty = Layout::default().with_fields(&refs).unwrap();
        let values: Vec<Option<Value>> = (0..32).map(|i| Some(Value::Float32(i as f32))).collect();
        assert!(!empty.fits(&values));
        let layout = empty.widened(&values, false).unwrap();
        assert_eq!(layout.width(), 8 + 32 * 4, "no bitmap, no side id");
        let (fixed, side) = row(&layout, &values);
        assert!(side.is_none());
        assert_eq!(Layout::event_time(&fixed), 7);
        let mut back = Vec::new();
        layout.decode(&fixed, None, &mut back).unwrap();
        assert_eq!(back, values);
        assert_eq!(
            layout.ids(&["f3", "f4", "nope", "f0"]),
            vec![Some(3), Some(4), None, Some(0)]
        );
    }

    #[test]
    fn nulls_type_changes_and_text_widen_the_layout_and_read_back() {
        let empty = Layout::default()
            .with_fields(&["a", "b", "c", "d"])
            .unwrap();
        let first = vec![Some(Value::Float32(1.0)), Some(Value::Int64(2)), None, None];
        let l1 = empty.widened(&first, false).unwrap();
        assert!(l1.fits(&first));
        let second = vec![
            None,
            Some(Value::Float64(2.5)),
            Some(Value::String("x".into())),
            Some(Value::Bool(true)),
        ];
        assert!(!l1.fits(&second));
        let l2 = l1.widened(&second, true).unwrap();
        assert!(l2.fits(&first) && l2.fits(&second));
        for values in [&first, &second] {
            let (fixed, side) = row(&l2, values);
            assert_eq!(l2.side_id(&fixed), if side.is_some() { 3 } else { NO_SIDE });
            let mut back = Vec::new();
            l2.decode(&fixed, side.as_deref(), &mut back).unwrap();
            assert_eq!(&back, values);
            for (id, v) in values.iter().enumerate() {
                assert_eq!(&l2.value(&fixed, side.as_deref(), id as u16).unwrap(), v);
            }
        }
        let grown = l2.with_fields(&["a", "e"]).unwrap();
        assert!(l2.rows_read_same_under(&grown));
        assert!(!l1.rows_read_same_under(&l2));
    }

    #[test]
    fn a_misfit_row_is_an_error_not_a_panic() {
        let layout = Layout::default().with_fields(&["a"]).unwrap();
        let mut fixed = vec![0; layout.width()];
        assert!(
            layout
                .encode(&mut fixed, 1, &[Some(Value::Float32(1.0))])
                .is_err()
        );
        assert_eq!(
            layout.value(&[], None, 0).unwrap(),
            None,
            "an unset field reads null"
        );
        let wide = layout.widened(&[Some(Value::Float32(1.0))], false).unwrap();
        assert!(
            wide.value(&[0; 4], None, 0).is_err(),
            "a short row is an error"
        );
    }
}
