//! Canonical JSON and the content hash that signatures cover.
//!
//! The device and the server must hash byte-identical input. Canonical form here: object keys
//! sorted by their UTF-8 bytes, no insignificant whitespace, numbers and strings exactly as
//! `serde_json` writes them (shortest round-trip floats). Sorting is done explicitly rather
//! than relying on `serde_json`'s map type, which a feature flag elsewhere could change.

use crate::model::Revision;
use serde_json::Value;
use uuid::Uuid;

/// Writes `value` in canonical form.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        // Null, bool and numbers: serde_json's own compact form is canonical.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(Value::String(s.to_owned()).to_string().as_bytes());
}

/// Hex SHA-256 of the canonical form of a record document.
pub fn content_sha256_hex(document: &Value) -> String {
    super::sha256_hex(&canonical_json(document))
}

/// The exact bytes a device signs for one record version: the record id, revision, status
/// and content hash, in canonical JSON. Signing the hash (not the document) keeps signatures
/// small while binding them to the full content.
pub fn signing_payload(
    record_id: Uuid,
    revision: Revision,
    status: &str,
    content_sha256: &str,
) -> Vec<u8> {
    let v = serde_json::json!({
        "record_id": record_id.to_string(),
        "revision": revision,
        "status": status,
        "content_sha256": content_sha256,
    });
    canonical_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_whitespace_removed() {
        let v: Value =
            serde_json::from_str(r#"{ "b": 1, "a": {"d": [1, 2.5, "x"], "c": null} }"#).unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":null,"d":[1,2.5,"x"]},"b":1}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let v = json!({"n": "O'Brien \"Jr\"\n"});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"n":"O'Brien \"Jr\"\n"}"#
        );
    }

    #[test]
    fn hash_survives_a_reparse() {
        let v = json!({"t": 37.1, "x": [0.1, 1e-7, 300.0], "name": "Zoë"});
        let text = serde_json::to_string_pretty(&v).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(content_sha256_hex(&v), content_sha256_hex(&back));
    }

    #[test]
    fn any_change_changes_the_hash() {
        let a = json!({"hr": 80});
        let b = json!({"hr": 81});
        assert_ne!(content_sha256_hex(&a), content_sha256_hex(&b));
    }
}
