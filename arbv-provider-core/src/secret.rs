//! The hub token, kept out of every log line, `Debug` output and error message.

use std::fmt;

use subtle::ConstantTimeEq;

/// The provider's hub token. It has no `Display`, and its `Debug` prints `AuthToken(***)`,
/// so it cannot end up in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the one place that needs it: the request to the hub.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when `given` is this token, compared in time that does not depend on where the two
    /// differ (only the length can be told apart), for a hub checking a client's token.
    pub fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }

    /// True when the token is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(***)")
    }
}

impl From<&str> for AuthToken {
    fn from(token: &str) -> Self {
        Self::new(token)
    }
}

impl From<String> for AuthToken {
    fn from(token: String) -> Self {
        Self::new(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let token = AuthToken::new("super-secret-value");
        assert_eq!(format!("{token:?}"), "AuthToken(***)");
        assert_eq!(format!("{token:#?}"), "AuthToken(***)");
        assert_eq!(token.expose(), "super-secret-value");
    }

    #[test]
    fn matches_only_the_same_token() {
        let token = AuthToken::new("secret-token");
        assert!(token.matches("secret-token"));
        for wrong in [
            "",
            "secret",
            "secret-token2",
            "secret-tokeN",
            " secret-token",
        ] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        let empty = AuthToken::new("");
        assert!(empty.matches(""));
        assert!(!empty.matches("x"));
    }
}
