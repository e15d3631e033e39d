//! What changed between two versions of a record, field by field, in words.
//!
//! Works on the documents' JSON so that every field is covered without a hand-written list:
//! objects are compared key by key, lists item by item, and each difference is reported with
//! a readable path ("Patient / given name", "Observations / set 2 / pulse bpm") and its old
//! and new values. Pure functions: no egui, no I/O.

use serde_json::Value;

/// Fields that change on every signature and say nothing about the clinical content; the
/// version history shows them already.
const IGNORED_TOP_LEVEL: [&str; 3] = ["status", "sign_off", "amendment_reason"];

/// Longest value shown in full; longer ones are cut with "…".
const MAX_VALUE_CHARS: usize = 160;

/// One difference between two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// Where, in words.
    pub path: String,
    /// The earlier value in words, `None` when the field was added.
    pub before: Option<String>,
    /// The later value in words, `None` when the field was removed.
    pub after: Option<String>,
}

impl FieldChange {
    /// The change as one sentence: "Patient / given name: “Alex”, now “Alexander”".
    pub fn sentence(&self) -> String {
        match (&self.before, &self.after) {
            (None, Some(a)) => format!("{}: added {a}", self.path),
            (Some(b), None) => format!("{}: removed (was {b})", self.path),
            (Some(b), Some(a)) => format!("{}: {b}, now {a}", self.path),
            (None, None) => format!("{}: changed", self.path),
        }
    }
}

/// The record's top-level fields in the order its sections are shown; any others follow.
const SECTION_ORDER: [&str; 13] = [
    "incident",
    "patient",
    "history",
    "assessment",
    "spo2_scale",
    "observations",
    "interventions",
    "drugs",
    "outcome",
    "non_conveyance",
    "pre_alert",
    "notes",
    "crew",
];

/// Every field that differs between `before` and `after`: top-level fields in section order,
/// nested fields in key order.
pub fn changes(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort_by_key(|k| {
                (
                    SECTION_ORDER
                        .iter()
                        .position(|s| s == k)
                        .unwrap_or(SECTION_ORDER.len()),
                    k.as_str(),
                )
            });
            keys.dedup();
            for key in keys {
                if IGNORED_TOP_LEVEL.contains(&key.as_str()) {
                    continue;
                }
                walk(&[capitalised(key)], b.get(key), a.get(key), &mut out);
            }
        }
        _ => walk(&[], Some(before), Some(after), &mut out),
    }
    out
}

fn walk(
    path: &[String],
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    let before = before.filter(|v| !is_empty(v));
    let after = after.filter(|v| !is_empty(v));
    match (before, after) {
        (None, None) => {}
        (Some(b), Some(a)) if b == a => {}
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            for (key, bv) in b {
                walk(&child(path, words(key)), Some(bv), a.get(key), out);
            }
            for (key, av) in a {
                if !b.contains_key(key) {
                    walk(&child(path, words(key)), None, Some(av), out);
                }
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) => {
            let item = item_word(path);
            for i in 0..b.len().max(a.len()) {
                walk(
                    &child(path, format!("{item} {}", i + 1)),
                    b.get(i),
                    a.get(i),
                    out,
                );
            }
        }
        (b, a) => out.push(FieldChange {
            path: if path.is_empty() {
                "Record".to_owned()
            } else {
                path.join(" / ")
            },
            before: b.map(value_words),
            after: a.map(value_words),
        }),
    }
}

fn child(path: &[String], next: String) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(next);
    p
}

/// Null, "", [] and {} all mean "not recorded".
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// "given_name" → "given name".
fn words(key: &str) -> String {
    key.replace('_', " ")
}

/// "past_medical_history" → "Past medical history", for the first segment of a path.
fn capitalised(key: &str) -> String {
    let text = words(key);
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// What one item of a list is called in a path.
fn item_word(path: &[String]) -> &'static str {
    match path.last().map(String::as_str) {
        Some("Observations") => "set",
        Some("Drugs") => "drug",
        Some("Interventions") => "intervention",
        Some("Crew") => "member",
        _ => "item",
    }
}

fn value_words(v: &Value) -> String {
    let text = match v {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => t
                .with_timezone(&chrono::Local)
                .format("%d %b %Y %H:%M")
                .to_string(),
            Err(_) => format!("“{s}”"),
        },
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Null => "nothing".to_owned(),
        Value::Object(o) => o
            .iter()
            .filter(|(_, v)| !is_empty(v))
            .map(|(k, v)| format!("{} {}", words(k), value_words(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(a) => a.iter().map(value_words).collect::<Vec<_>>().join("; "),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_fields_and_list_items_are_named_in_words() {
        let before = json!({
            "status": "completed",
            "patient": {"given_name": "Alex", "family_name": ""},
            "observations": [{"pulse_bpm": 110}],
            "notes": "",
        });
        let after = json!({
            "status": "amended",
            "amendment_reason": "Added a set",
            "patient": {"given_name": "Alexander", "family_name": "Test"},
            "observations": [{"pulse_bpm": 110}, {"pulse_bpm": 96, "acvpu": "alert"}],
            "notes": null,
        });
        let lines: Vec<String> = changes(&before, &after)
            .iter()
            .map(FieldChange::sentence)
            .collect();
        assert_eq!(
            lines,
            [
                "Patient / family name: added “Test”",
                "Patient / given name: “Alex”, now “Alexander”",
                "Observations / set 2: added acvpu “alert”, pulse bpm 96",
            ]
        );
    }

    #[test]
    fn identical_documents_have_no_changes() {
        let d = json!({"a": [1, 2, {"b": "c"}]});
        assert!(changes(&d, &d).is_empty());
    }
}
