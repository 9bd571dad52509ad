//! From a task to its one envelope: find the action, parse and validate the input, admit the
//! task under its rate limit, run the action under its timeout (catching its panic), and put the
//! outcome in an envelope, answering every case exactly as the envelope table in the README
//! prescribes.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cache::{ActionCache, CacheBuilder, CacheHandle, Kept, Lookup, flight};
use crate::config::Config;
use crate::context::Context;
use crate::envelope::{MAX_ECHOED_BYTES, Reply, Status, shorten};
use crate::error::DefinitionError;
use crate::metrics::{ActionLabel, ActionSlot, CacheLookup, ErrorKind, Metrics};
use crate::provider::{
    ActionDef, ActionSpec, Call, Handler, InputPart, InvalidInput, LimitSetting, OnLimit, Provider,
    ProviderDef, RetrySpec,
};
use crate::rate_limit::{Decision, PerKey, RateLimitMonitor};
use crate::response::{ActionError, ActionResponse, format_seconds};
use crate::retry::pause;
use crate::task::{CompletedTask, IncomingTask, omitted};
use crate::telemetry::{Escaped, EscapedText};
use crate::timezone::Zone;
use crate::validation::{MAX_ERROR_MESSAGE_BYTES, SchemaValidator, Violations};

/// Inputs (payload plus account) up to this size are parsed and checked on the runtime thread.
/// Checking costs up to about one error per 3 bytes (`[{},{},…]` against required fields); at
/// 16 KiB that is a few milliseconds even then, while the hand-off to the blocking pool costs
/// tens of microseconds. Larger inputs go to the blocking pool, so that a document slow to check
/// does not stall the other tasks of the thread.
const INLINE_INPUT_BYTES: usize = 16 * 1024;

type ErasedHandler =
    Arc<dyn Fn(Call) -> BoxFuture<'static, Result<ActionResponse, InvalidInput>> + Send + Sync>;

struct CompiledAction {
    name: Arc<str>,
    spec: ActionSpec,
    schemas: InputSchemas,
    limit: Option<CompiledLimit>,
    cache: Option<Arc<ActionCache>>,
    run: ErasedHandler,
}

/// What an action's input is checked against, compiled once.
#[derive(Clone)]
struct InputSchemas {
    payload: Option<SchemaValidator>,
    /// Masked: its messages never repeat the account's values.
    account: Option<SchemaValidator>,
    account_required: bool,
}

impl InputSchemas {
    /// The JSON Schema of the payload or the account, for an answer that refuses it.
    fn of(&self, part: InputPart) -> Option<&Value> {
        let validator = match part {
            InputPart::Payload => self.payload.as_ref(),
            InputPart::Account => self.account.as_ref(),
        };
        validator.map(|v| v.schema().as_ref())
    }
}

struct CompiledLimit {
    monitor: Arc<dyn RateLimitMonitor>,
    per: Option<PerKey>,
    wait: bool,
}

/// Runs tasks against one provider's compiled action table.
pub(crate) struct Dispatcher {
    provider_name: Arc<str>,
    timezone: Zone,
    default_timeout: Duration,
    actions: Vec<CompiledAction>,
    by_name: HashMap<String, usize>,
    available: Value,
    max_task_bytes: usize,
    /// How many large inputs may be read at once: one per core, so hostile tasks queue for the
    /// cores instead of each taking a thread and the memory of its errors.
    large_inputs: Arc<Semaphore>,
    metrics: Metrics,
    /// Every cached action's cache; detached when none caches.
    cache: CacheHandle,
}

/// A task's envelope, and what the metrics count of it.
pub(crate) struct Answer {
    reply: Reply,
    slot: ActionSlot,
    error: Option<ErrorKind>,
}

/// The texts of a `TaskResult`: the task's payload and account, and the envelope.
struct Written {
    payload: String,
    account: String,
    result: String,
}

/// A task answered, ready to record and submit.
pub(crate) struct Answered {
    pub(crate) done: CompletedTask,
    slot: ActionSlot,
    pub(crate) error: Option<ErrorKind>,
    pub(crate) took: std::time::Duration,
}

/// A task on its way through the pipeline once its action is found: what every later stage
/// reads.
struct Job<'a> {
    task: &'a IncomingTask,
    action: &'a CompiledAction,
    slot: ActionSlot,
    timeout: Duration,
    /// When the task runs out of time. It covers reading the input: a document slow to check
    /// is answered as a timeout.
    deadline: Instant,
    /// Cancelled when shutdown's drain time is up.
    interrupt: &'a CancellationToken,
}

/// A task's payload (`{}` when it has none) and account, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
struct Input {
    payload: Value,
    account: Option<Value>,
}

impl Dispatcher {
    /// Compiles `provider`'s action table: checks names, compiles schemas once.
    pub(crate) fn new<P: Provider>(provider: P, config: &Config) -> Result<Self, DefinitionError> {
        Self::from_definition(Arc::new(provider), P::definition(), config)
    }

    /// Compiles an explicit definition for `provider`.
    pub(crate) fn from_definition<P: Send + Sync + 'static>(
        provider: Arc<P>,
        definition: ProviderDef<P>,
        config: &Config,
    ) -> Result<Self, DefinitionError> {
        let ProviderDef {
            name: default_name,
            default_limit,
            actions: defs,
            cache_backend,
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
        let mut caches = CacheBuilder::new(provider_name.clone(), cache_backend, config);
        for def in defs {
            let name = def.spec().name.to_string();
            if name.trim().is_empty() {
                return Err(DefinitionError::EmptyActionName);
            }
            if by_name.insert(name.clone(), actions.len()).is_some() {
                return Err(DefinitionError::DuplicateAction(name));
            }
            let limits = Limits {
                provider_name: &provider_name,
                default: default_limit.as_ref(),
            };
            let cache = caches.action(def.spec())?;
            actions.push(compile_action(&provider, def, limits, cache, &blocking)?);
        }
        let cache = caches.finish();
        let available = json!(actions.iter().map(|a| a.name.as_ref()).collect::<Vec<_>>());
        let labels: Vec<ActionLabel<'_>> = actions
            .iter()
            .map(|a| ActionLabel {
                name: &a.name,
                limited: a.limit.is_some(),
                retried: a.spec.retry.is_some(),
                cached: a.cache.is_some(),
            })
            .collect();
        let metrics = Metrics::new(&provider_name, &labels, config.metrics());
        Ok(Self {
            provider_name,
            timezone: config.timezone().clone(),
            default_timeout: config.task_timeout(),
            actions,
            by_name,
            available,
            max_task_bytes: config.max_task_bytes(),
            large_inputs: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            metrics,
            cache,
        })
    }

    /// The handle over the cached actions' answers.
    pub(crate) fn cache(&self) -> &CacheHandle {
        &self.cache
    }

    /// The provider's name as it is sent to the hub.
    pub(crate) fn provider_name(&self) -> &Arc<str> {
        &self.provider_name
    }

    /// The provider's metrics.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts an answered task in the metrics.
    pub(crate) fn record(&self, answered: &Answered) {
        self.metrics.task_answered(
            answered.slot,
            answered.done.status,
            answered.error,
            answered.took,
        );
    }

    /// The metrics slot of the action named `name`, declared or not.
    fn slot_of(&self, name: &str) -> ActionSlot {
        ActionSlot(
            self.by_name
                .get(name)
                .copied()
                .unwrap_or(self.actions.len()),
        )
    }

    /// The actions, in declaration order.
    pub(crate) fn specs(&self) -> impl Iterator<Item = &ActionSpec> {
        self.actions.iter().map(|a| &a.spec)
    }

    /// The span a task runs in: every log line written while it runs, the action's and the
    /// framework's, carries its `task_id`, `action` and `provider`. At level ERROR, so that a
    /// quieter filter (`RUST_LOG=warn`) keeps the fields on the lines it lets through; the
    /// strings from the hub are escaped and cut to [`MAX_ECHOED_BYTES`].
    pub(crate) fn task_span(&self, task: &IncomingTask) -> tracing::Span {
        tracing::error_span!(
            "task",
            task_id = %EscapedText(&shorten(&task.id, MAX_ECHOED_BYTES)),
            action = %EscapedText(&shorten(&task.action, MAX_ECHOED_BYTES)),
            provider = %self.provider_name,
        )
    }

    /// Runs one task to its answer. `interrupt` is cancelled when shutdown's drain time is up:
    /// an action still running then is stopped and answered with an error. A panic anywhere in
    /// here (the action's own is answered as the action's) still gives the task its one answer.
    pub(crate) async fn dispatch(
        &self,
        task: IncomingTask,
        interrupt: &CancellationToken,
    ) -> Answered {
        let started = std::time::Instant::now();
        let _running = self.metrics.task_started();
        let written = AssertUnwindSafe(self.answer_written(&task, interrupt))
            .catch_unwind()
            .await;
        let (answer, written) = written.unwrap_or_else(|panic| {
            let message = panic_message(panic.as_ref());
            tracing::error!(panic = %Escaped(&message), "running the task panicked outside its action");
            let answer = self.panicked_outside(&task, &message);
            let written = self.written(&task, &answer);
            (answer, written)
        });
        Answered {
            done: CompletedTask {
                id: task.id,
                action: task.action,
                status: answer.reply.status,
                payload: written.payload,
                account: written.account,
                result: written.result,
            },
            slot: answer.slot,
            error: answer.error,
            took: started.elapsed(),
        }
    }

    /// The task's answer, and the texts that carry it.
    async fn answer_written(
        &self,
        task: &IncomingTask,
        interrupt: &CancellationToken,
    ) -> (Answer, Written) {
        let (Ok(answer) | Err(answer)) = self.answer(task, interrupt).await;
        let written = self.written(task, &answer);
        (answer, written)
    }

    /// The texts of the `TaskResult` that carries `answer` to `task`.
    fn written(&self, task: &IncomingTask, answer: &Answer) -> Written {
        // A task too large to read is not echoed either: the result would be larger still.
        let too_large = task.input_bytes() > self.max_task_bytes;
        Written {
            payload: json_text(&task.payload, "{}", too_large),
            account: json_text(&task.account, "{}", too_large),
            result: self.envelope_text(&answer.reply, &task.action),
        }
    }

    /// The pipeline. Each stage passes the task on, or answers it (`Err`) and ends it there.
    async fn answer(
        &self,
        task: &IncomingTask,
        interrupt: &CancellationToken,
    ) -> Result<Answer, Answer> {
        let job = self.find_action(task, interrupt)?;
        let input = self.parse_and_validate(&job).await?;
        if let Some(cache) = &job.action.cache {
            // Boxed: the tasks of actions that do not cache keep a future of the same size.
            return Box::pin(self.answer_cached(&job, cache, input)).await;
        }
        let response = self.admit_and_run(&job, input).await?;
        Ok(self.envelope_of(&job, response))
    }

    /// A task of an action that caches: answered with the kept answer (no run, no rate-limit
    /// budget spent), or by one run of the action shared by every identical task arriving
    /// meanwhile, whose `success` is kept.
    async fn answer_cached(
        &self,
        job: &Job<'_>,
        cache: &ActionCache,
        input: Input,
    ) -> Result<Answer, Answer> {
        let hash = match cache.key_of(&input.payload, input.account.as_ref()) {
            Ok(hash) => hash,
            Err(reason) => {
                tracing::debug!(reason = %Escaped(&reason), "the cache key function refused the task: it runs uncached");
                let response = self.admit_and_run(job, input).await?;
                return Ok(self.envelope_of(job, response));
            }
        };
        let refresh = cache.refresh_requested(&input.payload);
        if !refresh {
            let counted = match self.within_task(job, cache.lookup(&hash)).await? {
                Lookup::Hit(kept) => {
                    self.metrics.cache_looked_up(job.slot, CacheLookup::Hit);
                    return Ok(self.cached_answer(job, cache, kept));
                }
                Lookup::Miss => CacheLookup::Miss,
                Lookup::Failed => CacheLookup::Error,
            };
            self.metrics.cache_looked_up(job.slot, counted);
        }
        let lead = loop {
            match cache.flights.join(&hash) {
                flight::Role::Leader(lead) => break lead,
                flight::Role::Waiter(flight) => {
                    // `None`: the leader ended without an answer; join again, maybe to lead.
                    if let Some(response) = self.within_task(job, flight::wait(flight)).await? {
                        return Ok(self.envelope_of(job, response));
                    }
                }
            }
        };
        // An identical task may have kept its answer between the lookup and the lead.
        if !refresh && let Lookup::Hit(kept) = self.within_task(job, cache.lookup(&hash)).await? {
            lead.land(ActionResponse::with_status(
                Status::Success,
                kept.message.clone(),
                kept.response.clone(),
            ));
            return Ok(self.cached_answer(job, cache, kept));
        }
        // A task that took the lead from one that ran out of time may be out of time too.
        if Instant::now() >= job.deadline {
            return Err(self.timed_out(job));
        }
        // An `Err` (limit, timeout, panic) drops the lead: a waiter takes it and runs.
        let response = self.admit_and_run(job, input).await?;
        if response.status() == Status::Success {
            cache.keep(&hash, &response).await;
        }
        lead.land(response.clone());
        Ok(self.envelope_of(job, response))
    }

    /// `work`, unless the task runs out of time or is interrupted first.
    async fn within_task<T>(
        &self,
        job: &Job<'_>,
        work: impl Future<Output = T>,
    ) -> Result<T, Answer> {
        tokio::select! {
            biased;
            done = work => Ok(done),
            () = tokio::time::sleep_until(job.deadline) => Err(self.timed_out(job)),
            () = job.interrupt.cancelled() => Err(self.interrupted(job)),
        }
    }

    /// A kept answer in its envelope, marked as a cache hit.
    fn cached_answer(&self, job: &Job<'_>, cache: &ActionCache, kept: Kept) -> Answer {
        let mut response = kept.response;
        if let (Some(field), Some(fields)) = (&cache.hit_mark, response.as_object_mut()) {
            fields.insert(field.clone(), Value::Bool(true));
        }
        let response = ActionResponse::with_status(Status::Success, kept.message, response);
        let mut answer = self.envelope_of(job, response);
        answer.reply.cached_at = Some(kept.stored_at);
        answer
    }

    /// Spends the task's budget and runs the action: what a task with valid input costs. An
    /// action that declares retries runs again, each time within the budget, while it fails
    /// with a transient error.
    async fn admit_and_run(&self, job: &Job<'_>, input: Input) -> Result<ActionResponse, Answer> {
        if let Some(limit) = &job.action.limit {
            self.admit(job, limit, &input).await?;
        }
        match &job.action.spec.retry {
            None => self.run_action(job, input).await,
            // Boxed, so that the state of every task's future does not carry the retries'.
            Some(retry) => Box::pin(self.run_with_retries(job, retry, input)).await,
        }
    }

    /// Runs the admitted action up to `retry`'s attempts: again after a transient error (or an
    /// attempt that overran `attempt_timeout`), after the policy's wait, and admitted by the
    /// rate limit again. Stops at the first answer that is not a transient failure, when the
    /// attempts run out, or when the next wait would end past the deadline; an error answered
    /// then carries `attempts` in its details. What ends the task (its timeout, shutdown, a
    /// panic, input its types refuse) is answered as for one try.
    async fn run_with_retries(
        &self,
        job: &Job<'_>,
        retry: &RetrySpec,
        input: Input,
    ) -> Result<ActionResponse, Answer> {
        let attempts = retry.policy.max_attempts();
        let mut input = Some(input);
        let mut attempt = 1;
        loop {
            let this_input = if attempt < attempts {
                input.clone()
            } else {
                input.take()
            }
            .expect("the input is taken only by the last attempt");
            let attempt_deadline = retry.attempt_timeout.map_or(job.deadline, |limit| {
                job.deadline.min(Instant::now() + limit)
            });
            let failure = match self.run_until(job, this_input, attempt_deadline).await? {
                Some(response) if response.is_transient() => Failure::Answered(response),
                Some(response) => return Ok(with_attempts(response, attempt)),
                None if attempt_deadline < job.deadline => {
                    Failure::Overran(attempt_timed_out(attempt, retry))
                }
                None => return Err(self.timed_out(job)),
            };
            if attempt == attempts {
                return self.gave_up(job, failure, attempt);
            }
            let wait = pause(
                retry.policy.ceiling(attempt),
                failure.response().retry_after(),
            );
            if Instant::now() + wait >= job.deadline {
                return self.gave_up(job, failure, attempt);
            }
            tracing::warn!(
                attempt,
                attempts,
                wait = ?wait,
                error = %Escaped(failure.response().message().unwrap_or_default()),
                "the action failed with a transient error; it runs again after the wait"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = job.interrupt.cancelled() => return Err(self.interrupted(job)),
            }
            if let Some(limit) = &job.action.limit {
                let admitted = input.as_ref().expect("kept for the attempts left");
                self.admit(job, limit, admitted).await?;
            }
            self.metrics.action_retried(job.slot);
            attempt += 1;
        }
    }

    /// The task's action, and its clock started; a task too large to read, or one that names
    /// no action, is answered here.
    // Inlined into the pipeline, as it was before the stages had names: 1% of an echo task.
    #[inline]
    fn find_action<'a>(
        &'a self,
        task: &'a IncomingTask,
        interrupt: &'a CancellationToken,
    ) -> Result<Job<'a>, Answer> {
        let size = task.input_bytes();
        if size > self.max_task_bytes {
            let reply = Reply::new(
                Status::Error,
                format!(
                    "Task too large: {size} bytes, limit {}",
                    self.max_task_bytes
                ),
                json!({
                    "error": format!(
                        "the task's payload and account hold {size} bytes; this provider reads at most {} (PROVIDER_MAX_TASK_BYTES)",
                        self.max_task_bytes
                    ),
                    "error_code": "TASK_TOO_LARGE",
                    "size_bytes": size,
                    "limit_bytes": self.max_task_bytes,
                }),
            );
            return Err(Answer {
                reply,
                slot: self.slot_of(&task.action),
                error: Some(ErrorKind::BadTask),
            });
        }
        let Some(&index) = self.by_name.get(task.action.as_str()) else {
            let action_name = shorten(&task.action, MAX_ECHOED_BYTES);
            let reply = Reply::new(
                Status::Error,
                format!("Action '{action_name}' not found"),
                json!({ "available_actions": self.available }),
            );
            return Err(Answer {
                reply,
                slot: ActionSlot(self.actions.len()),
                error: Some(ErrorKind::UnknownAction),
            });
        };
        let action = &self.actions[index];
        let timeout = action.spec.timeout.unwrap_or(self.default_timeout);
        Ok(Job {
            task,
            action,
            slot: ActionSlot(index),
            timeout,
            deadline: Instant::now() + timeout,
            interrupt,
        })
    }

    /// Parses the task's payload and account and checks them against the action's schemas: on
    /// this thread when they are small, on the blocking pool when large.
    async fn parse_and_validate(&self, job: &Job<'_>) -> Result<Input, Answer> {
        let task = job.task;
        let read = if task.input_bytes() <= INLINE_INPUT_BYTES {
            read_input(&task.payload, &task.account, &job.action.schemas)
        } else {
            // Boxed, so that the state of every task's future does not carry this rare path's
            // (a semaphore wait, a blocking read, a timer).
            Box::pin(self.read_large_input(job)).await?
        };
        read.map_err(|rejection| self.refused(job, rejection))
    }

    /// [`read_input`] on the blocking pool, one per core at once, within the task's deadline. A
    /// read that overruns is answered with the timeout; it finishes in the background, which is
    /// bounded because checking is linear and its lists are capped.
    async fn read_large_input(&self, job: &Job<'_>) -> Result<Result<Input, Rejection>, Answer> {
        let (payload, account) = (job.task.payload.clone(), job.task.account.clone());
        let schemas = job.action.schemas.clone();
        let large_inputs = self.large_inputs.clone();
        let reading = async move {
            let permit = large_inputs
                .acquire_owned()
                .await
                .expect("the dispatcher never closes its semaphore");
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                read_input(&payload, &account, &schemas)
            })
            .await
        };
        tokio::select! {
            biased;
            read = reading => read.map_err(|join| self.read_failed(job, join)),
            () = tokio::time::sleep_until(job.deadline) => Err(self.timed_out(job)),
            () = job.interrupt.cancelled() => Err(self.interrupted(job)),
        }
    }

    /// Spends budget for the task, or answers `limit`. Only a task that would run gets here,
    /// so unknown actions and invalid payloads spend nothing.
    async fn admit(
        &self,
        job: &Job<'_>,
        limit: &CompiledLimit,
        input: &Input,
    ) -> Result<(), Answer> {
        let key = limit
            .per
            .as_ref()
            .map(|per| per.key(&input.payload, input.account.as_ref()))
            .unwrap_or_default();
        loop {
            let (wait, mut figures) = match limit.monitor.check(&key).await {
                Decision::Admitted(_) => {
                    self.metrics.rate_limit_decided(job.slot, true);
                    return Ok(());
                }
                Decision::Limited { wait, figures } => (wait, figures),
            };
            if limit.wait && Instant::now() + wait < job.deadline {
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = job.interrupt.cancelled() => {}
                }
            }
            if !key.is_empty() {
                figures.insert("key".into(), Value::String(key));
            }
            self.metrics.rate_limit_decided(job.slot, false);
            return Err(self.envelope_of(job, ActionResponse::limit_with(wait, figures)));
        }
    }

    /// Runs the action within the task's deadline and catches its panic. What cuts it short
    /// (the deadline, shutdown, a panic, input its types refuse) is answered here.
    async fn run_action(&self, job: &Job<'_>, input: Input) -> Result<ActionResponse, Answer> {
        match self.run_until(job, input, job.deadline).await? {
            Some(response) => Ok(response),
            None => Err(self.timed_out(job)),
        }
    }

    /// Runs the action until `stop` (at most the task's deadline) and catches its panic: its
    /// response, or `None` when `stop` came first (its context is then cancelled and the
    /// action dropped). Shutdown, a panic and input its types refuse are answered here.
    async fn run_until(
        &self,
        job: &Job<'_>,
        input: Input,
        stop: Instant,
    ) -> Result<Option<ActionResponse>, Answer> {
        let mut context = Context::until(
            job.task.id.clone(),
            job.action.name.clone(),
            self.provider_name.clone(),
            self.timezone.clone(),
            stop,
        );
        if self.cache.is_attached() {
            context = context.with_cache(&self.cache);
        }
        let call = Call::new(input.payload, input.account, context.clone());
        let running = AssertUnwindSafe((job.action.run)(call)).catch_unwind();
        let outcome = tokio::select! {
            biased;
            outcome = running => outcome,
            () = tokio::time::sleep_until(stop) => {
                context.cancel();
                return Ok(None);
            }
            () = job.interrupt.cancelled() => {
                context.cancel();
                return Err(self.interrupted(job));
            }
        };
        match outcome {
            Ok(Ok(response)) => Ok(Some(response)),
            Ok(Err(invalid)) => {
                // serde's messages quote the offending value.
                let violations =
                    Violations::single(shorten(&invalid.message, MAX_ERROR_MESSAGE_BYTES));
                Err(self.invalid(job, invalid.part, &violations))
            }
            Err(panic) => Err(self.panicked(job, panic.as_ref())),
        }
    }

    /// The action's response, in its envelope; an error it answers with is an action error.
    fn envelope_of(&self, job: &Job<'_>, response: ActionResponse) -> Answer {
        let (status, message, response) = response.into_parts();
        let reply = Reply::new(status, message.unwrap_or_default(), response);
        let error = (status == Status::Error).then_some(ErrorKind::ActionError);
        Answer {
            reply,
            slot: job.slot,
            error,
        }
    }

    /// An answer that stopped the task with an error of `kind`.
    fn stopped(job: &Job<'_>, kind: ErrorKind, reply: Reply) -> Answer {
        Answer {
            reply,
            slot: job.slot,
            error: Some(kind),
        }
    }

    /// The answer to input that could not be read or does not fit the action's schemas.
    fn refused(&self, job: &Job<'_>, rejection: Rejection) -> Answer {
        match rejection {
            Rejection::Unparsable { part, error } => {
                let reply = Reply::new(
                    Status::Error,
                    "Failed to parse task data".to_owned(),
                    json!({
                        "error": format!(
                            "{} is not valid JSON: {}",
                            part_name(part),
                            shorten(&error, MAX_ECHOED_BYTES)
                        ),
                    }),
                );
                Self::stopped(job, ErrorKind::BadTask, reply)
            }
            Rejection::AccountMissing => {
                let reply = Reply::new(
                    Status::Error,
                    "Account data is required but not provided".to_owned(),
                    json!({
                        "errors": [{"path": "", "message": "the task has no account"}],
                        "errors_omitted": 0,
                        "missing_params": [],
                        "missing_params_omitted": 0,
                        "schema": job.action.schemas.of(InputPart::Account),
                    }),
                );
                Self::stopped(job, ErrorKind::InvalidAccount, reply)
            }
            Rejection::Invalid { part, violations } => self.invalid(job, part, &violations),
        }
    }

    fn invalid(&self, job: &Job<'_>, part: InputPart, violations: &Violations) -> Answer {
        let reply = Reply::new(
            Status::Error,
            format!("Invalid {}: {}", part_name(part), violations.summary()),
            json!({
                "errors": violations.errors,
                "errors_omitted": violations.errors_omitted,
                "missing_params": violations.missing,
                "missing_params_omitted": violations.missing_omitted,
                "schema": job.action.schemas.of(part),
            }),
        );
        let kind = match part {
            InputPart::Payload => ErrorKind::InvalidPayload,
            InputPart::Account => ErrorKind::InvalidAccount,
        };
        Self::stopped(job, kind, reply)
    }

    /// The blocking pool could not read a large input: its thread panicked, or the runtime is
    /// shutting down.
    fn read_failed(&self, job: &Job<'_>, join: JoinError) -> Answer {
        let message = if join.is_panic() {
            panic_message(join.into_panic().as_ref())
        } else {
            "the runtime is shutting down".to_owned()
        };
        let reply = Reply::new(
            Status::Error,
            format!("Failed to read the task's input: {message}"),
            json!({ "error": message }),
        );
        Self::stopped(job, ErrorKind::BadTask, reply)
    }

    /// The last transient failure of an action that will not run again, as its answer: the
    /// error with `attempts` in its details. An attempt that overran is answered here, counted
    /// as a timeout.
    fn gave_up(
        &self,
        job: &Job<'_>,
        failure: Failure,
        attempts: u32,
    ) -> Result<ActionResponse, Answer> {
        match failure {
            Failure::Answered(response) => Ok(with_attempts(response, attempts)),
            Failure::Overran(response) => Err(Answer {
                error: Some(ErrorKind::Timeout),
                ..self.envelope_of(job, with_attempts(response, attempts))
            }),
        }
    }

    fn timed_out(&self, job: &Job<'_>) -> Answer {
        let reply = Reply::new(
            Status::Error,
            format!(
                "Task execution timed out after {}s",
                format_seconds(job.timeout.as_secs_f64())
            ),
            json!({ "timeout_s": job.timeout.as_secs_f64() }),
        );
        Self::stopped(job, ErrorKind::Timeout, reply)
    }

    fn interrupted(&self, job: &Job<'_>) -> Answer {
        let reply = Reply::new(
            Status::Error,
            "Task interrupted: the provider shut down before the action finished".to_owned(),
            json!({ "error": "the provider's drain timeout ran out during shutdown", "error_code": "SHUTDOWN" }),
        );
        Self::stopped(job, ErrorKind::Shutdown, reply)
    }

    fn panicked(&self, job: &Job<'_>, panic: &(dyn std::any::Any + Send)) -> Answer {
        let message = panic_message(panic);
        tracing::error!(panic = %Escaped(&message), "action panicked");
        let reply = Reply::new(
            Status::Error,
            format!("Action panicked: {message}"),
            json!({ "error": message }),
        );
        Self::stopped(job, ErrorKind::Panic, reply)
    }

    /// `reply`'s envelope for a task of action `action` (cut to [`MAX_ECHOED_BYTES`]: a name
    /// from the hub no action declares may be any length).
    fn envelope_text(&self, reply: &Reply, action: &str) -> String {
        reply.to_json(
            &self.provider_name,
            &shorten(action, MAX_ECHOED_BYTES),
            &self.timezone,
        )
    }
}

/// A try of an action that declares retries, failed in a way worth another.
enum Failure {
    /// The action answered with a transient error.
    Answered(ActionResponse),
    /// The try overran `attempt_timeout`: its error, made by [`attempt_timed_out`].
    Overran(ActionResponse),
}

impl Failure {
    fn response(&self) -> &ActionResponse {
        match self {
            Failure::Answered(response) | Failure::Overran(response) => response,
        }
    }
}

/// The `error_code` of a try that overran its action's `attempt_timeout`.
const ATTEMPT_TIMEOUT: &str = "ATTEMPT_TIMEOUT";

/// A try that overran `retry.attempt_timeout`, as the transient failure it counts as.
fn attempt_timed_out(attempt: u32, retry: &RetrySpec) -> ActionResponse {
    let limit = retry.attempt_timeout.unwrap_or_default();
    ActionResponse::from_error(
        ActionError::new(format!(
            "attempt {attempt} timed out after {}s",
            format_seconds(limit.as_secs_f64())
        ))
        .with_code(ATTEMPT_TIMEOUT)
        .with_details(json!({ "attempt_timeout_s": limit.as_secs_f64() }))
        .transient(),
    )
}

/// An error answer of an action that declares retries, with the tries made in its details:
/// `null` details become `{"attempts": n}`, an object gets an `attempts` entry, any other
/// value moves under `value`. Other answers, and an error whose response is not an object (an
/// [`ActionResponse::with_status`] of the action's own making), are left as they are.
fn with_attempts(mut response: ActionResponse, attempts: u32) -> ActionResponse {
    if response.status() != Status::Error {
        return response;
    }
    let Some(fields) = response.response_mut().as_object_mut() else {
        return response;
    };
    let details = fields.entry("details").or_insert(Value::Null);
    match details {
        Value::Null => *details = json!({ "attempts": attempts }),
        Value::Object(entries) => {
            entries.insert("attempts".into(), json!(attempts));
        }
        other => *other = json!({ "value": other.take(), "attempts": attempts }),
    }
    response
}

/// What an action's rate limit is chosen from.
#[derive(Clone, Copy)]
struct Limits<'a> {
    provider_name: &'a str,
    /// The provider's default, for an action that declares none.
    default: Option<&'a Arc<dyn RateLimitMonitor>>,
}

/// Compiles one action: its schemas, its rate limit and `per` key, and its handler.
fn compile_action<P: Send + Sync + 'static>(
    provider: &Arc<P>,
    def: ActionDef<P>,
    limits: Limits<'_>,
    cache: Option<Arc<ActionCache>>,
    blocking: &BlockingThreads,
) -> Result<CompiledAction, DefinitionError> {
    let spec = def.spec().clone();
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
    let schemas = InputSchemas {
        payload: compile(&spec.payload_schema, "payload")?,
        account: compile(&spec.account_schema, "account")?.map(SchemaValidator::masked),
        account_required: spec.account_required,
    };
    let monitor = match &spec.rate_limit {
        LimitSetting::Inherit => limits.default.cloned(),
        LimitSetting::Off => None,
        LimitSetting::Monitor(monitor) => {
            monitor.attach(limits.provider_name);
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
            reason: reason.to_string(),
        })?;
    let limit = monitor.map(|monitor| CompiledLimit {
        monitor,
        per,
        wait: spec.on_limit == OnLimit::Wait,
    });
    let run = erase(provider.clone(), def.handler().clone(), blocking);
    Ok(CompiledAction {
        name: Arc::from(spec.name.as_ref()),
        spec,
        schemas,
        limit,
        cache,
        run,
    })
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
        let span = tracing::Span::current();
        let spawned = std::thread::Builder::new()
            .name("arbv-blocking".to_owned())
            .spawn(move || {
                let _in_task = span.enter();
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
                ran_for = ?ran_for,
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
                held,
                limit = self.0.limit,
                "a blocking action outlived its task (timeout or shutdown): its thread cannot be stopped and holds a blocking slot until it returns"
            );
        }
    }
}

/// Why a task's input was refused before its action ran.
enum Rejection {
    Unparsable {
        part: InputPart,
        error: String,
    },
    AccountMissing,
    Invalid {
        part: InputPart,
        violations: Violations,
    },
}

fn part_name(part: InputPart) -> &'static str {
    match part {
        InputPart::Payload => "payload",
        InputPart::Account => "account",
    }
}

/// Parses the input, then checks it. No async in here: a large input runs this on the
/// blocking pool.
fn read_input(payload: &[u8], account: &[u8], schemas: &InputSchemas) -> Result<Input, Rejection> {
    let input = parse_input(payload, account)?;
    validate_input(&input, schemas)?;
    Ok(input)
}

/// Parses the payload (empty reads as `{}`) and the account (empty is none).
fn parse_input(payload: &[u8], account: &[u8]) -> Result<Input, Rejection> {
    let payload = parse_json(payload)
        .map_err(|error| Rejection::Unparsable {
            part: InputPart::Payload,
            error,
        })?
        .unwrap_or_else(|| json!({}));
    let account = parse_json(account).map_err(|error| Rejection::Unparsable {
        part: InputPart::Account,
        error,
    })?;
    Ok(Input { payload, account })
}

/// Checks the payload, then the account, against their schemas.
fn validate_input(input: &Input, schemas: &InputSchemas) -> Result<(), Rejection> {
    if let Some(validator) = &schemas.payload {
        validator
            .check(&input.payload)
            .map_err(|violations| Rejection::Invalid {
                part: InputPart::Payload,
                violations,
            })?;
    }
    match (&input.account, &schemas.account) {
        (None, Some(_)) if schemas.account_required => Err(Rejection::AccountMissing),
        (Some(account), Some(validator)) => {
            validator
                .check(account)
                .map_err(|violations| Rejection::Invalid {
                    part: InputPart::Account,
                    violations,
                })
        }
        _ => Ok(()),
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

/// The task's input as JSON text for the `TaskResult`; input too large to repeat is replaced by
/// `{"omitted_bytes": N}`, the same marker the worker uses for a result still too large.
fn json_text(bytes: &[u8], empty: &str, too_large: bool) -> String {
    if too_large {
        return omitted(bytes.len());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return empty.to_owned();
    }
    // `from_utf8_lossy` checks byte by byte; `from_utf8` checks ASCII a word at a time, ~10 ×
    // faster on a large payload, and the input is nearly always valid.
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A panic's message, for a log line and an answer.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "the action panicked with a value that is not a string".to_owned()
    }
}

/// The `error_code` of the answer that replaces a result too large for the hub.
pub(crate) const RESULT_TOO_LARGE: &str = "RESULT_TOO_LARGE";

/// Answers the worker builds in place of one it cannot deliver or could not make.
impl Dispatcher {
    /// A small `error` answer in place of `done`, whose encoded result is `bytes` long, over
    /// `limit` (the configured one, or the hub refused it: `hub_answer` says how). Payload and
    /// account are kept; [`CompletedTask::omit_inputs`] drops them when they alone are too large.
    pub(crate) fn result_too_large(
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
        let reply = Reply::new(
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
            status: reply.status,
            payload: done.payload.clone(),
            account: done.account.clone(),
            result: self.envelope_text(&reply, &done.action),
        }
    }

    /// The `error` answer for a task whose dispatch panicked outside the action (the action's
    /// own panics are answered as the action's).
    fn panicked_outside(&self, task: &IncomingTask, message: &str) -> Answer {
        Answer {
            reply: Reply::new(
                Status::Error,
                format!("Internal error while running the task: {message}"),
                json!({ "error": message, "error_code": "INTERNAL" }),
            ),
            slot: self.slot_of(&task.action),
            error: Some(ErrorKind::Panic),
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
        let done = dispatcher
            .dispatch(task, &CancellationToken::new())
            .await
            .done;
        serde_json::from_str(&done.result).unwrap()
    }

    /// A user's rate limit that panics: a panic outside the action.
    struct PanickingLimit;

    impl RateLimitMonitor for PanickingLimit {
        fn check<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Decision> {
            Box::pin(async { panic!("the monitor broke") })
        }

        fn describe(&self) -> Value {
            json!({ "type": "panicking" })
        }
    }

    struct Guarded;

    impl Provider for Guarded {
        fn definition() -> ProviderDef<Self> {
            let mut def = ProviderDef::new("guarded");
            def.action("echo", |_this, _call| async {
                Ok(ActionResponse::success(Value::Null))
            })
            .rate_limit(PanickingLimit);
            def
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_outside_the_action_is_answered_internal_with_the_task_echoed() {
        let config = Config::builder().auth_token("t").build().unwrap();
        let dispatcher = Dispatcher::new(Guarded, &config).unwrap();
        let task = IncomingTask {
            id: "task-7".into(),
            action: "echo".into(),
            payload: bytes::Bytes::from_static(br#"{"m":1}"#),
            account: bytes::Bytes::new(),
        };
        let answered = dispatcher.dispatch(task, &CancellationToken::new()).await;
        assert_eq!(answered.error, Some(ErrorKind::Panic));
        let done = answered.done;
        assert_eq!((done.id.as_str(), done.action.as_str()), ("task-7", "echo"));
        assert_eq!(done.payload, r#"{"m":1}"#);
        assert_eq!(done.status, Status::Error);
        let envelope: Value = serde_json::from_str(&done.result).unwrap();
        assert_eq!(
            envelope["data"]["response"]["error_code"], "INTERNAL",
            "{envelope}"
        );
        assert!(
            envelope["data"]["response"]["error"]
                .as_str()
                .unwrap()
                .contains("the monitor broke"),
            "{envelope}"
        );
    }

    /// A type whose hand-written schema misspells a type name.
    struct Misspelt;

    impl schemars::JsonSchema for Misspelt {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "Misspelt".into()
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({"type": "object", "properties": {"n": {"type": "integr"}}})
        }
    }

    /// A type whose hand-written schema breaks the meta-schema's pattern for `$anchor`.
    struct BadAnchor;

    impl schemars::JsonSchema for BadAnchor {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "BadAnchor".into()
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({"$anchor": "1 not an anchor", "type": "object"})
        }
    }

    struct Unusable<const ACCOUNT: bool>;

    impl<const ACCOUNT: bool> Provider for Unusable<ACCOUNT> {
        fn definition() -> ProviderDef<Self> {
            let mut def = ProviderDef::new("unusable");
            let action = def.action("lookup", |_this, _call| async {
                Ok(ActionResponse::success(Value::Null))
            });
            if ACCOUNT {
                action.account::<BadAnchor>();
            } else {
                action.payload::<Misspelt>();
            }
            def
        }
    }

    #[test]
    fn a_schema_its_meta_schema_refuses_stops_the_provider_naming_the_action_and_part() {
        let config = Config::builder().auth_token("t").build().unwrap();
        for (refused, part, says) in [
            (
                Dispatcher::new(Unusable::<false>, &config).err(),
                "payload",
                "integr",
            ),
            (
                Dispatcher::new(Unusable::<true>, &config).err(),
                "account",
                "1 not an anchor",
            ),
        ] {
            let Some(DefinitionError::Schema {
                action,
                part: named,
                reason,
            }) = refused
            else {
                panic!("the {part} schema was taken: {refused:?}");
            };
            assert_eq!((action.as_str(), named), ("lookup", part));
            assert!(reason.contains(says), "{part}: {reason}");
        }
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

    /// The same schema for the payload and the account.
    fn schemas(schema: Option<&SchemaValidator>, account_required: bool) -> InputSchemas {
        InputSchemas {
            payload: schema.cloned(),
            account: schema.cloned(),
            account_required,
        }
    }

    fn nested(depth: usize) -> Vec<u8> {
        let mut text = "[".repeat(depth).into_bytes();
        text.extend(std::iter::repeat_n(b']', depth));
        text
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        let deep = nested(100_000);
        let error = parse_json(&deep).unwrap_err();
        assert!(error.contains("recursion limit"), "{error}");
        match read_input(b"{}", &deep, &schemas(None, false)) {
            Err(Rejection::Unparsable {
                part: InputPart::Account,
                error,
            }) => assert!(error.contains("recursion limit"), "{error}"),
            _ => panic!("a 100k-deep account is refused"),
        }
        // Nesting within the limit parses.
        assert!(parse_json(&nested(100)).unwrap().is_some());
    }

    fn echo_dispatcher(max_task_bytes: usize) -> Dispatcher {
        let mut def = ProviderDef::<()>::new("sizes");
        def.action("echo", |_this, call| async move {
            Ok(ActionResponse::success(call_payload(call)))
        });
        let config = Config::builder()
            .auth_token("t")
            .max_task_bytes(max_task_bytes)
            .build()
            .unwrap();
        Dispatcher::from_definition(Arc::new(()), def, &config).unwrap()
    }

    fn call_payload(mut call: Call) -> Value {
        call.payload::<Value>().unwrap()
    }

    fn task(action: &str, payload: &str, account: &str) -> IncomingTask {
        IncomingTask {
            id: "t-1".into(),
            action: action.into(),
            payload: bytes::Bytes::from(payload.to_owned()),
            account: bytes::Bytes::from(account.to_owned()),
        }
    }

    #[tokio::test]
    async fn a_task_over_the_limit_is_answered_unread_and_not_echoed() {
        let dispatcher = echo_dispatcher(16);
        let stop = CancellationToken::new();
        let done = dispatcher
            .dispatch(task("echo", r#"{"m": "0123456789"}"#, "{}"), &stop)
            .await
            .done;
        assert_eq!(done.status, Status::Error);
        assert_eq!(
            (done.payload.as_str(), done.account.as_str()),
            (r#"{"omitted_bytes":19}"#, r#"{"omitted_bytes":2}"#)
        );
        let envelope: Value = serde_json::from_str(&done.result).unwrap();
        assert_eq!(envelope["message"], "Task too large: 21 bytes, limit 16");
        assert_eq!(envelope["data"]["response"]["error_code"], "TASK_TOO_LARGE");
        // At the limit, the task is read, run and echoed.
        let done = dispatcher
            .dispatch(task("echo", r#"{"m": "0123"}"#, "{}"), &stop)
            .await
            .done;
        assert_eq!(done.status, Status::Success, "{}", done.result);
        assert_eq!(done.payload, r#"{"m": "0123"}"#);
    }

    #[tokio::test]
    async fn an_unknown_action_name_is_cut_in_the_answer() {
        let dispatcher = echo_dispatcher(1 << 20);
        let name = "x".repeat(100_000);
        let done = dispatcher
            .dispatch(task(&name, "{}", ""), &CancellationToken::new())
            .await
            .done;
        assert!(done.result.len() < 2048, "{}", done.result.len());
        let envelope: Value = serde_json::from_str(&done.result).unwrap();
        let message = envelope["message"].as_str().unwrap();
        assert!(
            message.ends_with("… (100000 bytes in all)' not found"),
            "{message}"
        );
        // The hub gets its own action name back in the TaskResult.
        assert_eq!(done.action, name);
    }

    #[tokio::test]
    async fn a_large_input_gets_the_same_answers_from_the_blocking_pool() {
        let dispatcher = echo_dispatcher(1 << 20);
        let big = format!(r#"{{"m": "{}"}}"#, "y".repeat(INLINE_INPUT_BYTES));
        let done = dispatcher
            .dispatch(task("echo", &big, ""), &CancellationToken::new())
            .await
            .done;
        assert_eq!(done.status, Status::Success, "{}", done.result);
        let bad = format!("[{}", " ".repeat(INLINE_INPUT_BYTES));
        let done = dispatcher
            .dispatch(task("echo", &bad, ""), &CancellationToken::new())
            .await
            .done;
        let envelope: Value = serde_json::from_str(&done.result).unwrap();
        assert_eq!(envelope["message"], "Failed to parse task data");
    }

    /// A cached action whose first run never ends; later runs answer at once.
    fn hanging_once_dispatcher(runs: Arc<AtomicUsize>) -> Dispatcher {
        let mut def = ProviderDef::<()>::new("cached");
        def.action("forecast", move |_this, _call| {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run == 1 {
                    std::future::pending::<()>().await;
                }
                Ok(ActionResponse::success(json!({ "run": run })))
            }
        })
        .cache(crate::CacheSpec::new(Duration::from_secs(60)));
        let config = Config::builder().auth_token("t").build().unwrap();
        Dispatcher::from_definition(Arc::new(()), def, &config).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_task_runs_the_action_when_the_running_one_is_dropped() {
        let runs = Arc::new(AtomicUsize::new(0));
        let dispatcher = Arc::new(hanging_once_dispatcher(runs.clone()));
        let stop = CancellationToken::new();
        let leader = {
            let (dispatcher, stop) = (dispatcher.clone(), stop.clone());
            tokio::spawn(async move {
                dispatcher
                    .dispatch(task("forecast", r#"{"city": "Oslo"}"#, ""), &stop)
                    .await
            })
        };
        tokio::task::yield_now().await;
        let waiter = {
            let (dispatcher, stop) = (dispatcher.clone(), stop.clone());
            tokio::spawn(async move {
                dispatcher
                    .dispatch(task("forecast", r#"{"city":"Oslo"}"#, ""), &stop)
                    .await
                    .done
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the second task waits");
        leader.abort();
        let done = waiter.await.unwrap();
        assert_eq!(done.status, Status::Success, "{}", done.result);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let hit = dispatcher
            .dispatch(task("forecast", r#"{"city": "Oslo"}"#, ""), &stop)
            .await
            .done;
        let envelope: Value = serde_json::from_str(&hit.result).unwrap();
        assert_eq!(envelope["data"]["cached"], true, "{envelope}");
        assert_eq!(envelope["data"]["response"]["run"], 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_task_is_interrupted_on_its_own() {
        let runs = Arc::new(AtomicUsize::new(0));
        let dispatcher = Arc::new(hanging_once_dispatcher(runs.clone()));
        let leader = {
            let dispatcher = dispatcher.clone();
            tokio::spawn(async move {
                dispatcher
                    .dispatch(task("forecast", "{}", ""), &CancellationToken::new())
                    .await
            })
        };
        tokio::task::yield_now().await;
        let interrupt = CancellationToken::new();
        let waiter = {
            let (dispatcher, interrupt) = (dispatcher.clone(), interrupt.clone());
            tokio::spawn(async move {
                dispatcher
                    .dispatch(task("forecast", "{}", ""), &interrupt)
                    .await
                    .done
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        interrupt.cancel();
        let done = waiter.await.unwrap();
        assert_eq!(done.status, Status::Error);
        assert!(done.result.contains("SHUTDOWN"), "{}", done.result);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(!leader.is_finished(), "the running task goes on");
        leader.abort();
    }

    #[test]
    fn input_is_checked_payload_first_then_the_account() {
        let schema =
            SchemaValidator::compile(json!({"type": "object", "required": ["a"]})).unwrap();
        let required = schemas(Some(&schema), true);
        match read_input(b"{}", b"", &required) {
            Err(Rejection::Invalid {
                part: InputPart::Payload,
                violations,
            }) => assert_eq!(violations.missing, ["a"]),
            _ => panic!("the payload misses `a`"),
        }
        assert!(matches!(
            read_input(b"{\"a\": 1}", b" ", &required),
            Err(Rejection::AccountMissing)
        ));
        let account_only = InputSchemas {
            payload: None,
            ..required
        };
        let Ok(input) = read_input(b"", b"{\"a\": 2}", &account_only) else {
            panic!("an empty payload reads as {{}} and the account fits");
        };
        assert_eq!(
            input,
            Input {
                payload: json!({}),
                account: Some(json!({"a": 2}))
            }
        );
    }

    #[test]
    fn input_is_echoed_as_text_with_invalid_bytes_replaced() {
        assert_eq!(
            json_text("{\"a\": \"é\"}".as_bytes(), "{}", false),
            "{\"a\": \"é\"}"
        );
        assert_eq!(
            json_text(b"\"\xff\xfe\"", "{}", false),
            "\"\u{fffd}\u{fffd}\""
        );
        assert_eq!(json_text(b" \n\t", "{}", false), "{}");
        assert_eq!(json_text(b"", "{}", false), "{}");
        assert_eq!(json_text(b"[1,2]", "{}", true), r#"{"omitted_bytes":5}"#);
    }
}

#[cfg(test)]
mod retry_tests;
