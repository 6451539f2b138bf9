//! Stored JSON read without building `serde_json::Value` trees: grade and resolution answers,
//! and item metadata.
//!
//! An export reads every grade of a study, so these readers borrow strings from the row's
//! text wherever the JSON has no escapes and keep entries in a flat list in stored order.
//! They serialize back as JSON objects with the same entries in the same order.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// A string borrowed from the input when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(value.to_string())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(value)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// One stored answer: an option value or text, or the options of a multi-choice field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerRef<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl<'de> Deserialize<'de> for AnswerRef<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnswerVisitor;
        impl<'de> Visitor<'de> for AnswerVisitor {
            type Value = AnswerRef<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(AnswerRef::One(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(AnswerRef::One(Cow::Owned(value.to_string())))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(AnswerRef::One(Cow::Owned(value)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                while let Some(CowStr(value)) = seq.next_element()? {
                    values.push(value);
                }
                Ok(AnswerRef::Many(values))
            }
        }
        deserializer.deserialize_any(AnswerVisitor)
    }
}

impl Serialize for AnswerRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AnswerRef::One(value) => serializer.serialize_str(value),
            AnswerRef::Many(values) => {
                let mut seq = serializer.serialize_seq(Some(values.len()))?;
                for value in values {
                    seq.serialize_element(value.as_ref())?;
                }
                seq.end()
            }
        }
    }
}

/// The answers of a grade or resolution, in stored order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredAnswers<'a> {
    entries: Vec<(Cow<'a, str>, AnswerRef<'a>)>,
}

impl<'a> StoredAnswers<'a> {
    /// Parses stored answers; fails when the text is not a JSON object of strings and
    /// string arrays.
    pub fn parse(text: &'a str) -> Result<StoredAnswers<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn get(&self, field: &str) -> Option<&AnswerRef<'a>> {
        self.entries
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, answer)| answer)
    }

    /// Returns the answer of a single-choice or text field; `None` for multi-choice or
    /// unanswered.
    pub fn single(&self, field: &str) -> Option<&str> {
        match self.get(field)? {
            AnswerRef::One(value) => Some(value),
            AnswerRef::Many(_) => None,
        }
    }

    /// Replaces `cell` with the field's CSV cell: the value, multi-choice options joined with
    /// `|`, or nothing when the field is not answered.
    pub fn write_cell(&self, field: &str, cell: &mut String) {
        cell.clear();
        match self.get(field) {
            None => {}
            Some(AnswerRef::One(value)) => cell.push_str(value),
            Some(AnswerRef::Many(values)) => {
                for (index, value) in values.iter().enumerate() {
                    if index > 0 {
                        cell.push('|');
                    }
                    cell.push_str(value);
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for StoredAnswers<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StoredAnswers<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object mapping field names to answers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((CowStr(name), answer)) = map.next_entry::<CowStr<'de>, AnswerRef<'de>>()? {
                    entries.push((name, answer));
                }
                Ok(StoredAnswers { entries })
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

impl Serialize for StoredAnswers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, answer) in &self.entries {
            map.serialize_entry(name.as_ref(), answer)?;
        }
        map.end()
    }
}

/// One metadata value as text: strings as they are, numbers and booleans as written,
/// arrays and objects as compact JSON; `None` for null.
struct MetadataValue<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for MetadataValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = MetadataValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Borrowed(value))))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Owned(value.to_string()))))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Owned(value))))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Owned(value.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Owned(value.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Owned(value.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                Ok(MetadataValue(Some(Cow::Owned(
                    serde_json::Value::from(value).to_string(),
                ))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MetadataValue(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(MetadataValue(Some(Cow::Owned(value.to_string()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(MetadataValue(Some(Cow::Owned(value.to_string()))))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

/// Item metadata as text values, in stored order, null values left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMetadata<'a> {
    entries: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> StoredMetadata<'a> {
    /// Parses stored metadata; fails when the text is not a JSON object.
    pub fn parse(text: &'a str) -> Result<StoredMetadata<'a>, serde_json::Error> {
        serde_json::from_str(text)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_ref())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(name, _)| name.as_ref())
    }
}

impl<'de> Deserialize<'de> for StoredMetadata<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StoredMetadata<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((CowStr(key), MetadataValue(value))) =
                    map.next_entry::<CowStr<'de>, MetadataValue<'de>>()?
                {
                    if let Some(value) = value {
                        entries.push((key, value));
                    }
                }
                Ok(StoredMetadata { entries })
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

impl Serialize for StoredMetadata<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key.as_ref(), value.as_ref())?;
        }
        map.end()
    }
}

/// Epoch milliseconds shown as RFC 3339 in UTC with exactly three fraction digits, e.g.
/// `2026-12-04T09:30:00.000Z`, so every time has the same width and sorts as text.
///
/// Times outside the years 0 to 9999 cannot be written so and are shown as the plain
/// millisecond count; no stored time is expected there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub i64);

impl Rfc3339 {
    /// Formats the time, or returns `None` outside the years 0 to 9999.
    fn format(self) -> Option<[u8; 24]> {
        let days = self.0.div_euclid(86_400_000);
        let of_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, value: i64| {
            let mut value = value;
            for position in (at..at + width).rev() {
                text[position] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, of_day / 3_600_000);
        put(14, 2, of_day / 60_000 % 60);
        put(17, 2, of_day / 1000 % 60);
        put(20, 3, of_day % 1000);
        Some(text)
    }
}

/// Converts days since 1970-01-01 to the proleptic Gregorian (year, month, day), by Howard
/// Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format() {
            // The buffer contains ASCII digits and punctuation only.
            Some(text) => f.write_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Rfc3339 {
    /// Replaces `cell` with the time's text.
    pub fn write_cell(self, cell: &mut String) {
        cell.clear();
        match self.format() {
            Some(text) => cell.push_str(std::str::from_utf8(&text).unwrap_or_default()),
            None => {
                let _ = write!(cell, "{}", self.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_milliseconds_and_z() {
        assert_eq!(Rfc3339(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Rfc3339(1_796_376_600_123).to_string(), "2026-12-04T09:30:00.123Z");
        assert_eq!(Rfc3339(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Rfc3339(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Rfc3339(i64::MAX).to_string(), i64::MAX.to_string());
    }

    #[test]
    fn rfc3339_matches_time_crate() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        let mut ms: i64 = -62_000_000_000_000;
        while ms < 250_000_000_000_000 {
            let expected = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("in range")
                .format(format)
                .expect("formats");
            assert_eq!(Rfc3339(ms).to_string(), expected, "{ms}");
            ms += 7_777_777_777;
        }
    }

    #[test]
    fn answers_borrow_and_join() {
        let text = r#"{"dr":"2","lesions":["ma","he"],"note":"a \"quoted\" word"}"#;
        let answers = StoredAnswers::parse(text).expect("valid answers");
        assert!(matches!(answers.get("dr"), Some(AnswerRef::One(Cow::Borrowed("2")))));
        let mut cell = String::new();
        answers.write_cell("lesions", &mut cell);
        assert_eq!(cell, "ma|he");
        answers.write_cell("missing", &mut cell);
        assert_eq!(cell, "");
        assert_eq!(answers.single("note"), Some("a \"quoted\" word"));
        assert_eq!(serde_json::to_string(&answers).unwrap(), text);
    }

    #[test]
    fn answers_reject_numbers_and_non_objects() {
        assert!(StoredAnswers::parse(r#"{"dr": 2}"#).is_err());
        assert!(StoredAnswers::parse(r#"["dr"]"#).is_err());
    }

    #[test]
    fn metadata_values_become_text() {
        let metadata =
            StoredMetadata::parse(r#"{"site":"Lyon","age":61,"ok":true,"gone":null,"tags":["a"]}"#).expect("valid");
        assert_eq!(metadata.get("age"), Some("61"));
        assert_eq!(metadata.get("ok"), Some("true"));
        assert_eq!(metadata.get("gone"), None);
        assert_eq!(metadata.get("tags"), Some(r#"["a"]"#));
        assert_eq!(metadata.keys().collect::<Vec<_>>(), ["site", "age", "ok", "tags"]);
    }
}
