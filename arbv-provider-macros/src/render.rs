//! Quotes the model into the `Provider` impl. The generated code only wires: it registers one
//! handler per action on the runtime's `ProviderDef`; taking the input apart, validation and
//! responses are the runtime's work.
//!
//! Every path goes through `::arbv_provider::__private`, so the output compiles whatever the
//! user has imported (or not, under `#![no_implicit_prelude]`).

use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use arbv_provider_grammar::RateSpec;

use crate::limit::ActionLimit;
use crate::model::{ActionModel, Output, Param, ProviderModel};
use crate::value::{CacheKeyArg, RateLimitArg};

/// The `impl Provider` for the provider's type, in a `const _` block so that nothing it names
/// leaks into the user's module.
pub fn provider(model: &ProviderModel) -> TokenStream {
    let private = private();
    let self_ty = &model.self_ty;
    let name = &model.name;
    let actions = model.actions.iter().map(action);
    let attr_paths = &model.attr_paths;
    let default_limit = match &model.default_limit {
        Some(RateLimitArg::Rate(rate)) => {
            let monitor = in_process(Some(*rate), None, None);
            Some(quote!(def.rate_limit(#monitor);))
        }
        Some(RateLimitArg::Monitor(path)) => {
            let monitor = monitor_from(path);
            Some(quote!(def.rate_limit(#monitor);))
        }
        Some(RateLimitArg::None) | None => None,
    };
    let cache_backend = model
        .cache_backend
        .as_ref()
        .map(|path| quote_spanned!(path.span()=> def.cache_backend(#path());));
    // Without actions, a default limit or a backend `def` is never mutated; `mut` would warn.
    let mutability =
        (!model.actions.is_empty() || default_limit.is_some() || cache_backend.is_some())
            .then(|| quote!(mut));
    quote! {
        const _: () = {
            // The `#[action]` attributes are gone; naming their paths keeps the user's import
            // of `action` from being reported as unused.
            #(
                #[allow(unused_imports)]
                use #attr_paths as _;
            )*
            #[automatically_derived]
            impl #private::Provider for #self_ty {
                fn definition() -> #private::ProviderDef<Self> {
                    let #mutability def = #private::ProviderDef::new(#name);
                    #default_limit
                    #cache_backend
                    #(#actions)*
                    def
                }
            }
        };
    }
}

fn private() -> TokenStream {
    quote!(::arbv_provider::__private)
}

/// The core's in-process monitor for these settings, with every number a literal.
fn in_process(
    rate: Option<RateSpec>,
    burst: Option<u32>,
    min_delay: Option<std::time::Duration>,
) -> TokenStream {
    let private = private();
    let nanos = |d: std::time::Duration| {
        Literal::u64_suffixed(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    };
    let rate = match rate {
        Some(RateSpec { count, period }) => {
            let count = Literal::u32_suffixed(count);
            let period = nanos(period);
            quote!(#private::Some(#private::RateSpec::new(#count, #private::Duration::from_nanos(#period))))
        }
        None => quote!(#private::None),
    };
    let burst = match burst {
        Some(size) => {
            let size = Literal::u32_suffixed(size);
            quote!(#private::Some(#size))
        }
        None => quote!(#private::None),
    };
    let min_delay = match min_delay {
        Some(delay) => {
            let delay = nanos(delay);
            quote!(#private::Some(#private::Duration::from_nanos(#delay)))
        }
        None => quote!(#private::None),
    };
    quote!(#private::in_process_monitor(#rate, #burst, #min_delay))
}

/// `path()`, spanned at the path so that a function returning no monitor is reported there.
fn monitor_from(path: &syn::Path) -> TokenStream {
    quote_spanned!(path.span()=> #path())
}

/// `def.action(..)` (or `def.blocking_action(..)`) and the builder calls that describe it.
fn action(action: &ActionModel) -> TokenStream {
    let register = register(action);
    let declarations = declarations(action);
    quote!(#register #(#declarations)*;)
}

/// The handler: take the input apart, call the method, turn its value into a response.
fn register(action: &ActionModel) -> TokenStream {
    let private = private();
    let name = &action.name;
    let bindings = bindings(action);
    let value = call(action);
    // Converted here, with the argument at the return type's span: rustc reports a type that
    // is no response at that argument, so the error lands on the method's signature rather
    // than on `#[provider]`.
    //
    // The probe (`(&output).__arbv_response_kind()`) keeps what an error type of the user's own
    // says through `Transient`, so that `retry(..)` can act on it; written out here rather than
    // through the core's `__into_action_response!`, whose expansion would move the error's span
    // to `#[provider]`.
    let kind = quote! {{
        #[allow(unused_imports)]
        use #private::__probe::{AnyResponse as _, JsonValue as _, TransientResult as _};
        (&output).__arbv_response_kind()
    }};
    let respond = quote_spanned!(action.output_span=> #kind.into_response(output));
    let params = handler_params(action);
    if action.is_async {
        quote! {
            def.action(#name, |#params| async move {
                #(#bindings)*
                let output = #value;
                #private::Ok(#respond)
            })
        }
    } else {
        quote! {
            def.blocking_action(#name, |#params| {
                #(#bindings)*
                let output = #value;
                #private::Ok(#respond)
            })
        }
    }
}

/// Takes the input apart in a fixed order; bounds sit at the user's types so that a type that
/// cannot be deserialised is reported there.
fn bindings(action: &ActionModel) -> Vec<TokenStream> {
    let private = private();
    let mut bindings = Vec::new();
    if let Some(ty) = action.payload() {
        let take = quote_spanned!(ty.span()=> call.payload::<#ty>());
        bindings.push(quote!(let payload = #take?;));
    }
    if let Some((ty, optional)) = action.account() {
        let take = if optional {
            quote_spanned!(ty.span()=> call.account::<#private::Option<#ty>>())
        } else {
            quote_spanned!(ty.span()=> call.account::<#ty>())
        };
        bindings.push(quote!(let account = #take?;));
    }
    if action.takes_context() {
        bindings.push(quote!(let ctx = ::core::clone::Clone::clone(call.context());));
    }
    bindings
}

/// The method called with the bound parameters, awaited if async, wrapped as JSON if its value
/// is not a response already.
fn call(action: &ActionModel) -> TokenStream {
    let private = private();
    let method = &action.method;
    let args = action.params.iter().map(|param| match param {
        Param::Payload(_) => quote!(payload),
        Param::Account { .. } => quote!(account),
        Param::Context { by_ref: true } => quote!(&ctx),
        Param::Context { by_ref: false } => quote!(ctx),
    });
    let receiver = action.has_receiver.then(|| quote!(&this,));
    let mut value = quote!(Self::#method(#receiver #(#args),*));
    if action.is_async {
        value = quote!(#value.await);
    }
    if action.output == Output::Json {
        value = quote!(#private::Json(#value));
    }
    value
}

/// The closure's parameters, unused ones named `_x` and without an unneeded `mut`: warnings
/// from generated code would land in the user's crate.
fn handler_params(action: &ActionModel) -> TokenStream {
    let private = private();
    let this = if action.has_receiver {
        quote!(this)
    } else {
        quote!(_this)
    };
    let call = if action.payload().is_some() || action.account().is_some() {
        quote!(mut call)
    } else if action.takes_context() {
        quote!(call)
    } else {
        quote!(_call)
    };
    quote!(#this: #private::Arc<Self>, #call: #private::Call)
}

/// The builder calls that declare the action: description, input types, timeout, limit.
fn declarations(action: &ActionModel) -> Vec<TokenStream> {
    let mut builders = Vec::new();
    if !action.description.is_empty() {
        let description = &action.description;
        builders.push(quote!(.description(#description)));
    }
    if let Some(ty) = action.payload() {
        builders.push(quote_spanned!(ty.span()=> .payload::<#ty>()));
    }
    if let Some((ty, optional)) = action.account() {
        builders.push(if optional {
            quote_spanned!(ty.span()=> .optional_account::<#ty>())
        } else {
            quote_spanned!(ty.span()=> .account::<#ty>())
        });
    }
    if let Some(timeout) = action.timeout {
        let timeout = duration(timeout);
        builders.push(quote!(.timeout(#timeout)));
    }
    builders.extend(limit_declarations(action));
    builders.extend(cache_declaration(action));
    builders.extend(retry_declaration(action));
    builders
}

/// A duration as `Duration::from_nanos(<literal>)`. The grammar refuses anything longer than a
/// year, far below u64 nanoseconds.
fn duration(duration: std::time::Duration) -> TokenStream {
    let private = private();
    let nanos = Literal::u64_suffixed(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    quote!(#private::Duration::from_nanos(#nanos))
}

/// `.cache(CacheSpec::new(ttl)…)`.
fn cache_declaration(action: &ActionModel) -> Option<TokenStream> {
    let private = private();
    let cache = action.cache.as_ref()?;
    let ttl = duration(cache.ttl);
    let mut spec = quote!(#private::CacheSpec::new(#ttl));
    match action.cache_key.as_deref() {
        Some(CacheKeyArg::Paths(paths)) => {
            let paths = paths.iter().map(|(path, _)| path.as_str());
            spec = quote!(#spec.key_paths([#(#paths),*]));
        }
        Some(CacheKeyArg::Function(path)) => {
            let payload = action.payload()?;
            let key = quote_spanned!(path.span()=> |payload: &#payload| #path(payload));
            spec = quote!(#spec.key_fn(#key));
        }
        None => {}
    }
    if let Some(refresh) = &action.cache_refresh {
        let field = &refresh.0;
        spec = quote!(#spec.refresh_flag(#field));
    }
    if let Some(var) = &action.cache_ttl_env {
        let var = &var.0.0;
        spec = quote!(#spec.ttl_from_env(#var));
    }
    if let Some(mark) = &action.cache_mark {
        let field = &mark.0.0;
        spec = quote!(#spec.mark_hits(#field));
    }
    if cache.redis {
        // Spanned at the value: without the `redis` feature, rustc reports the missing function
        // there, with a note naming the feature.
        spec = quote_spanned!(cache.span()=> #private::cache_in_redis(#spec));
    }
    Some(quote!(.cache(#spec)))
}

/// `.retry(policy)` or `.retry_with_attempt_timeout(policy, timeout)`.
fn retry_declaration(action: &ActionModel) -> Option<TokenStream> {
    let private = private();
    let retry = action.retry.as_ref()?;
    let attempts = Literal::u32_suffixed(retry.attempts);
    let mut policy = quote!(#private::RetryPolicy::attempts(#attempts));
    if let Some(range) = retry.backoff {
        let (first, cap) = (duration(range.first), duration(range.cap));
        policy = quote!(#policy.backoff(#first, #cap));
    }
    Some(match retry.attempt_timeout {
        Some(timeout) => {
            let timeout = duration(timeout);
            quote!(.retry_with_attempt_timeout(#policy, #timeout))
        }
        None => quote!(.retry(#policy)),
    })
}

/// `.rate_limit(..)`, `.no_rate_limit()`, `.per(..)`, `.on_limit(..)`.
fn limit_declarations(action: &ActionModel) -> Vec<TokenStream> {
    let private = private();
    let mut builders = Vec::new();
    match &action.limit {
        ActionLimit::Inherit => {}
        ActionLimit::Off => builders.push(quote!(.no_rate_limit())),
        ActionLimit::InProcess {
            rate,
            burst,
            min_delay,
        } => {
            let monitor = in_process(*rate, *burst, *min_delay);
            builders.push(quote!(.rate_limit(#monitor)));
        }
        ActionLimit::Monitor(path) => {
            let monitor = monitor_from(path);
            builders.push(quote!(.rate_limit(#monitor)));
        }
    }
    if let Some(per) = &action.per {
        let text = per.0.as_str();
        builders.push(quote!(.per(#text)));
    }
    if action.waits_on_limit() {
        builders.push(quote!(.on_limit(#private::OnLimit::Wait)));
    }
    builders
}
