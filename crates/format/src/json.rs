//! A JSON object record straight into its columns' cells, in one pass over the bytes.
//!
//! serde_json walks the object; each key is matched to a column without allocating, each
//! value of a column is read as a [`Json`] (strings borrowed from the record when they hold no
//! escapes) and converted at once, and the values of other keys are skipped unparsed into any
//! tree. No `serde_json::Value` map is built per record: that map (a B-tree of owned keys and
//! values, then cloned strings) cost more than the rest of decoding together.
//!
//! Which error wins matches reading the whole object first: a syntax error anywhere beats a
//! value that does not fit its column, and among those the first column in schema order is
//! named. A key matches its column exactly, else ignoring ASCII case (an exact match wins over
//! any other); among several values for a column the last wins, as a repeated key's does in
//! serde_json's own map.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::cell::Cell;
use crate::decode::Column;

/// One JSON value as the record holds it.
#[derive(Debug)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    /// An array or an object: only a text column takes one (as its JSON text).
    Nested(Value),
}

impl<'a> Json<'a> {
    /// A value of a `serde_json` tree (a column's DEFAULT).
    pub(crate) fn of(v: &'a Value) -> Json<'a> {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Json::U64(u),
                (None, Some(i)) => Json::I64(i),
                _ => Json::F64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Json::Str(Cow::Borrowed(s)),
            other => Json::Nested(other.clone()),
        }
    }

    /// The integer it holds, if it is an integer of `i64`'s range.
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match *self {
            Json::I64(i) => Some(i),
            Json::U64(u) => i64::try_from(u).ok(),
            _ => None,
        }
    }

    /// Its JSON text, as serde_json writes it.
    pub(crate) fn text(&self) -> String {
        match self {
            Json::Null => "null".to_string(),
            Json::Bool(b) => b.to_string(),
            Json::I64(i) => i.to_string(),
            Json::U64(u) => u.to_string(),
            Json::F64(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| "null".to_string(), |n| n.to_string()),
            Json::Str(s) => Value::String(s.to_string()).to_string(),
            Json::Nested(v) => v.to_string(),
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::I64(_) | Json::U64(_) | Json::F64(_) => "a number",
            Json::Str(_) => "a string",
            Json::Nested(Value::Array(_)) => "an array",
            Json::Nested(_) => "an object",
        }
    }
}

/// How a column's value was found in the record.
pub(crate) enum Slot<'a> {
    Missing,
    /// Under a key equal to the column's name but for ASCII case.
    Folded(Result<Cell<'a>, String>),
    Exact(Result<Cell<'a>, String>),
}

/// Reads one JSON object into `slots` (one per column, all `Missing` on entry). `Err`: the
/// record is not valid JSON (serde_json's message) or not an object (`None`).
pub(crate) fn read_object<'a>(
    record: &'a [u8],
    columns: &[Column],
    slots: &mut [Slot<'a>],
) -> Result<(), Option<serde_json::Error>> {
    let first = record.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Not an object: whether it is JSON at all decides the message.
        return match serde_json::from_slice::<IgnoredAny>(record) {
            Ok(_) => Err(None),
            Err(e) => Err(Some(e)),
        };
    }
    let mut de = serde_json::Deserializer::from_slice(record);
    de.deserialize_map(ObjectVisitor { columns, slots })
        .map_err(Some)?;
    de.end().map_err(Some)
}

struct ObjectVisitor<'c, 's, 'a> {
    columns: &'c [Column],
    slots: &'s mut [Slot<'a>],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let mut position = 0;
        while let Some(key) = map.next_key_seed(KeySeed {
            columns: self.columns,
            hint: position,
        })? {
            position += 1;
            match key {
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Exact(i) => {
                    let v = map.next_value_seed(ValueSeed)?;
                    self.slots[i] = Slot::Exact(self.columns[i].builder.convert_json(v));
                }
                Key::Folded(i) => {
                    let v = map.next_value_seed(ValueSeed)?;
                    if !matches!(self.slots[i], Slot::Exact(_)) {
                        self.slots[i] = Slot::Folded(self.columns[i].builder.convert_json(v));
                    }
                }
            }
        }
        Ok(())
    }
}

enum Key {
    Exact(usize),
    Folded(usize),
    Other,
}

/// Matches a key to a column, trying first the column at the key's position (records usually
/// list their fields in the schema's order).
struct KeySeed<'c> {
    columns: &'c [Column],
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
        if self.columns.get(self.hint).is_some_and(|c| c.name == key) {
            return Ok(Key::Exact(self.hint));
        }
        if let Some(i) = self.columns.iter().position(|c| c.name == key) {
            return Ok(Key::Exact(i));
        }
        Ok(self
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(key))
            .map_or(Key::Other, Key::Folded))
    }
}

/// A column's value as [`Json`], borrowing the record's string where serde_json can.
struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Json<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::I64(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::U64(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::F64(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Json<'de>, M::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Json::Nested)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Json<'de>, S::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Json::Nested)
    }
}
