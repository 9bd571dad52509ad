//! The typed model between parsing and rendering: a provider and its actions, each parameter
//! classified by the role it plays.
//!
//! Building the model records every error it meets and keeps going; an action that cannot be
//! wired is left out of the model, so the rest of the provider still renders.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, Ident, ImplItem, ImplItemFn, ItemImpl, Lit,
    LitStr, Meta, Pat, PatType, Path, PathArguments, PathSegment, ReturnType, Signature, Type,
};

use darling::util::SpannedValue;

use crate::attr::{ActionArgs, ProviderArgs};
use crate::errors::Errors;
use crate::limit::{self, ActionLimit, LimitKeys};
use crate::value::{
    CacheArg, CacheKeyArg, CacheMark, CacheRefresh, CacheTtlEnv, OnLimit, Per, RateLimitArg,
    RetryArg,
};

/// A `#[provider]` impl block.
pub struct ProviderModel {
    /// The type the impl block is for.
    pub self_ty: Type,
    /// The provider's default name.
    pub name: String,
    /// The rate limit of actions that declare none.
    pub default_limit: Option<RateLimitArg>,
    /// `cache_backend = path`: `path()` is the backend of the actions' caches.
    pub cache_backend: Option<Path>,
    /// The actions, in declaration order.
    pub actions: Vec<ActionModel>,
    /// The paths the `#[action]` attributes were written with (`action`,
    /// `arbv_provider::action`), one of each. The attributes are removed before rustc resolves
    /// them, so the output names these paths to keep the user's `use ...::action` from looking
    /// unused.
    pub attr_paths: Vec<Path>,
}

/// One `#[action]` method.
pub struct ActionModel {
    /// The name the hub calls it by.
    pub name: String,
    /// Where the name comes from: the `name = "..."` string, else the method's name.
    pub name_span: Span,
    /// The method.
    pub method: Ident,
    /// For the manifest: the explicit description, else the doc comment.
    pub description: String,
    /// Its own execution timeout.
    pub timeout: Option<Duration>,
    /// What guards it.
    pub limit: ActionLimit,
    /// The field whose values have separate budgets.
    pub per: Option<SpannedValue<Per>>,
    /// What a task over the limit gets, as written.
    pub on_limit: Option<SpannedValue<OnLimit>>,
    /// How long `success` answers are kept, and where.
    pub cache: Option<SpannedValue<CacheArg>>,
    /// What makes two tasks identical for the cache.
    pub cache_key: Option<SpannedValue<CacheKeyArg>>,
    /// The payload flag that refreshes a kept answer.
    pub cache_refresh: Option<SpannedValue<CacheRefresh>>,
    /// The environment variable that replaces the cache's TTL at start.
    pub cache_ttl_env: Option<SpannedValue<CacheTtlEnv>>,
    /// The answer's field a hit sets to `true`.
    pub cache_mark: Option<SpannedValue<CacheMark>>,
    /// Runs again on transient errors.
    pub retry: Option<SpannedValue<RetryArg>>,
    /// Returns `()` (or has no return type): there is no answer to keep.
    pub returns_nothing: bool,
    /// An `async fn`; a plain `fn` runs on a thread of its own.
    pub is_async: bool,
    /// Takes `&self` (else it is called as `Self::method(..)`).
    pub has_receiver: bool,
    /// The parameters after the receiver, in declaration order.
    pub params: Vec<Param>,
    /// How its return value becomes a response.
    pub output: Output,
    /// The return type's place (the method's name when it has none), where a return type that
    /// is not a response is reported.
    pub output_span: Span,
}

/// What a parameter receives from the task.
pub enum Param {
    /// `payload: T`: the task's payload.
    Payload(Type),
    /// `account: A` or `account: Option<A>`: the task's account. `ty` is `A`.
    Account {
        /// The account type, without `Option`.
        ty: Type,
        /// Written as `Option<A>`: a task without an account is accepted.
        optional: bool,
    },
    /// `ctx: &Context` or `ctx: Context`.
    Context {
        /// Taken as `&Context`.
        by_ref: bool,
    },
}

/// How an action's return value becomes a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// `Result<..>` or `ActionResponse`: already a response.
    Response,
    /// Any other type: serialised as the data of a success.
    Json,
}

impl ProviderModel {
    /// Reads a `#[provider(args)]` impl block. `None` when the block cannot be a provider at
    /// all (a trait impl, a generic impl); the reason is in `errors`.
    pub fn from_impl(args: TokenStream, item: &ItemImpl, errors: &mut Errors) -> Option<Self> {
        let args = errors.handle(ProviderArgs::parse(args)).unwrap_or_default();
        let type_name = errors.handle(provider_type_name(item))?;
        let name = match args.name {
            Some(lit) if lit.value().is_empty() => {
                errors.spanned(&lit, "the provider's name cannot be empty");
                kebab_case(&type_name)
            }
            Some(lit) => lit.value(),
            None => kebab_case(&type_name),
        };
        let mut actions = Vec::new();
        let mut attr_paths: Vec<Path> = Vec::new();
        for impl_item in &item.items {
            let attrs = match impl_item {
                ImplItem::Fn(method) => {
                    actions.extend(ActionModel::from_method(
                        method,
                        args.rate_limit.as_ref(),
                        errors,
                    ));
                    &method.attrs[..]
                }
                other => item_attrs(other),
            };
            for attr in attrs.iter().filter(|a| is_action_attr(a)) {
                if !matches!(impl_item, ImplItem::Fn(_)) {
                    errors.spanned(attr, "`#[action]` goes on a method (`fn`)");
                }
                let text = attr.path().to_token_stream().to_string();
                if !attr_paths
                    .iter()
                    .any(|p| p.to_token_stream().to_string() == text)
                {
                    attr_paths.push(attr.path().clone());
                }
            }
        }
        Some(Self {
            self_ty: (*item.self_ty).clone(),
            name,
            default_limit: args.rate_limit,
            cache_backend: args.cache_backend,
            actions,
            attr_paths,
        })
    }
}

/// The name of the type the impl is for, if the impl can be a provider.
fn provider_type_name(item: &ItemImpl) -> syn::Result<String> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "`#[provider]` goes on an inherent impl block (`impl MyProvider { ... }`), \
             not on an impl of a trait",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "`#[provider]` does not support generic impl blocks: put it on an impl for one \
             concrete type",
        ));
    }
    last_segment(&item.self_ty)
        .map(|segment| segment.ident.unraw().to_string())
        .ok_or_else(|| {
            syn::Error::new_spanned(
                &item.self_ty,
                "`#[provider]` needs an impl block for a named type",
            )
        })
}

impl ActionModel {
    /// Reads a method; `None` when it has no `#[action]` or cannot be wired. Every mistake is
    /// recorded, in the order of the stages: the attribute, the signature, the name, the limit.
    fn from_method(
        method: &ImplItemFn,
        provider_limit: Option<&RateLimitArg>,
        errors: &mut Errors,
    ) -> Option<Self> {
        let attr = single_action_attr(method, errors)?;
        let args = errors
            .handle(ActionArgs::from_attr(attr))
            .unwrap_or_default();
        let sig = &method.sig;
        let inputs = Inputs::bind(sig, errors);
        let name = action_name(args.name.as_ref(), sig, errors);
        let keys = LimitKeys {
            rate_limit: args.rate_limit.as_ref(),
            burst: args.burst.as_ref(),
            min_delay: args.min_delay.as_ref(),
        };
        let limit = limit::resolve(keys, provider_limit, errors);
        let (
            Inputs {
                has_receiver,
                params,
            },
            (name, name_span),
        ) = (inputs?, name?);
        Some(Self {
            name,
            name_span,
            method: sig.ident.clone(),
            description: match &args.description {
                Some(lit) => lit.value(),
                None => doc_comment(&method.attrs),
            },
            timeout: args.timeout.map(|t| t.0),
            limit,
            per: args.per,
            on_limit: args.on_limit,
            cache: args.cache,
            cache_key: args.cache_key,
            cache_refresh: args.cache_refresh,
            cache_ttl_env: args.cache_ttl_env,
            cache_mark: args.cache_mark,
            retry: args.retry,
            returns_nothing: match &sig.output {
                ReturnType::Default => true,
                ReturnType::Type(_, ty) => {
                    matches!(ungroup(ty), Type::Tuple(tuple) if tuple.elems.is_empty())
                }
            },
            is_async: sig.asyncness.is_some(),
            has_receiver,
            params,
            output: Output::of(&sig.output),
            output_span: match &sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => sig.ident.span(),
            },
        })
    }

    /// True with `on_limit = "wait"`.
    pub fn waits_on_limit(&self) -> bool {
        self.on_limit.is_some_and(|o| *o == OnLimit::Wait)
    }

    /// True when the action takes a parameter of this role.
    pub fn takes(&self, role: Role) -> bool {
        self.params.iter().any(|p| p.role() == role)
    }

    /// The payload type, if the action takes one.
    pub fn payload(&self) -> Option<&Type> {
        self.params.iter().find_map(|p| match p {
            Param::Payload(ty) => Some(ty),
            _ => None,
        })
    }

    /// The account type and whether it is optional, if the action takes one.
    pub fn account(&self) -> Option<(&Type, bool)> {
        self.params.iter().find_map(|p| match p {
            Param::Account { ty, optional } => Some((ty, *optional)),
            _ => None,
        })
    }

    /// True when the action takes a context.
    pub fn takes_context(&self) -> bool {
        self.params
            .iter()
            .any(|p| matches!(p, Param::Context { .. }))
    }
}

/// The method's `#[action]` attribute, if it has one; a second one is an error.
fn single_action_attr<'a>(method: &'a ImplItemFn, errors: &mut Errors) -> Option<&'a Attribute> {
    let mut attrs = method.attrs.iter().filter(|a| is_action_attr(a));
    let attr = attrs.next()?;
    for again in attrs {
        errors.spanned(again, "`#[action]` is given twice: keep one");
    }
    Some(attr)
}

/// The name the hub calls the action by, and where it is written: `name = "..."`, else the
/// method's name.
fn action_name(
    explicit: Option<&LitStr>,
    sig: &Signature,
    errors: &mut Errors,
) -> Option<(String, Span)> {
    match explicit {
        Some(lit) if lit.value().is_empty() => {
            errors.spanned(lit, "an action's name cannot be empty");
            None
        }
        Some(lit) => Some((lit.value(), lit.span())),
        None => Some((sig.ident.unraw().to_string(), sig.ident.span())),
    }
}

/// What a method's signature takes: a receiver or none, and each parameter by its role.
struct Inputs {
    has_receiver: bool,
    params: Vec<Param>,
}

impl Inputs {
    /// Binds every input; `None` when one cannot be wired (each such input is recorded).
    fn bind(sig: &Signature, errors: &mut Errors) -> Option<Self> {
        let mut wireable = true;
        let mut reject = |error: syn::Error| {
            errors.push(error);
            wireable = false;
        };
        if let Some(unsafety) = &sig.unsafety {
            reject(syn::Error::new_spanned(
                unsafety,
                "an action cannot be an `unsafe fn`",
            ));
        }
        if !sig.generics.params.is_empty() {
            reject(syn::Error::new_spanned(
                &sig.generics.params,
                "an action cannot be generic: the macro must know every type",
            ));
        }
        let mut inputs = Inputs {
            has_receiver: false,
            params: Vec::new(),
        };
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(receiver)
                    if receiver.reference.is_some()
                        && receiver.mutability.is_none()
                        && receiver.colon_token.is_none() =>
                {
                    inputs.has_receiver = true;
                }
                FnArg::Receiver(receiver) => reject(syn::Error::new_spanned(
                    receiver,
                    "an action takes `&self` (or no receiver): the provider is shared by tasks \
                     running at once",
                )),
                FnArg::Typed(arg) => match Param::bind(arg) {
                    Ok(param) if inputs.params.iter().any(|p| p.role() == param.role()) => {
                        reject(syn::Error::new_spanned(
                            arg,
                            format!("this action already takes {}", param.role()),
                        ));
                    }
                    Ok(param) => inputs.params.push(param),
                    Err(error) => reject(error),
                },
            }
        }
        wireable.then_some(inputs)
    }
}

/// The role of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `payload: T`.
    Payload,
    /// `account: A`.
    Account,
    /// `ctx: &Context`.
    Context,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Payload => "a `payload`",
            Role::Account => "an `account`",
            Role::Context => "a `Context`",
        })
    }
}

impl Param {
    /// Classifies a parameter by its name (`payload`, `account`) or type (`Context`).
    fn bind(arg: &PatType) -> syn::Result<Self> {
        let name = match &*arg.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {
                Some(pat.ident.unraw().to_string())
            }
            _ => None,
        };
        match name.as_deref() {
            Some("payload" | "_payload") => owned(&arg.ty, "payload").map(Param::Payload),
            Some("account" | "_account") => {
                let (ty, optional) = match option_inner(&arg.ty) {
                    Some(inner) => (inner, true),
                    None => (&*arg.ty, false),
                };
                owned(ty, "account").map(|ty| Param::Account { ty, optional })
            }
            _ => match context_by_ref(&arg.ty) {
                Some(by_ref) => Ok(Param::Context { by_ref }),
                None => Err(syn::Error::new_spanned(
                    arg,
                    format!(
                        "cannot bind parameter `{}`: name it `payload` or `account`, or give it \
                         the type `&Context`",
                        arg.pat.to_token_stream()
                    ),
                )),
            },
        }
    }

    fn role(&self) -> Role {
        match self {
            Param::Payload(_) => Role::Payload,
            Param::Account { .. } => Role::Account,
            Param::Context { .. } => Role::Context,
        }
    }
}

/// Payload and account are deserialised from the task into values the action owns.
fn owned(ty: &Type, role: &str) -> syn::Result<Type> {
    match ungroup(ty) {
        Type::Reference(reference) => {
            let elem = reference.elem.to_token_stream().to_string();
            let owned = if elem == "str" {
                "String".to_owned()
            } else {
                elem
            };
            Err(syn::Error::new_spanned(
                ty,
                format!(
                    "`{role}` is deserialised from the task, so the action owns it: take \
                     `{owned}`, not a reference"
                ),
            ))
        }
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            format!("`{role}` needs a named type to deserialise into, not `impl Trait`"),
        )),
        _ => Ok(ty.clone()),
    }
}

impl Output {
    fn of(output: &ReturnType) -> Self {
        match output {
            ReturnType::Type(_, ty)
                if last_segment(ty)
                    .is_some_and(|s| s.ident == "Result" || s.ident == "ActionResponse") =>
            {
                Output::Response
            }
            _ => Output::Json,
        }
    }
}

/// True for `#[action]`, `#[arbv_provider::action]` and the like.
pub fn is_action_attr(attr: &Attribute) -> bool {
    let path = attr.path();
    path.is_ident("action")
        || (path.segments.len() > 1
            && path.segments[0].ident == "arbv_provider"
            && path.segments.last().is_some_and(|s| s.ident == "action"))
}

/// The attributes of an impl item that is not a method.
fn item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(c) => &c.attrs,
        ImplItem::Type(t) => &t.attrs,
        ImplItem::Macro(m) => &m.attrs,
        _ => &[],
    }
}

/// The doc comment as one text: a leading space dropped from each line, lines joined with
/// `\n`, blank lines at the ends trimmed.
fn doc_comment(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let Meta::NameValue(meta) = &attr.meta
            && let Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) = &meta.value
        {
            for line in text.value().split('\n') {
                lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
            }
        }
    }
    lines.join("\n").trim().to_owned()
}

/// `AdsProvider` → `ads-provider`, `HTTPGateway` → `http-gateway`, `My_Thing` → `my-thing`.
pub fn kebab_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c == '_' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 && !out.ends_with('-') {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                out.push('-');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Types that come through `macro_rules!` may be wrapped in invisible groups.
fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => ungroup(&group.elem),
        Type::Paren(paren) => ungroup(&paren.elem),
        _ => ty,
    }
}

fn last_segment(ty: &Type) -> Option<&PathSegment> {
    match ungroup(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

/// `A` of `Option<A>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty).filter(|s| s.ident == "Option")?;
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first() {
        Some(GenericArgument::Type(inner)) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// `Some(true)` for `&Context`, `Some(false)` for `Context`, matched by the last path segment.
fn context_by_ref(ty: &Type) -> Option<bool> {
    let is_context =
        |ty: &Type| last_segment(ty).is_some_and(|s| s.ident == "Context" && s.arguments.is_none());
    match ungroup(ty) {
        Type::Reference(reference) if reference.mutability.is_none() => {
            is_context(&reference.elem).then_some(true)
        }
        ty => is_context(ty).then_some(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::{ToTokens, quote};
    use syn::parse_quote;

    /// The model (if any) and every error message.
    fn read(args: TokenStream, item: ItemImpl) -> (Option<ProviderModel>, Vec<String>) {
        let mut errors = Errors::default();
        let def = ProviderModel::from_impl(args, &item, &mut errors);
        (def, errors.messages())
    }

    fn read_ok(args: TokenStream, item: ItemImpl) -> ProviderModel {
        let (def, errors) = read(args, item);
        assert!(errors.is_empty(), "{errors:?}");
        def.unwrap()
    }

    fn tokens(ty: &Type) -> String {
        ty.to_token_stream().to_string()
    }

    #[test]
    fn provider_name_and_actions() {
        let def = read_ok(
            quote!(),
            parse_quote! {
                impl AdsProvider {
                    /// Echo back
                    ///  the message.
                    ///
                    #[action]
                    async fn echo(&self, payload: Echo) -> Result<Value, ActionError> { todo!() }

                    #[action(name = "get_insights", description = "explicit", timeout = "30s")]
                    async fn insights(&self, ctx: &Context, account: FbAccount, payload: Range)
                        -> ActionResponse { todo!() }

                    fn helper(&self) {}
                }
            },
        );
        assert_eq!(def.name, "ads-provider");
        assert_eq!(tokens(&def.self_ty), "AdsProvider");
        assert_eq!(def.actions.len(), 2);

        let echo = &def.actions[0];
        assert_eq!(echo.name, "echo");
        assert_eq!(echo.description, "Echo back\n the message.");
        assert!(echo.is_async && echo.has_receiver);
        assert_eq!(tokens(echo.payload().unwrap()), "Echo");
        assert!(echo.account().is_none() && !echo.takes_context());
        assert_eq!(echo.output, Output::Response);
        assert_eq!(echo.timeout, None);

        let insights = &def.actions[1];
        assert_eq!(insights.name, "get_insights");
        assert_eq!(insights.method, "insights");
        assert_eq!(insights.description, "explicit");
        assert_eq!(insights.timeout, Some(Duration::from_secs(30)));
        assert!(matches!(
            insights.params[0],
            Param::Context { by_ref: true }
        ));
        assert!(matches!(
            insights.params[1],
            Param::Account {
                optional: false,
                ..
            }
        ));
        assert!(matches!(insights.params[2], Param::Payload(_)));
        assert_eq!(insights.output, Output::Response);
    }

    #[test]
    fn parameter_forms_and_outputs() {
        let def = read_ok(
            quote!(name = "x"),
            parse_quote! {
                impl X {
                    #[action]
                    fn ping(&self) -> &'static str { "pong" }
                    #[action]
                    async fn maybe(&self, _account: Option<Acc>, ctx: arbv_provider::Context) {}
                    #[arbv_provider::action]
                    fn r#static(_payload: P) -> Value { todo!() }
                }
            },
        );
        assert_eq!(def.name, "x");
        let [ping, maybe, stat] = &def.actions[..] else {
            panic!("three actions")
        };
        assert!(!ping.is_async && ping.params.is_empty());
        assert_eq!(ping.output, Output::Json);

        let (account, optional) = maybe.account().unwrap();
        assert_eq!((tokens(account).as_str(), optional), ("Acc", true));
        assert!(matches!(maybe.params[1], Param::Context { by_ref: false }));
        assert_eq!(maybe.output, Output::Json);

        assert_eq!(stat.name, "static");
        let paths: Vec<String> = def
            .attr_paths
            .iter()
            .map(|p| p.to_token_stream().to_string())
            .collect();
        assert_eq!(paths, ["action", "arbv_provider :: action"]);
        assert!(!stat.has_receiver);
        assert!(stat.payload().is_some());
    }

    #[test]
    fn every_error_is_reported_and_good_actions_are_kept() {
        let (def, errors) = read(
            quote!(),
            parse_quote! {
                impl X {
                    #[action]
                    fn id(&self, id: u64) {}
                    #[action]
                    fn pair(&self, (a, b): (u8, u8)) {}
                    #[action]
                    fn mutable(&mut self) {}
                    #[action]
                    fn twice(&self, payload: A, _payload: B) {}
                    #[action]
                    fn borrowed(&self, payload: &str) {}
                    #[action]
                    fn generic<T>(&self) {}
                    #[action(name = "")]
                    fn empty(&self) {}
                    #[action]
                    const C: u8 = 1;
                    #[action]
                    fn fine(&self) {}
                }
            },
        );
        assert_eq!(
            errors,
            [
                "cannot bind parameter `id`: name it `payload` or `account`, or give it the type `&Context`",
                "cannot bind parameter `(a , b)`: name it `payload` or `account`, or give it the type `&Context`",
                "an action takes `&self` (or no receiver): the provider is shared by tasks running at once",
                "this action already takes a `payload`",
                "`payload` is deserialised from the task, so the action owns it: take `String`, not a reference",
                "an action cannot be generic: the macro must know every type",
                "an action's name cannot be empty",
                "`#[action]` goes on a method (`fn`)",
            ]
        );
        let names: Vec<_> = def
            .unwrap()
            .actions
            .iter()
            .map(|a| a.name.clone())
            .collect();
        assert_eq!(names, ["fine"]);
    }

    #[test]
    fn impls_that_cannot_be_providers() {
        let (def, errors) = read(quote!(), parse_quote!(impl Trait for X {}));
        assert!(def.is_none());
        assert!(
            errors[0].contains("not on an impl of a trait"),
            "{errors:?}"
        );
        let (def, errors) = read(
            quote!(),
            parse_quote!(
                impl<T> X<T> {}
            ),
        );
        assert!(def.is_none());
        assert!(errors[0].contains("generic impl blocks"), "{errors:?}");
    }

    #[test]
    fn bad_provider_args_fall_back_to_defaults() {
        let (def, errors) = read(quote!(nam = "x"), parse_quote!(impl MyThing {}));
        assert_eq!(def.unwrap().name, "my-thing");
        assert_eq!(
            errors,
            [
                "unknown key `nam` in `#[provider(...)]`. Did you mean `name`? \
                 Allowed keys: `name`, `rate_limit`, `cache_backend`"
            ]
        );
    }

    #[test]
    fn kebab() {
        for (from, to) in [
            ("AdsProvider", "ads-provider"),
            ("Ads", "ads"),
            ("HTTPGateway", "http-gateway"),
            ("V2Provider", "v2-provider"),
            ("My_Thing", "my-thing"),
            ("lower", "lower"),
        ] {
            assert_eq!(kebab_case(from), to);
        }
    }

    #[test]
    fn doc_comments() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = " First line."]),
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = "   indented  "]),
            parse_quote!(#[doc = include_str!("x")]),
            parse_quote!(#[inline]),
        ];
        assert_eq!(doc_comment(&attrs), "First line.\n\n  indented");
    }
}
