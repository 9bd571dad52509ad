//! Payload and account checks against JSON Schemas compiled once at start-up.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

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

/// Everything wrong with a document: every error, not only the first.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Violations {
    /// Each error with its path.
    pub errors: Vec<FieldError>,
    /// Required fields that are absent, as dotted paths (`customer.address.zip`).
    pub missing: Vec<String>,
}

impl Violations {
    /// One line for the envelope's message: the missing fields first, then the other errors.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!(
                "Missing required parameters: {}",
                self.missing.join(", ")
            ));
        }
        let others: Vec<String> = self
            .errors
            .iter()
            // A missing field is named above; its error points where the field would be.
            .filter(|e| !self.missing.contains(&dotted(&e.path)))
            .map(|e| {
                if e.path.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.path, e.message)
                }
            })
            .collect();
        const SHOWN: usize = 3;
        if others.len() > SHOWN {
            parts.push(format!(
                "{}; and {} more",
                others[..SHOWN].join("; "),
                others.len() - SHOWN
            ));
        } else if !others.is_empty() {
            parts.push(others.join("; "));
        }
        parts.join("; ")
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

    /// Checks `instance`; on failure lists every error.
    pub fn check(&self, instance: &Value) -> Result<(), Violations> {
        if self.validator.is_valid(instance) {
            return Ok(());
        }
        let mut violations = Violations::default();
        for error in self.validator.iter_errors(instance) {
            let mut path = error.instance_path().as_str().to_owned();
            if let jsonschema::error::ValidationErrorKind::Required { property } = error.kind() {
                let name = property
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| property.to_string());
                path = format!("{path}/{}", escape_pointer(&name));
                violations.missing.push(dotted(&path));
            }
            let message = if self.masked {
                error.masked().to_string()
            } else {
                error.to_string()
            };
            violations.errors.push(FieldError { path, message });
        }
        // Document order, whatever order the validator's keywords ran in.
        violations.errors.sort_by(|a, b| a.path.cmp(&b.path));
        violations.missing.sort();
        Err(violations)
    }
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
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
