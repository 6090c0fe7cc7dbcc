//! Request JSON read the way JSON Schema (and so the OpenAPI document)
//! describes it, where serde's derived readers differ.
//!
//! - Whole numbers: JSON has one number type, and JSON Schema's `integer`
//!   is any number without a fractional part, so a client (or a generator
//!   working from the document) may send `47.0` where the document says
//!   integer. serde's integer types refuse that; [`whole`] and
//!   [`whole_opt`] take it, and still refuse `47.5` or a number out of
//!   range with a clear message.
//! - Objects: serde's derived structs also read a JSON array, by position
//!   (`[null, null]` as a filter with both fields absent). [`object`],
//!   [`object_opt`] and [`objects`] read a nested struct only from a JSON
//!   object, as its schema says. (Bodies themselves are checked by the
//!   server's extractor.)

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads a whole number into `T`: use with `#[serde(deserialize_with = "…")]`.
pub fn whole<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    deserializer.deserialize_any(Whole(PhantomData))
}

/// Like [`whole`], for an optional field (absent and `null` are `None`);
/// use with `#[serde(default, deserialize_with = "…")]`.
pub fn whole_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    deserializer.deserialize_option(Optional(PhantomData))
}

/// Reads a nested struct from a JSON object, and from nothing else.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    from_object(Value::deserialize(deserializer)?)
}

/// Like [`object`], for an optional field (absent and `null` are `None`);
/// use with `#[serde(default, deserialize_with = "…")]`.
pub fn object_opt<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => from_object(value).map(Some),
    }
}

/// Reads an array of nested structs, each from a JSON object.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    Vec::<Value>::deserialize(deserializer)?.into_iter().map(from_object).collect()
}

fn from_object<T: DeserializeOwned, E: Error>(value: Value) -> Result<T, E> {
    let unexpected = match &value {
        Value::Object(_) => return T::deserialize(value).map_err(E::custom),
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("a number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
    };
    Err(E::invalid_type(unexpected, &"a JSON object"))
}

struct Whole<T>(PhantomData<T>);

impl<T: TryFrom<i128>> Whole<T> {
    fn fit<E: Error>(value: i128) -> Result<T, E> {
        T::try_from(value).map_err(|_| E::custom(format!("{value} is out of range")))
    }
}

impl<'de, T: TryFrom<i128>> Visitor<'de> for Whole<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<T, E> {
        Self::fit(i128::from(value))
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<T, E> {
        Self::fit(i128::from(value))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<T, E> {
        // Beyond 2^63 an f64 is far outside every range used here.
        if value.fract() != 0.0 || !value.is_finite() || value.abs() > 9.2e18 {
            return Err(E::custom(format!("{value} is not a whole number in range")));
        }
        Self::fit(value as i128)
    }
}

struct Optional<T>(PhantomData<T>);

impl<'de, T: TryFrom<i128>> Visitor<'de> for Optional<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a whole number or null")
    }

    fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
        whole(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::whole")]
        k: u32,
        #[serde(default, deserialize_with = "super::whole_opt")]
        seed: Option<i64>,
    }

    fn read(json: &str) -> Result<Body, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn integers_and_whole_floats_are_read_alike() {
        assert_eq!(read(r#"{"k": 47}"#).unwrap().k, 47);
        assert_eq!(read(r#"{"k": 47.0}"#).unwrap().k, 47);
        assert_eq!(read(r#"{"k": 4.7e1}"#).unwrap().k, 47);
        assert_eq!(read(r#"{"k": 1, "seed": -3.0}"#).unwrap().seed, Some(-3));
        assert_eq!(read(r#"{"k": 1, "seed": null}"#).unwrap().seed, None);
        assert_eq!(read(r#"{"k": 1}"#).unwrap().seed, None);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        #[serde(default)]
        a: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "super::object_opt")]
        one: Option<Inner>,
        #[serde(default, deserialize_with = "super::objects")]
        many: Vec<Inner>,
    }

    #[test]
    fn nested_structs_are_read_from_objects_only() {
        let read = |json: &str| serde_json::from_str::<Outer>(json).map_err(|e| e.to_string());
        let outer = read(r#"{"one": {"a": 1}, "many": [{}, {"a": 2}]}"#).unwrap();
        assert_eq!(outer.one, Some(Inner { a: Some(1) }));
        assert_eq!(outer.many, [Inner { a: None }, Inner { a: Some(2) }]);
        assert_eq!(read(r#"{"one": null}"#).unwrap().one, None);
        // serde alone would read these arrays by position.
        assert!(read(r#"{"one": [1]}"#).unwrap_err().contains("expected a JSON object"));
        assert!(read(r#"{"many": [[2]]}"#).unwrap_err().contains("expected a JSON object"));
        assert!(read(r#"{"one": "x"}"#).unwrap_err().contains("expected a JSON object"));
        assert!(read(r#"{"one": {"a": "x"}}"#).is_err());
    }

    #[test]
    fn fractions_out_of_range_values_and_other_types_are_refused() {
        assert!(read(r#"{"k": 47.5}"#).unwrap_err().contains("not a whole number"));
        assert!(read(r#"{"k": -1}"#).unwrap_err().contains("out of range"));
        assert!(read(r#"{"k": 5000000000}"#).unwrap_err().contains("out of range"));
        assert!(read(r#"{"k": 1e300}"#).unwrap_err().contains("not a whole number"));
        assert!(read(r#"{"k": "47"}"#).unwrap_err().contains("a whole number"));
        assert!(read(r#"{"k": null}"#).is_err());
    }
}
