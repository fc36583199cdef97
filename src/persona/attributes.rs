//! Serde for persona attributes: an ordered list of `(key, value)` written as a map whose
//! values are strings, numbers or booleans. Anything else (a nested table, an array) is
//! rejected with a message that says what was expected, because a profile is flat text.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;

/// The key under which toml hands a datetime to a deserializer; a date is a fine
/// attribute value ("member_since = 2019-05-01"), so it is accepted as text.
const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

const EXPECTED: &str = "a string, number or boolean";

pub(crate) fn serialize<S: Serializer>(attrs: &[(String, String)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(attrs.iter().map(|(k, v)| (k, v)))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, String)>, D::Error> {
    deserializer.deserialize_map(AttributesVisitor)
}

struct AttributesVisitor;

impl<'de> Visitor<'de> for AttributesVisitor {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a table of attributes whose values are {EXPECTED}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(String, String)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let AttrValue(value) = map.next_value()?;
            if out.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate attribute `{key}`")));
            }
            out.push((key, value));
        }
        Ok(out)
    }
}

/// One attribute value, kept as text.
struct AttrValue(String);

impl<'de> de::Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AttrValueVisitor)
    }
}

struct AttrValueVisitor;

impl<'de> Visitor<'de> for AttrValueVisitor {
    type Value = AttrValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AttrValue, E> {
        Ok(AttrValue(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<AttrValue, E> {
        Ok(AttrValue(v))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AttrValue, E> {
        Ok(AttrValue(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AttrValue, E> {
        Ok(AttrValue(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AttrValue, E> {
        Ok(AttrValue(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AttrValue, E> {
        if v.is_finite() {
            Ok(AttrValue(v.to_string()))
        } else {
            Err(E::custom(format!("expected {EXPECTED} with a finite value, found {v}")))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<AttrValue, E> {
        Err(E::custom(format!("expected {EXPECTED}, found an empty value")))
    }

    fn visit_none<E: de::Error>(self) -> Result<AttrValue, E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<AttrValue, A::Error> {
        Err(de::Error::custom(format!(
            "expected {EXPECTED}, found an array (write a list as one string, e.g. \"family, security\")"
        )))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttrValue, A::Error> {
        if let Some(key) = map.next_key::<String>()? {
            if key == TOML_DATETIME_KEY {
                let text: String = map.next_value()?;
                return Ok(AttrValue(text));
            }
        }
        Err(de::Error::custom(format!(
            "expected {EXPECTED}, found a nested table; attributes must be flat \
             (write e.g. big_five_openness = 4.2 instead of a [attributes.big_five] table)"
        )))
    }
}
