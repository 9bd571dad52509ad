//! Hygiene: the generated code reaches everything through `::arbv_provider::__private`, so a
//! provider compiles without the prelude and beside items that shadow the prelude's names.
#![no_implicit_prelude]
#![deny(warnings)]

use ::arbv_provider::{ActionError, Context, action, provider};

#[allow(dead_code, non_camel_case_types)]
mod shadows {
    pub struct Ok;
    pub struct Err;
    pub struct Some;
    pub struct None;
    pub struct Option;
    pub struct Result;
    pub struct Clone;
    pub struct Arc;
    pub struct Json;
    pub struct Call;
    pub struct Duration;
    pub mod core {}
}
#[allow(unused_imports)]
use shadows::*;

pub struct Hygienic;

#[provider]
impl Hygienic {
    #[action(timeout = "5s")]
    async fn echo(
        &self,
        payload: ::std::string::String,
        account: ::std::option::Option<::serde_json::Value>,
        ctx: &Context,
    ) -> ::std::result::Result<::serde_json::Value, ActionError> {
        let _ = (account, ctx);
        ::std::result::Result::Ok(::serde_json::Value::String(payload))
    }

    #[action]
    fn count(&self, payload: ::std::vec::Vec<u8>, _account: ::serde_json::Value) -> usize {
        payload.len()
    }
}

fn main() {
    let def = <Hygienic as ::arbv_provider::Provider>::definition();
    ::std::assert_eq!(def.actions().len(), 2);
}
