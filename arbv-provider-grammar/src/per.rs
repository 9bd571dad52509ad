//! Per-field paths: `per = "account.ad_account_id"`, `per = "payload.user.id"`.

use std::fmt;

/// Which part of a task a [`PerPath`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PerSource {
    /// The task's payload.
    Payload,
    /// The task's account.
    Account,
}

/// A field of the payload or the account, written `account.<field>[.<field>…]` or
/// `payload.<field>[.<field>…]`.
///
/// ```
/// use arbv_provider_grammar::{PerPath, PerSource};
/// let path = PerPath::parse("payload.user.id").unwrap();
/// assert_eq!(path.source(), PerSource::Payload);
/// assert_eq!(path.fields(), ["user", "id"]);
/// assert!(PerPath::parse("headers.x").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerPath {
    source: PerSource,
    fields: Vec<String>,
    text: String,
}

/// Why a text is not a per-field path; holds the text as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerPathError(pub String);

impl fmt::Display for PerPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a field path: write \"account.<field>\" or \"payload.<field>\", e.g. \"account.ad_account_id\"",
            self.0
        )
    }
}

impl std::error::Error for PerPathError {}

impl PerPath {
    /// Parses `account.<field>[.<field>…]` or `payload.<field>[.<field>…]`: no empty field,
    /// no spaces around the dots (a field's name is taken as written).
    pub fn parse(text: &str) -> Result<Self, PerPathError> {
        let error = || PerPathError(text.to_owned());
        let (source, rest) = text.split_once('.').ok_or_else(error)?;
        let source = match source {
            "account" => PerSource::Account,
            "payload" => PerSource::Payload,
            _ => return Err(error()),
        };
        let fields: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if fields.iter().any(String::is_empty) {
            return Err(error());
        }
        Ok(Self {
            source,
            fields,
            text: text.to_owned(),
        })
    }

    /// The part of the task the path reads.
    pub fn source(&self) -> PerSource {
        self.source
    }

    /// The field names after the source, outermost first.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for PerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
