//! The `#[provider]` and `#[action]` attributes of `arbv-provider`. Use them through that crate
//! (`use arbv_provider::prelude::*;`): the code they generate names it.
//!
//! The work is plain `proc_macro2` code, one stage per module: `attr` parses the attribute
//! arguments (each key's value a type of `value`, checked in the runtime's grammar), `model`
//! reads the impl block into a typed model (`limit` resolves the rate-limit keys on the way),
//! `check` runs the checks across keys and actions, and `render` quotes the output; `expand`
//! strings them together, and `errors` collects what goes wrong on the way.

mod attr;
mod check;
mod errors;
mod expand;
mod limit;
mod model;
mod render;
mod value;

use proc_macro::TokenStream;

/// Turns an `impl` block into a provider: each method marked `#[action]` becomes an action the
/// hub can call by name.
///
/// ```ignore
/// #[provider(name = "ads-provider")] // the name defaults to the type's, in kebab-case
/// impl Ads {
///     /// Echo back the message.      (the doc comment is the action's description)
///     #[action]
///     async fn echo(&self, payload: Echo) -> Result<Value, ActionError> { ... }
/// }
/// ```
///
/// An action's parameters are bound by role, in any order, each optional: `payload: T`
/// (`T: Deserialize + JsonSchema`), `account: A` or `account: Option<A>`, and `ctx: &Context`.
/// It returns any `T: Serialize`, a `Result<T, E>` with `E: Into<ActionError>`, or an
/// `ActionResponse`. A plain `fn` runs on a thread of its own.
#[proc_macro_attribute]
pub fn provider(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::provider(args.into(), item.into()).into()
}

/// Marks a method of a `#[provider]` impl block as an action. Keys, all optional:
/// `name = "..."` (default: the method's name), `description = "..."` (default: the doc
/// comment), `timeout = "30s"` (also `"500ms"`, `"1.5s"`, `"1m"`, `"2h"`).
#[proc_macro_attribute]
pub fn action(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::action(args.into(), item.into()).into()
}
