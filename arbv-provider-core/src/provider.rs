//! The provider trait and the action table it describes. `#[provider]` implements the trait;
//! it can also be implemented by hand, as the examples below show.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cache::CacheBackend;
use crate::context::Context;
use crate::rate_limit::{IntoMonitor, RateLimitMonitor};
use crate::response::{ActionResponse, IntoActionResponse};
use crate::retry::RetryPolicy;
use crate::validation::schema_of;

/// A provider: a set of actions the hub can call by name.
///
/// `#[provider]` writes this impl; by hand it looks like this:
///
/// ```
/// use arbv_provider_core::{Provider, ProviderDef};
/// use serde_json::{json, Value};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Echo { message: String }
///
/// struct Demo;
///
/// impl Provider for Demo {
///     fn definition() -> ProviderDef<Self> {
///         let mut def = ProviderDef::new("demo");
///         def.action("echo", |_this, mut call| async move {
///             let payload: Echo = call.payload()?;
///             Ok(Ok::<_, arbv_provider_core::ActionError>(json!({"echo": payload.message})))
///         })
///         .description("Echo back the message.")
///         .payload::<Echo>();
///         def
///     }
/// }
/// assert_eq!(Demo::definition().actions()[0].spec().name, "echo");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a provider",
    note = "put `#[provider]` on an `impl {Self}` block whose methods carry `#[action]`"
)]
pub trait Provider: Send + Sync + Sized + 'static {
    /// The provider's default name and its actions. Called at start-up.
    fn definition() -> ProviderDef<Self>;

    /// JSON describing the provider: its name and, for each action, its name, description,
    /// payload and account schemas and timeout. Needs no hub.
    fn manifest() -> Value {
        Self::definition().manifest()
    }
}

/// What the runtime knows of an action before it runs it.
#[derive(Clone, Debug)]
pub struct ActionSpec {
    /// The name the hub calls it by.
    pub name: Cow<'static, str>,
    /// What it does, for a person (the manifest shows it).
    pub description: Cow<'static, str>,
    /// The JSON Schema its payload must satisfy, if it takes one.
    pub payload_schema: Option<Value>,
    /// The JSON Schema of its account, if it takes one.
    pub account_schema: Option<Value>,
    /// True when a task without an account is refused.
    pub account_required: bool,
    /// Its own execution timeout (else the provider's).
    pub timeout: Option<Duration>,
    /// Its rate limit: its own, none, or the provider's default.
    pub rate_limit: LimitSetting,
    /// Which budget a task spends (`account.ad_account_id`), if not the monitor's one budget.
    pub per: Option<Cow<'static, str>>,
    /// What a limited task gets.
    pub on_limit: OnLimit,
    /// How its `success` answers are kept and reused, if they are.
    pub cache: Option<CacheSpec>,
    /// How often it runs again when it fails with a transient error, if it does.
    pub retry: Option<RetrySpec>,
}

/// How an action's `success` answers are cached (`#[action(cache = "10m")]`): an identical task
/// within `ttl` gets the kept answer without running the action.
#[derive(Clone, Debug)]
pub struct CacheSpec {
    /// How long an answer is kept.
    pub ttl: Duration,
    /// Where answers are kept.
    pub store: CacheStore,
    /// What makes two tasks identical.
    pub key: CacheKey,
    /// A boolean payload field that, when `true`, makes the task skip the kept answer, run the
    /// action and keep its answer instead (the hub's way to refresh an entry). Left out of the
    /// key.
    pub refresh: Option<Cow<'static, str>>,
    /// An environment variable that, when set, replaces `ttl` at start (seconds, or a duration
    /// with its unit: `300`, `5m`), so that operators tune it without a rebuild.
    pub ttl_env: Option<Cow<'static, str>>,
    /// A top-level field of the answer set to `true` in the answers a hit gives (the action
    /// returns it `false`), for a hub that reads the mark in the answer itself.
    pub hit_mark: Option<Cow<'static, str>>,
}

impl CacheSpec {
    /// Kept for `ttl` in the provider's cache backend, keyed by the whole input.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            store: CacheStore::Provider,
            key: CacheKey::Input,
            refresh: None,
            ttl_env: None,
            hit_mark: None,
        }
    }

    /// The TTL is read at start from the environment variable `var` when it is set.
    pub fn ttl_from_env(mut self, var: impl Into<Cow<'static, str>>) -> Self {
        self.ttl_env = Some(var.into());
        self
    }

    /// Hits set the answer's top-level `field` to `true`.
    pub fn mark_hits(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.hit_mark = Some(field.into());
        self
    }

    /// Kept in Redis, shared by every process of the provider (needs the `redis` feature).
    pub fn in_redis(mut self) -> Self {
        self.store = CacheStore::Redis;
        self
    }

    /// Keyed by these paths only (`payload.city`, `account.api_key`).
    pub fn key_paths<I>(mut self, paths: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        self.key = CacheKey::Paths(paths.into_iter().map(Into::into).collect());
        self
    }

    /// Keyed by what `key` makes of the payload, read as `P`; a payload that does not read as
    /// `P` is not cached.
    pub fn key_fn<P, K, F>(mut self, key: F) -> Self
    where
        P: DeserializeOwned,
        K: serde::Serialize,
        F: Fn(&P) -> K + Send + Sync + 'static,
    {
        self.key = CacheKey::Function(Arc::new(move |payload, _account| {
            let payload = P::deserialize(payload).map_err(|e| e.to_string())?;
            serde_json::to_value(key(&payload)).map_err(|e| e.to_string())
        }));
        self
    }

    /// A boolean payload field that, when `true`, runs the action and replaces the kept answer.
    pub fn refresh_flag(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.refresh = Some(field.into());
        self
    }
}

/// Where an action's answers are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStore {
    /// The provider's backend: in process unless the provider names another
    /// (`#[provider(cache_backend = path)]`).
    Provider,
    /// Redis (`cache = redis("10m")`), shared by every process of the provider.
    Redis,
}

/// What makes two tasks of an action identical for its cache.
#[derive(Clone)]
pub enum CacheKey {
    /// The canonical JSON of the validated payload (key order does not matter) and a
    /// fingerprint of the account (a hash, never the account).
    Input,
    /// These paths only (`payload.city`, `account.api_key`); a missing one counts as `null`.
    Paths(Vec<Cow<'static, str>>),
    /// What this function makes of the payload and the account; an `Err` skips the cache for
    /// the task (the action runs, its answer is not kept).
    Function(CacheKeyFn),
}

/// A cache key made in code: from the payload and the account to a JSON value.
pub type CacheKeyFn = Arc<dyn Fn(&Value, Option<&Value>) -> Result<Value, String> + Send + Sync>;

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheKey::Input => f.write_str("Input"),
            CacheKey::Paths(paths) => f.debug_tuple("Paths").field(paths).finish(),
            CacheKey::Function(_) => f.write_str("Function"),
        }
    }
}

/// How an action is run again when it fails with a transient error
/// (`#[action(retry(attempts = 3, backoff = "200ms..5s"))]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySpec {
    /// The tries and the waits between them.
    pub policy: RetryPolicy,
    /// The time one try may take; a try that overruns it is stopped and counts as a transient
    /// failure. Without it, a try may use what is left of the action's timeout, and running out
    /// of that ends the task.
    pub attempt_timeout: Option<Duration>,
}

/// An action's rate limit.
#[derive(Clone, Default)]
pub enum LimitSetting {
    /// The provider's default, if it has one.
    #[default]
    Inherit,
    /// No limit, whatever the provider's default (`rate_limit = none`).
    Off,
    /// This monitor.
    Monitor(Arc<dyn RateLimitMonitor>),
}

impl std::fmt::Debug for LimitSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitSetting::Inherit => f.write_str("Inherit"),
            LimitSetting::Off => f.write_str("Off"),
            LimitSetting::Monitor(m) => write!(f, "Monitor({})", m.describe()),
        }
    }
}

/// What a task that its rate limit refuses gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnLimit {
    /// A `limit` answer at once, with `wait_time`, so the hub can reschedule it.
    #[default]
    Reject,
    /// Wait for the budget, within the action's timeout; a `limit` answer if that is too short.
    Wait,
}

impl ActionSpec {
    /// The action's entry in the manifest.
    pub fn manifest(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "payload_schema": self.payload_schema,
            "account_schema": self.account_schema,
            "account_required": self.account_required,
            "timeout_s": self.timeout.map(|t| t.as_secs_f64()),
            "per": self.per,
            "on_limit": match self.on_limit { OnLimit::Reject => "reject", OnLimit::Wait => "wait" },
            "cache": self.cache.as_ref().map(CacheSpec::manifest),
            "retry": self.retry.as_ref().map(RetrySpec::manifest),
        })
    }
}

impl CacheSpec {
    /// The action's `cache` entry in the manifest.
    fn manifest(&self) -> Value {
        let key = match &self.key {
            CacheKey::Input => serde_json::json!("input"),
            CacheKey::Paths(paths) => serde_json::json!(paths),
            CacheKey::Function(_) => serde_json::json!("function"),
        };
        serde_json::json!({
            "ttl_s": self.ttl.as_secs_f64(),
            "store": match self.store { CacheStore::Provider => "provider", CacheStore::Redis => "redis" },
            "key": key,
            "refresh": self.refresh,
            "ttl_env": self.ttl_env,
            "hit_mark": self.hit_mark,
        })
    }
}

impl RetrySpec {
    /// The action's `retry` entry in the manifest.
    fn manifest(&self) -> Value {
        serde_json::json!({
            "attempts": self.policy.max_attempts(),
            "backoff_first_s": self.policy.first_wait().as_secs_f64(),
            "backoff_cap_s": self.policy.wait_cap().as_secs_f64(),
            "attempt_timeout_s": self.attempt_timeout.map(|t| t.as_secs_f64()),
        })
    }
}

/// A task's input, taken apart by an action's handler.
#[derive(Debug)]
pub struct Call {
    payload: Value,
    account: Option<Value>,
    context: Context,
}

/// Input that passed the schema but not deserialisation into the action's type (a schema that
/// says less than the type's `Deserialize`). The task is answered as invalid.
#[derive(Debug, Clone)]
pub struct InvalidInput {
    /// Which part of the task: payload or account.
    pub part: InputPart,
    /// What serde said.
    pub message: String,
}

/// The part of a task that [`InvalidInput`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPart {
    /// The task's payload.
    Payload,
    /// The task's account.
    Account,
}

impl Call {
    /// A call with this input.
    pub fn new(payload: Value, account: Option<Value>, context: Context) -> Self {
        Self {
            payload,
            account,
            context,
        }
    }

    /// Takes the payload as `T`.
    pub fn payload<T: DeserializeOwned>(&mut self) -> Result<T, InvalidInput> {
        serde_json::from_value(std::mem::take(&mut self.payload)).map_err(|e| InvalidInput {
            part: InputPart::Payload,
            message: e.to_string(),
        })
    }

    /// Takes the account as `T`; a missing account is deserialised from `null`.
    ///
    /// The error names where the account did not fit and how, never what it held: serde's
    /// messages quote values (`invalid type: string "sk_live_…", expected u64`), and an
    /// account holds secrets.
    pub fn account<T: DeserializeOwned>(&mut self) -> Result<T, InvalidInput> {
        serde_path_to_error::deserialize(self.account.take().unwrap_or(Value::Null)).map_err(
            |e: serde_path_to_error::Error<serde_json::Error>| InvalidInput {
                part: InputPart::Account,
                message: masked_account_error(e.path(), &e.inner().to_string()),
            },
        )
    }

    /// The task's context.
    pub fn context(&self) -> &Context {
        &self.context
    }
}

/// Kinds of value serde names in `invalid type` and `invalid value` messages, before the
/// value it quotes.
const SERDE_KINDS: &[&str] = &[
    "string",
    "integer",
    "floating point",
    "boolean",
    "character",
    "byte array",
    "unit value",
    "Option value",
    "newtype struct",
    "sequence",
    "map",
    "enum",
    "unit variant",
    "newtype variant",
    "tuple variant",
    "struct variant",
];

/// A serde error about an account, told without the account's values: `path` as a JSON
/// pointer, then serde's message with the quoted value dropped
/// (`/api_key: invalid type: string, expected u64`). Field names the type declares (`missing
/// field `x``) stay; a field or variant name the account sent does not; a message of another
/// shape (a hand-written `Deserialize`) is replaced whole, as it may quote anything.
fn masked_account_error(path: &serde_path_to_error::Path, message: &str) -> String {
    let masked = masked_message(message);
    // An unknown field's path ends with its name, which the account chose: dropped like the
    // message's copy of it. Other keys in the path are named as schema errors name them.
    let segments: Vec<_> = path.iter().collect();
    let shown = match segments.split_last() {
        Some((serde_path_to_error::Segment::Map { .. }, parents))
            if message.starts_with("unknown field ") =>
        {
            parents
        }
        _ => &segments[..],
    };
    let pointer: String = shown
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
            serde_path_to_error::Segment::Map { key } => {
                Some(format!("/{}", key.replace('~', "~0").replace('/', "~1")))
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {
                None
            }
        })
        .collect();
    if pointer.is_empty() {
        masked
    } else {
        format!("{pointer}: {masked}")
    }
}

fn masked_message(message: &str) -> String {
    mask_serde_message(message).unwrap_or_else(|| {
        "the account does not fit the action's account type (the deserialiser's message is \
         hidden, as it may quote account values)"
            .to_owned()
    })
}

/// serde's message with the values it quotes dropped, or `None` for a shape it does not write.
fn mask_serde_message(message: &str) -> Option<String> {
    // The type's own words (`expected u64`) follow the last `, expected `; the value, if any,
    // comes before it.
    let expected = |rest: &str| rest.rfind(", expected ").map(|at| rest[at..].to_owned());
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let kind = SERDE_KINDS
                .iter()
                .filter(|kind| {
                    rest.strip_prefix(**kind)
                        .is_some_and(|after| after.starts_with([' ', ',']))
                })
                .max_by_key(|kind| kind.len())?;
            return Some(format!("{prefix}{kind}{}", expected(rest)?));
        }
    }
    for prefix in ["unknown field ", "unknown variant "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let tail = expected(rest).or_else(|| {
                ["fields", "variants"]
                    .iter()
                    .find_map(|none| rest.rfind(&format!(", there are no {none}")))
                    .map(|at| rest[at..].to_owned())
            })?;
            return Some(format!("{}{tail}", prefix.trim_end()));
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        return Some(format!(
            "invalid length {}{}",
            &rest[..digits],
            expected(rest)?
        ));
    }
    let declared_by_the_type = ["missing field `", "duplicate field `"]
        .iter()
        .any(|prefix| message.starts_with(prefix))
        || message.starts_with("data did not match any variant of untagged enum ");
    declared_by_the_type.then(|| message.to_owned())
}

type AsyncHandler<P> = Arc<
    dyn Fn(Arc<P>, Call) -> BoxFuture<'static, Result<ActionResponse, InvalidInput>> + Send + Sync,
>;
type BlockingHandler<P> =
    Arc<dyn Fn(Arc<P>, Call) -> Result<ActionResponse, InvalidInput> + Send + Sync>;

/// How an action runs: as a future, or as blocking code on a thread of its own.
pub(crate) enum Handler<P> {
    /// An `async fn`.
    Async(AsyncHandler<P>),
    /// A plain `fn`, run on a thread of its own (at most the provider's concurrency at once)
    /// so it cannot stall other tasks.
    Blocking(BlockingHandler<P>),
}

impl<P> Clone for Handler<P> {
    fn clone(&self) -> Self {
        match self {
            Handler::Async(h) => Handler::Async(h.clone()),
            Handler::Blocking(h) => Handler::Blocking(h.clone()),
        }
    }
}

/// One action: what it is and how to run it.
pub struct ActionDef<P> {
    spec: ActionSpec,
    handler: Handler<P>,
}

impl<P> ActionDef<P> {
    /// What the runtime knows of the action.
    pub fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    /// How to run it.
    pub(crate) fn handler(&self) -> &Handler<P> {
        &self.handler
    }

    /// Sets the description.
    pub fn description(&mut self, description: impl Into<Cow<'static, str>>) -> &mut Self {
        self.spec.description = description.into();
        self
    }

    /// Declares the payload type; its schema is checked before the action runs.
    pub fn payload<T: JsonSchema>(&mut self) -> &mut Self {
        self.spec.payload_schema = Some(schema_of::<T>());
        self
    }

    /// Declares a required account type.
    pub fn account<T: JsonSchema>(&mut self) -> &mut Self {
        self.spec.account_schema = Some(schema_of::<T>());
        self.spec.account_required = true;
        self
    }

    /// Declares an optional account type (`account: Option<T>`).
    pub fn optional_account<T: JsonSchema>(&mut self) -> &mut Self {
        self.spec.account_schema = Some(schema_of::<T>());
        self.spec.account_required = false;
        self
    }

    /// Sets the action's own execution timeout.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.spec.timeout = Some(timeout);
        self
    }

    /// Guards the action with its own rate limit (overrides the provider's default).
    pub fn rate_limit(&mut self, monitor: impl IntoMonitor) -> &mut Self {
        self.spec.rate_limit = LimitSetting::Monitor(monitor.into_monitor());
        self
    }

    /// Opts out of the provider's default rate limit.
    pub fn no_rate_limit(&mut self) -> &mut Self {
        self.spec.rate_limit = LimitSetting::Off;
        self
    }

    /// Gives each value of a field its own budget: `"account.ad_account_id"`, `"payload.user"`.
    pub fn per(&mut self, field: impl Into<Cow<'static, str>>) -> &mut Self {
        self.spec.per = Some(field.into());
        self
    }

    /// Waits for the budget (within the timeout) instead of answering `limit` at once.
    pub fn on_limit(&mut self, on_limit: OnLimit) -> &mut Self {
        self.spec.on_limit = on_limit;
        self
    }

    /// Caches the action's `success` answers.
    pub fn cache(&mut self, cache: CacheSpec) -> &mut Self {
        self.spec.cache = Some(cache);
        self
    }

    /// Runs the action again while it fails with a transient error, as `policy` says.
    pub fn retry(&mut self, policy: RetryPolicy) -> &mut Self {
        self.spec.retry = Some(RetrySpec {
            policy,
            attempt_timeout: None,
        });
        self
    }

    /// Like [`retry`](Self::retry), and each try is stopped after `attempt_timeout` and counts
    /// as a transient failure.
    pub fn retry_with_attempt_timeout(
        &mut self,
        policy: RetryPolicy,
        attempt_timeout: Duration,
    ) -> &mut Self {
        self.spec.retry = Some(RetrySpec {
            policy,
            attempt_timeout: Some(attempt_timeout),
        });
        self
    }
}

/// A provider's default name and its actions, in declaration order.
pub struct ProviderDef<P> {
    pub(crate) name: Cow<'static, str>,
    pub(crate) default_limit: Option<Arc<dyn RateLimitMonitor>>,
    pub(crate) actions: Vec<ActionDef<P>>,
    pub(crate) cache_backend: Option<CacheBackend>,
}

impl<P: Send + Sync + 'static> ProviderDef<P> {
    /// A provider with this default name and no actions yet.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            name: name.into(),
            default_limit: None,
            actions: Vec::new(),
            cache_backend: None,
        }
    }

    /// Where the actions that cache with the provider's store (`cache = "10m"`) keep their
    /// answers: in process by default. A Redis backend also serves `cache = redis("…")`.
    pub fn cache_backend(&mut self, backend: CacheBackend) -> &mut Self {
        self.cache_backend = Some(backend);
        self
    }

    /// The rate limit of every action that does not declare its own: one budget they share.
    pub fn rate_limit(&mut self, monitor: impl IntoMonitor) -> &mut Self {
        self.default_limit = Some(monitor.into_monitor());
        self
    }

    /// Adds an async action.
    pub fn action<F, Fut, R>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        handler: F,
    ) -> &mut ActionDef<P>
    where
        F: Fn(Arc<P>, Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, InvalidInput>> + Send + 'static,
        R: IntoActionResponse,
    {
        let handler: AsyncHandler<P> = Arc::new(move |provider, call| {
            let future = handler(provider, call);
            Box::pin(async move { future.await.map(IntoActionResponse::into_response) })
        });
        self.push(name.into(), Handler::Async(handler))
    }

    /// Adds a blocking action; it runs on a thread of its own.
    pub fn blocking_action<F, R>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        handler: F,
    ) -> &mut ActionDef<P>
    where
        F: Fn(Arc<P>, Call) -> Result<R, InvalidInput> + Send + Sync + 'static,
        R: IntoActionResponse,
    {
        let handler: BlockingHandler<P> = Arc::new(move |provider, call| {
            handler(provider, call).map(IntoActionResponse::into_response)
        });
        self.push(name.into(), Handler::Blocking(handler))
    }

    fn push(&mut self, name: Cow<'static, str>, handler: Handler<P>) -> &mut ActionDef<P> {
        self.actions.push(ActionDef {
            spec: ActionSpec {
                name,
                description: Cow::Borrowed(""),
                payload_schema: None,
                account_schema: None,
                account_required: false,
                timeout: None,
                rate_limit: LimitSetting::Inherit,
                per: None,
                on_limit: OnLimit::Reject,
                cache: None,
                retry: None,
            },
            handler,
        });
        self.actions.last_mut().expect("just pushed")
    }
}

impl<P> ProviderDef<P> {
    /// The default name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions in declaration order.
    pub fn actions(&self) -> &[ActionDef<P>] {
        &self.actions
    }

    /// JSON describing the provider and its actions (see [`Provider::manifest`]).
    pub fn manifest(&self) -> Value {
        let actions: Vec<Value> = self
            .actions
            .iter()
            .map(|action| {
                let mut entry = action.spec.manifest();
                let limit = match &action.spec.rate_limit {
                    LimitSetting::Monitor(m) => Some(m.describe()),
                    LimitSetting::Inherit => self.default_limit.as_ref().map(|m| m.describe()),
                    LimitSetting::Off => None,
                };
                entry["rate_limit"] = limit.unwrap_or(Value::Null);
                entry
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "rate_limit": self.default_limit.as_ref().map(|m| m.describe()),
            "actions": actions,
        })
    }

    /// The rate limit of actions that do not declare their own.
    pub fn default_rate_limit(&self) -> Option<&Arc<dyn RateLimitMonitor>> {
        self.default_limit.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Account {
        id: u64,
        owner: Owner,
        mode: Mode,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Owner {
        keys: Vec<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Live,
        Test,
    }

    fn account_error(account: Value) -> String {
        let mut call = Call::new(json!({}), Some(account), crate::Context::detached("t"));
        call.account::<Account>().unwrap_err().message
    }

    const SECRET: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";

    #[test]
    fn account_errors_keep_the_kind_and_the_path_but_no_value() {
        let good = json!({"id": 1, "owner": {"keys": [1]}, "mode": "live"});
        let cases = [
            (
                json!({"id": SECRET, "owner": {"keys": []}, "mode": "live"}),
                "/id: invalid type: string, expected u64",
            ),
            (
                json!({"id": 1, "owner": {"keys": [1, SECRET]}, "mode": "live"}),
                "/owner/keys/1: invalid type: string, expected u32",
            ),
            (
                json!({"id": -7, "owner": {"keys": []}, "mode": "live"}),
                "/id: invalid value: integer, expected u64",
            ),
            (
                json!({"id": 1, "owner": {"keys": []}, "mode": SECRET}),
                "/mode: unknown variant, expected `live` or `test`",
            ),
            (
                json!({"id": 1, "owner": {"keys": []}, "mode": "live", SECRET: 1}),
                "unknown field, expected one of `id`, `owner`, `mode`",
            ),
            (json!({"id": 1, "mode": "live"}), "missing field `owner`"),
            (
                json!(SECRET),
                "invalid type: string, expected struct Account",
            ),
        ];
        for (account, expected) in cases {
            let message = account_error(account);
            assert_eq!(message, expected);
            assert!(!message.contains("sk_live"), "{message}");
        }
        let mut call = Call::new(json!({}), Some(good), crate::Context::detached("t"));
        assert!(call.account::<Account>().is_ok());
    }

    #[test]
    fn messages_of_other_shapes_are_hidden_whole() {
        assert!(!masked_message(&format!("token {SECRET} is revoked")).contains(SECRET));
        assert!(
            !masked_message(&format!("invalid type: {SECRET}")).contains(SECRET),
            "an unknown kind is not taken as serde's"
        );
        assert!(
            !masked_message(&format!("invalid value: string \"{SECRET}\"")).contains(SECRET),
            "no `expected` part: not serde's shape"
        );
    }

    #[test]
    fn payload_errors_keep_their_values() {
        let mut call = Call::new(json!({"n": "seven"}), None, crate::Context::detached("t"));
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct P {
            n: u8,
        }
        assert!(call.payload::<P>().unwrap_err().message.contains("seven"));
    }
}
