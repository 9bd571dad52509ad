//! Payload and account checks against JSON Schemas compiled once at start-up.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use jsonschema::ValidationError;
use jsonschema::error::ValidationErrorKind;

use crate::envelope::display_bounded;

/// The JSON Schema of `T` (draft 2020-12), as schemars generates it.
pub fn schema_of<T: JsonSchema>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value()
}

/// One thing wrong with a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON pointer to the offending value (`/items/1/quantity`); `""` is the whole document.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// The most errors an envelope lists; the others are counted in `errors_omitted`.
pub const MAX_LISTED_ERRORS: usize = 100;
/// The most missing fields an envelope lists; the others are counted in `missing_omitted`.
pub const MAX_LISTED_MISSING: usize = 100;
/// The longest error message kept, in bytes. A type error quotes the offending value, which may
/// be most of the document.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 256;
/// Missing fields named in the one-line summary; the rest are counted.
const SUMMARY_MISSING: usize = 10;
/// Other errors spelled out in the one-line summary; the rest are counted.
const SUMMARY_ERRORS: usize = 3;

/// Everything wrong with a document, bounded: the first errors in document order, and how many
/// more there are. A document with a million errors costs a list of
/// [`MAX_LISTED_ERRORS`], not a million.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Violations {
    /// The errors with the smallest paths (at most [`MAX_LISTED_ERRORS`]), sorted by path.
    pub errors: Vec<FieldError>,
    /// Errors found but not listed in `errors`.
    pub errors_omitted: usize,
    /// Required fields that are absent, as dotted paths (`customer.address.zip`), sorted (at
    /// most [`MAX_LISTED_MISSING`]). Each also has its entry among the errors.
    pub missing: Vec<String>,
    /// Missing fields found but not listed in `missing`.
    pub missing_omitted: usize,
}

impl Violations {
    /// One error about the whole document.
    pub(crate) fn single(message: impl Into<String>) -> Self {
        Self {
            errors: vec![FieldError {
                path: String::new(),
                message: message.into(),
            }],
            ..Self::default()
        }
    }

    /// One line for the envelope's message: the missing fields first, then the other errors,
    /// a few of each and how many more. Linear in the listed errors, which are bounded.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let missing_total = self.missing.len() + self.missing_omitted;
        if missing_total > 0 {
            let shown = self.missing.len().min(SUMMARY_MISSING);
            let mut part = format!(
                "Missing required parameters: {}",
                self.missing[..shown].join(", ")
            );
            if missing_total > shown {
                part.push_str(&format!(" and {} more", missing_total - shown));
            }
            parts.push(part);
        }
        // A missing field is named above; its error points where the field would be.
        let missing: std::collections::HashSet<&str> =
            self.missing.iter().map(String::as_str).collect();
        let others_total = (self.errors.len() + self.errors_omitted).saturating_sub(missing_total);
        let shown: Vec<String> = self
            .errors
            .iter()
            .filter(|e| !missing.contains(dotted(&e.path).as_str()))
            .take(SUMMARY_ERRORS.min(others_total))
            .map(|e| {
                if e.path.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.path, e.message)
                }
            })
            .collect();
        let more = others_total.saturating_sub(shown.len());
        match (shown.is_empty(), more) {
            (true, 0) => {}
            (true, more) => parts.push(format!("{more} other errors")),
            (false, 0) => parts.push(shown.join("; ")),
            (false, more) => parts.push(format!("{}; and {more} more", shown.join("; "))),
        }
        parts.join("; ")
    }
}

/// Keeps the `cap` entries with the smallest keys among all it is offered, and counts the
/// others: O(log cap) per entry, so a capped list in document order costs linear time.
struct Smallest<V> {
    cap: usize,
    kept: BinaryHeap<Keyed<V>>,
    offered: usize,
}

struct Keyed<V> {
    key: String,
    order: usize,
    value: V,
}

impl<V> PartialEq for Keyed<V> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<V> Eq for Keyed<V> {}

impl<V> PartialOrd for Keyed<V> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<V> Ord for Keyed<V> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.key.as_str(), self.order).cmp(&(other.key.as_str(), other.order))
    }
}

impl<V> Smallest<V> {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            kept: BinaryHeap::with_capacity(cap + 1),
            offered: 0,
        }
    }

    /// Counts an entry whose key is `key`'s pieces laid end to end, and says whether it is kept;
    /// if so, the caller passes it to [`keep`](Self::keep). The key is compared in place: no
    /// allocation for an entry left out.
    fn admits(&mut self, key: &[&str]) -> bool {
        self.offered += 1;
        self.kept.len() < self.cap
            || self
                .kept
                .peek()
                .is_some_and(|largest| cmp_pieces(key, &largest.key) == Ordering::Less)
    }

    /// Keeps the entry just admitted.
    fn keep(&mut self, key: String, value: V) {
        self.kept.push(Keyed {
            key,
            order: self.offered,
            value,
        });
        if self.kept.len() > self.cap {
            self.kept.pop();
        }
    }

    /// The kept entries by key, and how many were left out.
    fn into_sorted(self) -> (Vec<(String, V)>, usize) {
        let omitted = self.offered - self.kept.len();
        let kept = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|k| (k.key, k.value))
            .collect();
        (kept, omitted)
    }
}

/// A compiled schema.
#[derive(Clone)]
pub struct SchemaValidator {
    schema: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
    masked: bool,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator")
            .field("schema", &self.schema)
            .finish()
    }
}

impl SchemaValidator {
    /// Compiles `schema`. Errors say why the schema itself is not usable.
    pub fn compile(schema: Value) -> Result<Self, String> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
        Ok(Self {
            schema: Arc::new(schema),
            validator: Arc::new(validator),
            masked: false,
        })
    }

    /// Keeps the document's values out of error messages (for accounts, which hold secrets).
    pub fn masked(mut self) -> Self {
        self.masked = true;
        self
    }

    /// The schema as given.
    pub fn schema(&self) -> &Arc<Value> {
        &self.schema
    }

    /// Checks `instance`; on failure lists the first errors in document order and counts the
    /// rest. Linear in the number of errors; each listed message is cut to
    /// [`MAX_ERROR_MESSAGE_BYTES`].
    pub fn check(&self, instance: &Value) -> Result<(), Violations> {
        if self.validator.is_valid(instance) {
            return Ok(());
        }
        let mut errors = Smallest::new(MAX_LISTED_ERRORS);
        let mut missing = Smallest::new(MAX_LISTED_MISSING);
        for error in self.validator.iter_errors(instance) {
            let at = error.instance_path().as_str();
            if let ValidationErrorKind::Required { property } = error.kind() {
                // Where the field would be: the object's pointer and the field's name.
                let name = match property.as_str() {
                    Some(name) => escape_pointer(name),
                    None => Cow::Owned(escape_pointer(&property.to_string()).into_owned()),
                };
                let key = [at, "/", name.as_ref()];
                if missing.admits(&key) {
                    missing.keep(key.concat(), ());
                }
                if errors.admits(&key) {
                    let message = display_bounded(&error, MAX_ERROR_MESSAGE_BYTES);
                    errors.keep(key.concat(), Listed::Missing(message));
                }
            } else if errors.admits(&[at]) {
                // Kept as is; its message is formatted only if it stays among the first.
                let at = at.to_owned();
                errors.keep(at, Listed::Other(error));
            }
        }
        let (errors, errors_omitted) = errors.into_sorted();
        let (missing, missing_omitted) = missing.into_sorted();
        let mut missing: Vec<String> = missing.into_iter().map(|(at, ())| dotted(&at)).collect();
        missing.sort();
        Err(Violations {
            errors: errors
                .into_iter()
                .map(|(path, listed)| {
                    let message = match listed {
                        Listed::Missing(message) => message,
                        Listed::Other(error) if self.masked => {
                            display_bounded(&error.masked(), MAX_ERROR_MESSAGE_BYTES)
                        }
                        Listed::Other(error) => display_bounded(&error, MAX_ERROR_MESSAGE_BYTES),
                    };
                    FieldError { path, message }
                })
                .collect(),
            errors_omitted,
            missing,
            missing_omitted,
        })
    }
}

/// Compares the concatenation of `pieces` with `other`, without building it.
fn cmp_pieces(pieces: &[&str], other: &str) -> Ordering {
    let mut rest = other.as_bytes();
    for piece in pieces {
        let piece = piece.as_bytes();
        let common = piece.len().min(rest.len());
        match piece[..common].cmp(&rest[..common]) {
            Ordering::Equal if piece.len() > rest.len() => return Ordering::Greater,
            Ordering::Equal => rest = &rest[common..],
            unequal => return unequal,
        }
    }
    if rest.is_empty() {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

/// An error kept for the list: a missing field's message (which names only the field), or the
/// error itself, formatted once it is known to be listed.
enum Listed<'i> {
    Missing(String),
    Other(ValidationError<'i>),
}

fn escape_pointer(segment: &str) -> Cow<'_, str> {
    if segment.contains(['~', '/']) {
        Cow::Owned(segment.replace('~', "~0").replace('/', "~1"))
    } else {
        Cow::Borrowed(segment)
    }
}

/// `/customer/address/zip` → `customer.address.zip`.
fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lists_every_error_with_its_pointer() {
        let schema = json!({
            "type": "object",
            "required": ["a", "items"],
            "properties": {
                "a": {"type": "number"},
                "items": {"type": "array", "items": {
                    "type": "object", "required": ["q"],
                    "properties": {"q": {"type": "integer", "minimum": 1}}}}
            }
        });
        let v = SchemaValidator::compile(schema).unwrap();
        let err = v.check(&json!({"items": [{"q": 0}, {}]})).unwrap_err();
        let paths: Vec<_> = err.errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"/a"), "{paths:?}");
        assert!(paths.contains(&"/items/0/q"), "{paths:?}");
        assert!(paths.contains(&"/items/1/q"), "{paths:?}");
        assert_eq!(err.missing, vec!["a".to_string(), "items.1.q".to_string()]);
        let summary = err.summary();
        assert!(
            summary.starts_with("Missing required parameters: a, items.1.q; /items/0/q"),
            "{summary}"
        );
    }

    fn order_schema() -> Value {
        json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {"type": "array", "items": {
                    "type": "object", "required": ["id", "q"],
                    "properties": {"id": {"type": "string"}, "q": {"type": "integer"}}}}
            }
        })
    }

    #[test]
    fn lists_are_capped_and_the_rest_counted() {
        let v = SchemaValidator::compile(order_schema()).unwrap();
        let items: Vec<Value> = (0..5000).map(|_| json!({})).collect();
        let err = v.check(&json!({ "items": items })).unwrap_err();
        assert_eq!(err.errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(err.errors_omitted, 10_000 - MAX_LISTED_ERRORS);
        assert_eq!(err.missing.len(), MAX_LISTED_MISSING);
        assert_eq!(err.missing_omitted, 10_000 - MAX_LISTED_MISSING);
        // The first in document order (by path), sorted.
        assert_eq!(err.errors[0].path, "/items/0/id");
        assert_eq!(err.errors[1].path, "/items/0/q");
        assert!(err.errors.windows(2).all(|w| w[0].path <= w[1].path));
        assert_eq!(err.missing[0], "items.0.id");
        assert!(err.missing.windows(2).all(|w| w[0] <= w[1]));
        let summary = err.summary();
        assert!(
            summary.starts_with("Missing required parameters: items.0.id, items.0.q,"),
            "{summary}"
        );
        assert!(summary.ends_with(" and 9990 more"), "{summary}");
        assert!(summary.len() < 400, "{summary}");
    }

    #[test]
    fn the_summary_counts_other_errors_beyond_the_listed_ones() {
        let v = SchemaValidator::compile(order_schema()).unwrap();
        // Missing fields sort first ("/items/0/id" < "/items/0/q"), so they fill the list.
        let mut items: Vec<Value> = (0..200).map(|_| json!({"q": 1})).collect();
        items.extend((0..50).map(|_| json!({"id": "x", "q": "bad"})));
        let err = v.check(&json!({ "items": items })).unwrap_err();
        assert_eq!(err.errors.len() + err.errors_omitted, 250);
        assert_eq!(err.missing.len() + err.missing_omitted, 200);
        let summary = err.summary();
        assert!(summary.contains("and 190 more"), "{summary}");
        assert!(summary.ends_with("; 50 other errors"), "{summary}");
    }

    #[test]
    fn long_messages_are_cut() {
        let v = SchemaValidator::compile(json!({"type": "object", "properties": {
            "n": {"type": "number"}}}))
        .unwrap();
        let err = v.check(&json!({"n": "x".repeat(1 << 20)})).unwrap_err();
        let message = &err.errors[0].message;
        assert!(
            message.len() < MAX_ERROR_MESSAGE_BYTES + 32,
            "{}",
            message.len()
        );
        assert!(message.ends_with("… (truncated)"), "{message}");
    }

    #[test]
    fn compares_pieces_as_their_concatenation() {
        for (pieces, other) in [
            (&["/a", "/", "b"][..], "/a/b"),
            (&["/a", "/", "b"][..], "/a/c"),
            (&["/a", "/", "b"][..], "/a"),
            (&["/a"][..], "/a/b"),
            (&["", "/", "x"][..], "/w"),
            (&[][..], ""),
        ] {
            assert_eq!(
                cmp_pieces(pieces, other),
                pieces.concat().as_str().cmp(other),
                "{pieces:?} {other}"
            );
        }
    }

    #[test]
    fn keeps_the_smallest_keys_in_order() {
        let mut smallest = Smallest::new(3);
        for (i, key) in ["d", "b", "e", "a", "b", "c"].into_iter().enumerate() {
            if smallest.admits(&[key]) {
                smallest.keep(key.to_owned(), i);
            }
        }
        let (kept, omitted) = smallest.into_sorted();
        assert_eq!(
            kept,
            vec![("a".into(), 3), ("b".into(), 1), ("b".into(), 4)]
        );
        assert_eq!(omitted, 3);
    }

    #[test]
    fn masked_messages_hide_values() {
        let v = SchemaValidator::compile(json!({"type": "object", "properties": {
            "key": {"type": "string", "minLength": 32}}}))
        .unwrap()
        .masked();
        let err = v.check(&json!({"key": "secret-but-short"})).unwrap_err();
        assert!(
            !err.errors[0].message.contains("secret-but-short"),
            "{:?}",
            err.errors
        );
    }
}
