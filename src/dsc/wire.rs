//! The JSON bodies, field for field as Huawei DSC defines them.

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// One entry of `columns`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The field name in each row of `data`.
    pub name: String,
    /// The SQL type, e.g. `INTEGER`, `DECIMAL(10,2)`, `VARCHAR`.
    #[serde(rename = "type")]
    pub ty: String,
    /// `true` for a primary-key column (never marked), `false` for a column
    /// to mark. Absent means `false`.
    #[serde(default)]
    pub primary_key: bool,
}

/// One row of `data` or `marked_data`: the fields in their original order,
/// each value kept as its exact JSON text.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// `(field name, exact JSON text of the value)`, in document order.
    pub fields: Vec<(String, Box<RawValue>)>,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.fields.len() == other.fields.len()
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|((a, x), (b, y))| a == b && x.get() == y.get())
    }
}

impl Row {
    /// The exact JSON text of field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.get())
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push((k, v));
                }
                Ok(Row { fields })
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The watermark key of a request. Deserialising it never echoes the value
/// in an error, and `Debug` prints no key material.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretKey(pub String);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl<'de> Deserialize<'de> for SecretKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        serde_json::from_str::<String>(raw.get())
            .map(SecretKey)
            .map_err(|_| de::Error::custom("watermark_key must be a JSON string"))
    }
}

impl Serialize for SecretKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// `POST /v1/{project_id}/sdg/database/watermark/embed` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The watermark to embed, 1 to 64 bytes of UTF-8.
    pub watermark_content: String,
    /// The secret key.
    pub watermark_key: SecretKey,
    /// The columns: at most 100, at least one primary key and one other.
    pub columns: Vec<ColumnSpec>,
    /// The rows, at most 50,000.
    pub data: Vec<Row>,
}

/// The embed response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The rows of `data`, in order, with marked cells rewritten.
    pub marked_data: Vec<Row>,
}

/// `POST /v1/{project_id}/sdg/database/watermark/extract` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractRequest {
    /// The secret key.
    pub watermark_key: SecretKey,
    /// The columns, as for embedding.
    pub columns: Vec<ColumnSpec>,
    /// The suspect rows, at most 30,000.
    pub data: Vec<Row>,
}

/// The extract response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractResponse {
    /// Every distinct watermark found (at most 100), strongest evidence
    /// first; empty when there is none.
    pub watermarks: Vec<String>,
}

/// The error response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// `DSC.00000004` (invalid parameter) or `DSC.00000002` (internal error).
    pub error_code: String,
    /// A message; for invalid parameters `Invalid parameter: <reason>`.
    pub error_msg: String,
}
