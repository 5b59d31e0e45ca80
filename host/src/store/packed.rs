//! Many rows read as one value (SQLite). Its driver hands rows over one at a time, every value
//! of every row copied and sent from the connection's thread, which made reading a config's
//! 1000 nodes cost ~10 µs per row. For the lists every projection reads, the database packs
//! the rows into one JSON array of arrays (`json_group_array(json_array(..))`) and the rows are
//! decoded here from that text, in the column order of the query. (PostgreSQL reads rows as
//! they are: `json_agg(json_build_array(..))` measured slower there than its row decoding.)
//!
//! Values keep their meaning through JSON: text stays text (never re-read as JSON), `i64`
//! integers are exact, NULL is `null`; booleans arrive as `0`/`1` (and `true`/`false` are
//! accepted too), see [`flag`] and [`opt_flag`].

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use super::{StoreError, StoreResult};

/// A boolean stored as `BOOLEAN` or as an `INTEGER` 0/1.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Flag, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean or an integer")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Flag, E> {
                Ok(Flag(v != 0))
            }
        }
        d.deserialize_any(V)
    }
}

/// The next column of a packed row.
pub(crate) fn col<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(s: &mut A) -> Result<T, A::Error> {
    s.next_element()?.ok_or_else(|| de::Error::custom("packed row is short"))
}

/// The next column of a packed row, a boolean.
pub(crate) fn flag<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<bool, A::Error> {
    Ok(col::<A, Flag>(s)?.0)
}

/// The next column of a packed row, a nullable boolean.
pub(crate) fn opt_flag<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<Option<bool>, A::Error> {
    Ok(col::<A, Option<Flag>>(s)?.map(|f| f.0))
}

/// A row type read from a packed array: `read` takes its columns in query order.
pub(crate) trait Packed: Sized {
    fn read<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<Self, A::Error>;
}

struct Row<T>(T);

impl<'de, T: Packed> Deserialize<'de> for Row<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Packed> Visitor<'de> for V<T> {
            type Value = Row<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a packed row")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Row<T>, A::Error> {
                let row = T::read(&mut s)?;
                if s.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("packed row is long"));
                }
                Ok(Row(row))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Decodes the packed rows (`None`, an aggregate over no rows on PostgreSQL, is no rows).
pub(crate) fn unpack<T: Packed>(text: Option<String>) -> StoreResult<Vec<T>> {
    let Some(text) = text else { return Ok(Vec::new()) };
    let rows: Vec<Row<T>> =
        serde_json::from_str(&text).map_err(|e| StoreError::Other(format!("packed rows: {e}")))?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T(String, Option<i64>, bool, Option<bool>);

    impl Packed for T {
        fn read<'de, A: SeqAccess<'de>>(s: &mut A) -> Result<T, A::Error> {
            Ok(T(col(s)?, col(s)?, flag(s)?, opt_flag(s)?))
        }
    }

    #[test]
    fn rows_from_either_backend() {
        let v: Vec<T> = unpack(Some(r#"[["a\"[1]",null,1,null],["b",9007199254740993,false,true]]"#.into())).unwrap();
        assert_eq!((v[0].0.as_str(), v[0].1, v[0].2, v[0].3), ("a\"[1]", None, true, None));
        assert_eq!((v[1].0.as_str(), v[1].1, v[1].2, v[1].3), ("b", Some(9007199254740993), false, Some(true)));
        assert!(unpack::<T>(None).unwrap().is_empty());
        assert!(unpack::<T>(Some(r#"[["a",1,1]]"#.into())).is_err());
        assert!(unpack::<T>(Some(r#"[["a",1,1,null,2]]"#.into())).is_err());
    }
}
