//! The tasks the transport carries: a task as the hub sent it, and its answer ready to submit.
//! Both the worker and the hub client use these; neither needs to know how a task runs.

use serde_json::json;

use crate::envelope::Status;

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

impl IncomingTask {
    /// The size of what the task carries, payload plus account, in bytes.
    pub(crate) fn input_bytes(&self) -> usize {
        self.payload.len() + self.account.len()
    }
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

impl CompletedTask {
    /// Replaces the echoed payload and account with `{"omitted_bytes": N}`: for an answer that
    /// is still too large because the task's own input was.
    pub(crate) fn omit_inputs(&mut self) {
        for text in [&mut self.payload, &mut self.account] {
            *text = omitted(text.len());
        }
    }
}

/// What a `TaskResult` carries in place of input too large to repeat.
pub(crate) fn omitted(bytes: usize) -> String {
    json!({ "omitted_bytes": bytes }).to_string()
}
