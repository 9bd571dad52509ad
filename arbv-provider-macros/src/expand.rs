//! The two macros as plain `proc_macro2` functions: parse → check → render.
//!
//! Both always give back the user's item (minus our attributes) beside any errors, so that one
//! mistake does not turn into a cascade of "cannot find method" errors.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{ImplItem, Item};

use crate::errors::Errors;
use crate::model::{ProviderModel, is_action_attr};
use crate::{check, render};

/// `#[provider(args)] item`: the impl block as written minus `#[action]` attributes, then the
/// `Provider` impl, then every error found.
pub fn provider(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item_impl = match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Impl(item_impl)) => item_impl,
        Ok(other) => return with_error(item, not_an_impl(&other)),
        Err(error) => return with_error(item, error),
    };
    let mut errors = Errors::default();
    let generated = ProviderModel::from_impl(args, &item_impl, &mut errors).map(|model| {
        check::check(&model, &mut errors);
        render::provider(&model)
    });
    strip_action_attrs(&mut item_impl);
    let errors = errors.into_compile_errors();
    quote!(#item_impl #generated #errors)
}

/// `#[action]` on its own: `#[provider]` removes the attribute from the methods it reads, so
/// this only runs when the attribute is somewhere else.
pub fn action(_args: TokenStream, item: TokenStream) -> TokenStream {
    with_error(
        item,
        syn::Error::new(
            Span::call_site(),
            "`#[action]` only works on a method inside an `impl` block marked `#[provider]`",
        ),
    )
}

fn with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#item #error)
}

/// The error for `#[provider]` on an item that is not an impl block, at the item's keyword
/// and name rather than its whole body.
fn not_an_impl(item: &Item) -> syn::Error {
    let type_def = match item {
        Item::Struct(s) => Some((s.struct_token.to_token_stream(), &s.ident)),
        Item::Enum(e) => Some((e.enum_token.to_token_stream(), &e.ident)),
        _ => None,
    };
    if let Some((token, ident)) = type_def {
        return syn::Error::new_spanned(
            quote!(#token #ident),
            format!(
                "`#[provider]` goes on the type's `impl` block, not on its definition: \
                 `#[provider] impl {ident} {{ #[action] async fn ... }}`"
            ),
        );
    }
    let head = match item {
        Item::Fn(f) => {
            let (token, ident) = (&f.sig.fn_token, &f.sig.ident);
            quote!(#token #ident)
        }
        Item::Trait(t) => {
            let (token, ident) = (&t.trait_token, &t.ident);
            quote!(#token #ident)
        }
        Item::Mod(m) => {
            let (token, ident) = (&m.mod_token, &m.ident);
            quote!(#token #ident)
        }
        other => other.to_token_stream(),
    };
    syn::Error::new_spanned(
        head,
        "`#[provider]` goes on an `impl` block whose methods carry `#[action]`: \
         `#[provider] impl MyProvider { #[action] async fn ... }`",
    )
}

fn strip_action_attrs(item: &mut syn::ItemImpl) {
    for impl_item in &mut item.items {
        let attrs = match impl_item {
            ImplItem::Fn(f) => &mut f.attrs,
            ImplItem::Const(c) => &mut c.attrs,
            ImplItem::Type(t) => &mut t.attrs,
            ImplItem::Macro(m) => &mut m.attrs,
            _ => continue,
        };
        attrs.retain(|attr| !is_action_attr(attr));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::{env, fs};

    use super::*;

    fn pretty(tokens: TokenStream) -> String {
        prettyplease::unparse(&syn::parse2(tokens).expect("the expansion is a valid file"))
    }

    /// A line diff (longest common subsequence), enough to see what moved in a snapshot.
    fn diff(expected: &str, actual: &str) -> String {
        let (a, b): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
        let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j, mut out) = (0, 0, String::new());
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                (i, j) = (i + 1, j + 1);
            } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
                out += &format!("{:>4} - {}\n", i + 1, a[i]);
                i += 1;
            } else {
                out += &format!("{:>4} + {}\n", j + 1, b[j]);
                j += 1;
            }
        }
        out
    }

    /// Compares with a checked-in file; `UPDATE_SNAPSHOTS=1` writes it instead.
    fn assert_snapshot(name: &str, actual: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(format!("{name}.expanded.rs"));
        if env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, actual).unwrap();
            return;
        }
        let expected = fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; run with UPDATE_SNAPSHOTS=1",
                path.display()
            )
        });
        if expected != actual {
            panic!(
                "the expansion differs from {} (- snapshot, + now); if the change is intended, \
                 run with UPDATE_SNAPSHOTS=1\n{}",
                path.display(),
                diff(&expected, actual)
            );
        }
    }

    /// Every form the macro knows, on a made-up `Ads` impl.
    #[test]
    fn all_forms_expansion() {
        let expanded = provider(
            quote!(
                name = "ads-provider",
                rate_limit = "5/s",
                cache_backend = ads_cache
            ),
            quote! {
                impl Ads {
                    /// Echo back the message.
                    #[action]
                    async fn echo(&self, payload: Echo) -> Result<Value, ActionError> {
                        Ok(json!({ "echo": payload.message }))
                    }

                    /// Insights for one ad account.
                    #[action(
                        name = "get_insights",
                        timeout = "1.5s",
                        rate_limit = "200/h",
                        burst = 20,
                        per = "account.ad_account_id",
                        on_limit = "wait"
                    )]
                    pub async fn insights(
                        &self,
                        ctx: &Context,
                        payload: Range,
                        account: FbAccount,
                    ) -> Result<Insights, ActionError> {
                        self.fetch(ctx, payload, account).await
                    }

                    #[action]
                    async fn maybe(&self, account: Option<Acc>, ctx: Context) -> ActionResponse {
                        ActionResponse::success(account.is_some())
                    }

                    #[action(description = "Answers pong.", rate_limit = none)]
                    fn ping(&self) -> &'static str {
                        "pong"
                    }

                    #[action(min_delay = "250ms")]
                    fn version() {}

                    #[action(rate_limit = shared_budget)]
                    async fn shared(&self) {}

                    #[action(
                        cache = redis("10m"),
                        cache_key = ["payload.city", "account.api_key"],
                        cache_refresh = "refresh",
                        retry(attempts = 3, backoff = "200ms..5s", attempt_timeout = "2s")
                    )]
                    async fn weather(&self, payload: City, account: Key) -> Result<Value, ApiError> {
                        self.fetch(payload, account).await
                    }

                    #[action(cache = "1h", cache_key = city_key, retry(attempts = 2))]
                    fn by_function(&self, payload: City) -> Value {
                        json!(payload.city)
                    }

                    fn helper(&self) {}
                }
            },
        );
        assert_snapshot("all_forms", &pretty(expanded));
    }

    /// `examples/basic` as written: its `#[provider]` impl, read from its source.
    #[test]
    fn basic_example_expansion() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/basic/src/lib.rs");
        let source = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file = syn::parse_file(&source).expect("examples/basic parses");
        let mut impls = file.items.into_iter().filter_map(|item| match item {
            Item::Impl(mut item_impl) => {
                let at = item_impl
                    .attrs
                    .iter()
                    .position(|a| a.path().is_ident("provider"))?;
                let attr = item_impl.attrs.remove(at);
                let args = match attr.meta {
                    syn::Meta::List(list) => list.tokens,
                    _ => TokenStream::new(),
                };
                Some((args, item_impl))
            }
            _ => None,
        });
        let (args, item_impl) = impls.next().expect("examples/basic has a #[provider] impl");
        assert!(
            impls.next().is_none(),
            "examples/basic has one #[provider] impl"
        );
        let expanded = provider(args, item_impl.into_token_stream());
        assert_snapshot("basic", &pretty(expanded));
    }

    #[test]
    fn errors_come_with_the_impl_and_the_good_actions() {
        let expanded = provider(
            quote!(),
            quote! {
                impl Ads {
                    #[action(nme = "x")]
                    fn a(&self, id: u64) {}
                    #[action]
                    fn b(&self) {}
                    #[action]
                    fn b2(&self, x: u8) {}
                }
            },
        )
        .to_string();
        assert_eq!(expanded.matches("compile_error").count(), 3, "{expanded}");
        assert!(expanded.contains("fn a (& self , id : u64)"), "{expanded}");
        assert!(!expanded.contains("# [action"), "{expanded}");
        assert!(expanded.contains("blocking_action (\"b\""), "{expanded}");
        assert!(!expanded.contains("\"a\""), "{expanded}");
    }

    #[test]
    fn provider_on_something_else() {
        let expanded = provider(
            quote!(),
            quote!(
                struct Ads;
            ),
        )
        .to_string();
        assert!(expanded.starts_with("struct Ads ;"), "{expanded}");
        assert!(expanded.contains("`#[provider]` goes on the type's `impl` block"));
    }

    #[test]
    fn action_alone_is_an_error() {
        let expanded = action(
            quote!(),
            quote!(
                fn a(&self) {}
            ),
        )
        .to_string();
        assert!(expanded.starts_with("fn a (& self) { }"), "{expanded}");
        assert!(expanded.contains("only works on a method inside an `impl` block marked"));
    }

    #[test]
    fn diff_shows_changed_lines() {
        assert_eq!(diff("a\nb\nc", "a\nx\nc"), "   2 - b\n   2 + x\n");
    }
}
