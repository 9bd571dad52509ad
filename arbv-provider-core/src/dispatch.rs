//! From a task to its one envelope: parse, find the action, validate, run it under its timeout,
//! catch its panic, and answer every case exactly as DESIGN §1 prescribes.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono_tz::Tz;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::context::Context;
use crate::envelope::{Envelope, Status};
use crate::error::DefinitionError;
use crate::provider::{
    ActionSpec, Call, Handler, InputPart, InvalidInput, LimitSetting, OnLimit, Provider,
    ProviderDef,
};
use crate::rate_limit::{Decision, PerKey, RateLimitMonitor};
use crate::response::{ActionError, ActionResponse, format_seconds};
use crate::telemetry::Escaped;
use crate::validation::{SchemaValidator, Violations};

type ErasedHandler =
    Arc<dyn Fn(Call) -> BoxFuture<'static, Result<ActionResponse, InvalidInput>> + Send + Sync>;

struct CompiledAction {
    name: Arc<str>,
    spec: ActionSpec,
    payload: Option<SchemaValidator>,
    account: Option<SchemaValidator>,
    limit: Option<CompiledLimit>,
    run: ErasedHandler,
}

struct CompiledLimit {
    monitor: Arc<dyn RateLimitMonitor>,
    per: Option<PerKey>,
    wait: bool,
}

/// A task as the hub sent it.
#[derive(Clone, Debug, Default)]
pub struct IncomingTask {
    /// The hub's id.
    pub id: String,
    /// The action's name.
    pub action: String,
    /// UTF-8 JSON (empty counts as `{}`).
    pub payload: bytes::Bytes,
    /// UTF-8 JSON, or empty when the task has no account.
    pub account: bytes::Bytes,
}

/// A task's answer, ready to submit (the hub client adds the provider's name and token).
#[derive(Clone, Debug)]
pub struct CompletedTask {
    /// The task's id.
    pub id: String,
    /// The task's action.
    pub action: String,
    /// The envelope's status.
    pub status: Status,
    /// The task's payload as JSON text.
    pub payload: String,
    /// The task's account as JSON text (`{}` when none).
    pub account: String,
    /// The envelope as JSON text.
    pub result: String,
}

/// Runs tasks against one provider's compiled action table.
pub struct Dispatcher {
    provider_name: Arc<str>,
    timezone: Tz,
    default_timeout: Duration,
    actions: Vec<CompiledAction>,
    by_name: HashMap<String, usize>,
    available: Value,
}

impl Dispatcher {
    /// Compiles `provider`'s action table: checks names, compiles schemas once.
    pub fn new<P: Provider>(provider: P, config: &Config) -> Result<Self, DefinitionError> {
        Self::from_definition(Arc::new(provider), P::definition(), config)
    }

    /// Compiles an explicit definition for `provider`.
    pub fn from_definition<P: Send + Sync + 'static>(
        provider: Arc<P>,
        definition: ProviderDef<P>,
        config: &Config,
    ) -> Result<Self, DefinitionError> {
        let ProviderDef {
            name: default_name,
            default_limit,
            actions: defs,
        } = definition;
        let provider_name: Arc<str> = Arc::from(config.provider_name().unwrap_or(&default_name));
        if let Some(monitor) = &default_limit {
            monitor.attach(&provider_name);
        }
        // As many threads as tasks may run at once. A blocking action that outlives its task
        // keeps its thread; once every slot is so held, new blocking actions wait (and time
        // out) rather than pile up threads.
        let blocking = BlockingThreads::new(config.concurrency());
        let mut actions = Vec::with_capacity(defs.len());
        let mut by_name = HashMap::with_capacity(defs.len());
        for def in defs {
            let spec = def.spec().clone();
            if spec.name.trim().is_empty() {
                return Err(DefinitionError::EmptyActionName);
            }
            if by_name
                .insert(spec.name.to_string(), actions.len())
                .is_some()
            {
                return Err(DefinitionError::DuplicateAction(spec.name.to_string()));
            }
            let compile = |schema: &Option<Value>, part: &'static str| {
                schema
                    .clone()
                    .map(SchemaValidator::compile)
                    .transpose()
                    .map_err(|reason| DefinitionError::Schema {
                        action: spec.name.to_string(),
                        part,
                        reason,
                    })
            };
            let payload = compile(&spec.payload_schema, "payload")?;
            let account = compile(&spec.account_schema, "account")?.map(SchemaValidator::masked);
            let monitor = match &spec.rate_limit {
                LimitSetting::Inherit => default_limit.clone(),
                LimitSetting::Off => None,
                LimitSetting::Monitor(monitor) => {
                    monitor.attach(&provider_name);
                    Some(monitor.clone())
                }
            };
            let per = spec
                .per
                .as_deref()
                .map(PerKey::parse)
                .transpose()
                .map_err(|reason| DefinitionError::Per {
                    action: spec.name.to_string(),
                    reason,
                })?;
            let limit = monitor.map(|monitor| CompiledLimit {
                monitor,
                per,
                wait: spec.on_limit == OnLimit::Wait,
            });
            let run = erase(provider.clone(), def.handler().clone(), &blocking);
            actions.push(CompiledAction {
                name: Arc::from(spec.name.as_ref()),
                spec,
                payload,
                account,
                limit,
                run,
            });
        }
        let available = json!(actions.iter().map(|a| a.name.as_ref()).collect::<Vec<_>>());
        Ok(Self {
            provider_name,
            timezone: config.timezone(),
            default_timeout: config.task_timeout(),
            actions,
            by_name,
            available,
        })
    }

    /// The provider's name as it is sent to the hub.
    pub fn provider_name(&self) -> &Arc<str> {
        &self.provider_name
    }

    /// The actions, in declaration order.
    pub fn specs(&self) -> impl Iterator<Item = &ActionSpec> {
        self.actions.iter().map(|a| &a.spec)
    }

    /// Runs one task to its answer. `interrupt` is cancelled when shutdown's drain time is up:
    /// an action still running then is stopped and answered with an error.
    pub async fn dispatch(
        &self,
        task: IncomingTask,
        interrupt: &CancellationToken,
    ) -> CompletedTask {
        let payload_text = json_text(&task.payload, "{}");
        let account_text = json_text(&task.account, "{}");
        let (status, result) = match self.run(&task, interrupt).await {
            Ok(envelope) | Err(envelope) => (envelope.status, envelope.to_json()),
        };
        CompletedTask {
            id: task.id,
            action: task.action,
            status,
            payload: payload_text,
            account: account_text,
            result,
        }
    }

    async fn run(
        &self,
        task: &IncomingTask,
        interrupt: &CancellationToken,
    ) -> Result<Envelope, Envelope> {
        let action_name = task.action.as_str();
        let payload = parse_json(&task.payload)
            .map_err(|e| {
                self.parse_failure(action_name, format!("payload is not valid JSON: {e}"))
            })?
            .unwrap_or_else(|| json!({}));
        let account = parse_json(&task.account).map_err(|e| {
            self.parse_failure(action_name, format!("account is not valid JSON: {e}"))
        })?;

        let Some(&index) = self.by_name.get(action_name) else {
            return Err(self.envelope(
                action_name,
                Status::Error,
                format!("Action '{action_name}' not found"),
                json!({ "available_actions": self.available }),
            ));
        };
        let action = &self.actions[index];

        if let Some(validator) = &action.payload {
            validator
                .check(&payload)
                .map_err(|v| self.invalid(action_name, InputPart::Payload, &v, validator))?;
        }
        match (&account, &action.account) {
            (None, Some(validator)) if action.spec.account_required => {
                return Err(self.envelope(
                    action_name,
                    Status::Error,
                    "Account data is required but not provided".to_owned(),
                    json!({
                        "errors": [{"path": "", "message": "the task has no account"}],
                        "missing_params": [],
                        "schema": validator.schema().as_ref(),
                    }),
                ));
            }
            (Some(account), Some(validator)) => validator
                .check(account)
                .map_err(|v| self.invalid(action_name, InputPart::Account, &v, validator))?,
            _ => {}
        }

        let timeout = action.spec.timeout.unwrap_or(self.default_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        if let Some(limit) = &action.limit {
            self.admit(
                action_name,
                limit,
                &payload,
                account.as_ref(),
                deadline,
                interrupt,
            )
            .await?;
        }
        let timeout_left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let context = Context::new(
            task.id.clone(),
            action.name.clone(),
            self.provider_name.clone(),
            self.timezone,
            timeout_left,
        );
        let running = AssertUnwindSafe((action.run)(Call::new(payload, account, context.clone())))
            .catch_unwind();
        let outcome = tokio::select! {
            biased;
            outcome = running => outcome,
            () = tokio::time::sleep_until(deadline) => {
                context.cancel();
                return Err(self.envelope(
                    action_name,
                    Status::Error,
                    format!("Task execution timed out after {}s", format_seconds(timeout.as_secs_f64())),
                    json!({ "timeout_s": timeout.as_secs_f64() }),
                ));
            }
            () = interrupt.cancelled() => {
                context.cancel();
                return Err(self.envelope(
                    action_name,
                    Status::Error,
                    "Task interrupted: the provider shut down before the action finished".to_owned(),
                    json!({ "error": "the provider's drain timeout ran out during shutdown", "error_code": "SHUTDOWN" }),
                ));
            }
        };
        match outcome {
            Ok(Ok(response)) => {
                let (status, message, response) = response.into_parts();
                Ok(self.envelope(action_name, status, message.unwrap_or_default(), response))
            }
            Ok(Err(invalid)) => {
                let validator = match invalid.part {
                    InputPart::Payload => action.payload.as_ref(),
                    InputPart::Account => action.account.as_ref(),
                };
                let violations = Violations {
                    errors: vec![crate::validation::FieldError {
                        path: String::new(),
                        message: invalid.message,
                    }],
                    missing: Vec::new(),
                };
                Err(self.invalid_with(
                    action_name,
                    invalid.part,
                    &violations,
                    validator.map(|v| v.schema().as_ref()),
                ))
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(task_id = %Escaped(&task.id), action = action_name, panic = %Escaped(&message), "action panicked");
                Err(self.envelope(
                    action_name,
                    Status::Error,
                    format!("Action panicked: {message}"),
                    json!({ "error": message }),
                ))
            }
        }
    }

    /// Spends budget for the task, or answers `limit`. Only a task that would run gets here,
    /// so unknown actions and invalid payloads spend nothing.
    async fn admit(
        &self,
        action: &str,
        limit: &CompiledLimit,
        payload: &Value,
        account: Option<&Value>,
        deadline: tokio::time::Instant,
        interrupt: &CancellationToken,
    ) -> Result<(), Envelope> {
        let key = limit
            .per
            .as_ref()
            .map(|per| per.key(payload, account))
            .unwrap_or_default();
        loop {
            let (wait, mut figures) = match limit.monitor.check(&key).await {
                Decision::Admitted(_) => return Ok(()),
                Decision::Limited { wait, figures } => (wait, figures),
            };
            if limit.wait && tokio::time::Instant::now() + wait < deadline {
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = interrupt.cancelled() => {}
                }
            }
            if !key.is_empty() {
                figures.insert("key".into(), Value::String(key));
            }
            let (status, message, response) =
                ActionResponse::limit_with(wait, figures).into_parts();
            return Err(self.envelope(action, status, message.unwrap_or_default(), response));
        }
    }

    fn parse_failure(&self, action: &str, error: String) -> Envelope {
        self.envelope(
            action,
            Status::Error,
            "Failed to parse task data".to_owned(),
            json!({ "error": error }),
        )
    }

    fn invalid(
        &self,
        action: &str,
        part: InputPart,
        violations: &Violations,
        validator: &SchemaValidator,
    ) -> Envelope {
        self.invalid_with(action, part, violations, Some(validator.schema().as_ref()))
    }

    fn invalid_with(
        &self,
        action: &str,
        part: InputPart,
        violations: &Violations,
        schema: Option<&Value>,
    ) -> Envelope {
        let what = match part {
            InputPart::Payload => "payload",
            InputPart::Account => "account",
        };
        self.envelope(
            action,
            Status::Error,
            format!("Invalid {what}: {}", violations.summary()),
            json!({
                "errors": violations.errors,
                "missing_params": violations.missing,
                "schema": schema,
            }),
        )
    }

    fn envelope(&self, action: &str, status: Status, message: String, response: Value) -> Envelope {
        Envelope::new(
            status,
            message,
            &self.provider_name,
            action,
            self.timezone,
            response,
        )
    }
}

fn erase<P: Send + Sync + 'static>(
    provider: Arc<P>,
    handler: Handler<P>,
    threads: &BlockingThreads,
) -> ErasedHandler {
    match handler {
        Handler::Async(run) => Arc::new(move |call| run(provider.clone(), call)),
        Handler::Blocking(run) => {
            let threads = threads.clone();
            Arc::new(move |call| {
                let provider = provider.clone();
                let run = run.clone();
                let threads = threads.clone();
                Box::pin(async move { threads.run(move |call| run(provider, call), call).await })
            })
        }
    }
}

type BlockingOutcome = std::thread::Result<Result<ActionResponse, InvalidInput>>;

/// The threads blocking actions run on: one per call, at most `limit` at once, counting the
/// threads of actions that outlived their task.
///
/// Not tokio's blocking pool: dropping a runtime waits for every `spawn_blocking` closure, so
/// one action that never returns would keep the process alive after the drain. A thread of
/// our own is left behind at exit instead. A call waits for a slot while its task lives; a
/// task answered before it got one (timeout, shutdown) never starts its action.
#[derive(Clone)]
struct BlockingThreads {
    slots: Arc<Semaphore>,
    limit: usize,
    /// Actions still running after their task was answered.
    outlived: Arc<AtomicUsize>,
}

impl BlockingThreads {
    fn new(limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            outlived: Arc::default(),
        }
    }

    /// Runs `action` on a thread of its own once a slot is free. Dropping the future (the task
    /// timed out or the provider shut down) leaves a started action running, with a warning,
    /// and an action not yet started unstarted.
    async fn run(
        &self,
        action: impl FnOnce(Call) -> Result<ActionResponse, InvalidInput> + Send + 'static,
        call: Call,
    ) -> Result<ActionResponse, InvalidInput> {
        let context = call.context().clone();
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let outlived = self.outlived.load(Ordering::Relaxed);
                if outlived > 0 {
                    tracing::warn!(
                        task_id = context.task_id(),
                        action = context.action(),
                        outlived,
                        limit = self.limit,
                        "a blocking action waits for a thread: some are held by actions that outlived their task"
                    );
                }
                self.slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed")
            }
        };
        if context.is_cancelled() || tokio::time::Instant::now() >= context.deadline() {
            // Too late to start: the caller's deadline branch answers the task.
            return std::future::pending().await;
        }
        let (answer, answered) = oneshot::channel::<BlockingOutcome>();
        let watch = OutlivedWatch {
            context: context.clone(),
            outlived: self.outlived.clone(),
            limit: self.limit,
            armed: Arc::new(AtomicBool::new(true)),
        };
        let on_thread = watch.clone();
        let spawned = std::thread::Builder::new()
            .name("arbv-blocking".to_owned())
            .spawn(move || {
                let _slot = slot;
                if on_thread.context.is_cancelled() {
                    on_thread.never_started();
                    return;
                }
                let started = std::time::Instant::now();
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| action(call)));
                on_thread.finished(started.elapsed());
                let _ = answer.send(outcome);
            });
        if let Err(error) = spawned {
            watch.disarm();
            return Ok(ActionResponse::from_error(
                ActionError::new(format!(
                    "could not start a thread for the blocking action: {error}"
                ))
                .with_code("NO_THREAD"),
            ));
        }
        let _watch = WatchGuard(watch);
        match answered.await {
            Ok(Ok(outcome)) => outcome,
            // Re-raised so that the caller's catch_unwind answers it like any panic.
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // The thread saw the task cancelled before it started; the caller answers it.
            Err(_) => std::future::pending().await,
        }
    }
}

/// Shared by a blocking action's thread and the future awaiting it: which of the two ends
/// first decides whether the action outlived its task.
#[derive(Clone)]
struct OutlivedWatch {
    context: Context,
    outlived: Arc<AtomicUsize>,
    limit: usize,
    /// True while the future awaits the thread.
    armed: Arc<AtomicBool>,
}

impl OutlivedWatch {
    fn disarm(&self) -> bool {
        self.armed.swap(false, Ordering::AcqRel)
    }

    /// On the thread, when its task was answered before the action could start.
    fn never_started(&self) {
        if !self.disarm() {
            self.outlived.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// On the thread, when the action returned (or panicked).
    fn finished(&self, ran_for: Duration) {
        if !self.disarm() {
            self.outlived.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(
                task_id = self.context.task_id(), action = self.context.action(), ran_for = ?ran_for,
                "a blocking action returned after its task was answered; its result is dropped"
            );
        }
    }
}

/// Dropped with the future that awaits the thread: if the thread still runs, the task was
/// answered without it (timeout or shutdown), and that is worth a warning.
struct WatchGuard(OutlivedWatch);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if self.0.disarm() {
            let held = self.0.outlived.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                task_id = self.0.context.task_id(),
                action = self.0.context.action(),
                held,
                limit = self.0.limit,
                "a blocking action outlived its task (timeout or shutdown): its thread cannot be stopped and holds a blocking slot until it returns"
            );
        }
    }
}

/// `None` for an empty document or JSON `null`: an absent account, or a payload the caller
/// reads as `{}`.
fn parse_json(bytes: &[u8]) -> Result<Option<Value>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Null) => Ok(None),
        Ok(value) => Ok(Some(value)),
        Err(e) if std::str::from_utf8(bytes).is_err() => Err(format!("it is not UTF-8 ({e})")),
        Err(e) => Err(e.to_string()),
    }
}

fn json_text(bytes: &[u8], empty: &str) -> String {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return empty.to_owned();
    }
    String::from_utf8_lossy(bytes).into_owned()
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "the action panicked with a value that is not a string".to_owned()
    }
}

/// The `error_code` of the answer that replaces a result too large for the hub.
pub const RESULT_TOO_LARGE: &str = "RESULT_TOO_LARGE";

/// Answers the worker builds in place of one it cannot deliver or could not make.
impl Dispatcher {
    /// A small `error` answer in place of `done`, whose encoded result is `bytes` long, over
    /// `limit` (the configured one, or the hub refused it: `hub_answer` says how). Payload and
    /// account are kept; [`CompletedTask::omit_inputs`] drops them when they alone are too large.
    pub fn result_too_large(
        &self,
        done: &CompletedTask,
        bytes: usize,
        limit: usize,
        hub_answer: Option<String>,
    ) -> CompletedTask {
        let message = match &hub_answer {
            None => format!(
                "Result too large: {bytes} bytes encoded, over the limit of {limit} bytes (PROVIDER_MAX_RESULT_BYTES)"
            ),
            Some(answer) => {
                format!("Result too large: the hub refused {bytes} bytes encoded ({answer})")
            }
        };
        let envelope = self.envelope(
            &done.action,
            Status::Error,
            message,
            json!({
                "error": "the action's result is too large for the hub to take",
                "error_code": RESULT_TOO_LARGE,
                "details": { "bytes": bytes, "limit": limit, "hub_answer": hub_answer },
            }),
        );
        CompletedTask {
            id: done.id.clone(),
            action: done.action.clone(),
            status: envelope.status,
            payload: done.payload.clone(),
            account: done.account.clone(),
            result: envelope.to_json(),
        }
    }

    /// An `error` answer for a task whose dispatch panicked outside the action (the action's
    /// own panics are answered by [`dispatch`](Self::dispatch)).
    pub fn dispatch_failed(&self, task: &IncomingTask, message: &str) -> CompletedTask {
        let envelope = self.envelope(
            &task.action,
            Status::Error,
            format!("Internal error while running the task: {message}"),
            json!({ "error": message, "error_code": "INTERNAL" }),
        );
        CompletedTask {
            id: task.id.clone(),
            action: task.action.clone(),
            status: envelope.status,
            payload: json_text(&task.payload, "{}"),
            account: json_text(&task.account, "{}"),
            result: envelope.to_json(),
        }
    }
}

/// A panic's message, for a log line and an answer.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic_message(panic)
}

impl CompletedTask {
    /// Replaces the echoed payload and account with `{"omitted_bytes": N}`: for an answer that
    /// is still too large because the task's own input was.
    pub fn omit_inputs(&mut self) {
        for text in [&mut self.payload, &mut self.account] {
            *text = json!({ "omitted_bytes": text.len() }).to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Blocking;

    impl Provider for Blocking {
        fn definition() -> ProviderDef<Self> {
            let mut def = ProviderDef::new("blocking");
            def.blocking_action("explode", |_this, _call| {
                if true {
                    panic!("kaboom on the action's thread");
                }
                Ok(ActionResponse::success(Value::Null))
            });
            def.blocking_action("on_its_thread", |_this, _call| {
                let name = std::thread::current().name().map(str::to_owned);
                Ok(ActionResponse::success(json!({ "thread": name })))
            });
            def
        }
    }

    async fn answer(action: &str) -> Value {
        let config = Config::builder().auth_token("t").build().unwrap();
        let dispatcher = Dispatcher::new(Blocking, &config).unwrap();
        let task = IncomingTask {
            id: "1".into(),
            action: action.into(),
            ..IncomingTask::default()
        };
        let done = dispatcher.dispatch(task, &CancellationToken::new()).await;
        serde_json::from_str(&done.result).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_blocking_action_runs_on_its_own_thread_and_its_panic_is_an_answer() {
        let e = answer("on_its_thread").await;
        assert_eq!(e["data"]["response"]["thread"], "arbv-blocking", "{e}");
        let e = answer("explode").await;
        assert_eq!(e["status"], "error");
        assert_eq!(
            e["message"],
            "Action panicked: kaboom on the action's thread"
        );
    }
}
