//! Errors collected over one expansion and reported together, each at its own tokens.
//!
//! The protocol, the same in every stage:
//! - an attribute's values are parsed by darling (`attr`, `value`), whose `darling::Result`
//!   gathers every bad key of one attribute, each at its value;
//! - every other stage takes `&mut Errors`, records each mistake as a `syn::Error` at the
//!   tokens it is about, and carries on with what it could read (`Option` for a part that
//!   cannot be used); small helpers that find one mistake return `syn::Result`;
//! - nothing returns a bare message, and nothing stops at the first error.
//!
//! `syn::Error` rather than darling's accumulator for the collection: `syn::Error::new_spanned`
//! keeps the first and the last token of what it points at, so rustc underlines all of
//! `&mut self`, not only `&`.

use std::fmt::Display;

use proc_macro2::TokenStream;
use quote::ToTokens;

/// Every error found so far.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    /// An error underlining all of `tokens`.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.0.push(syn::Error::new_spanned(tokens, message));
    }

    /// An error that already has its place (darling's, or one built at a `Span`).
    pub fn push(&mut self, error: impl Into<syn::Error>) {
        self.0.push(error.into());
    }

    /// The value, or `None` after recording the error.
    pub fn handle<T, E: Into<syn::Error>>(&mut self, result: Result<T, E>) -> Option<T> {
        result.map_err(|error| self.push(error)).ok()
    }

    /// One `compile_error!` per error; nothing when there are none.
    pub fn into_compile_errors(self) -> TokenStream {
        self.0.iter().map(syn::Error::to_compile_error).collect()
    }

    /// The messages, one per error, for tests.
    #[cfg(test)]
    pub fn messages(self) -> Vec<String> {
        self.0
            .into_iter()
            .flatten()
            .map(|e| e.to_string())
            .collect()
    }
}
