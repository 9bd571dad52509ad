//! Whether the provider is ready, as `/readyz` answers: the hub answered its last call and it
//! is not draining. The worker reports every hub answer and failure here; a change of state is
//! rare, so the hot path is one atomic load and one store.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntGauge, Opts};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::telemetry::Escaped;

/// Where the provider stands with the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Hub {
    /// No call answered yet.
    Connecting = 0,
    /// The last call was answered.
    Answering = 1,
    /// The last call failed: the hub is down, unreachable or too slow.
    Unreachable = 2,
    /// The hub answered the last call by refusing the token.
    RefusesToken = 3,
}

impl Hub {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Hub::Answering,
            2 => Hub::Unreachable,
            3 => Hub::RefusesToken,
            _ => Hub::Connecting,
        }
    }
}

/// The provider's readiness, shared by the worker (which reports) and the server (which asks).
pub(crate) struct Readiness {
    hub: AtomicU8,
    /// Milliseconds from `born` to the hub's last answer, plus one (0: never).
    last_answer: AtomicU64,
    /// The last failure and when the hub stopped answering; written on a change of state only.
    failure: Mutex<Option<(String, Instant)>>,
    born: Instant,
    /// Cancelled when shutdown begins.
    draining: CancellationToken,
    metrics: Metrics,
}

impl Readiness {
    pub(crate) fn new(draining: CancellationToken, metrics: Metrics) -> Self {
        Self {
            hub: AtomicU8::new(Hub::Connecting as u8),
            last_answer: AtomicU64::new(0),
            failure: Mutex::new(None),
            born: Instant::now(),
            draining,
            metrics,
        }
    }

    fn hub(&self) -> Hub {
        Hub::from_u8(self.hub.load(Ordering::Acquire))
    }

    /// The hub answered a call (a task, "no task", a taken or refused result). True when it
    /// had failed before: it answers again.
    pub(crate) fn hub_answered(&self) -> bool {
        let since_born = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_answer.store(since_born + 1, Ordering::Relaxed);
        if self.hub() == Hub::Answering {
            return false;
        }
        let before = Hub::from_u8(self.hub.swap(Hub::Answering as u8, Ordering::AcqRel));
        if before == Hub::Answering {
            return false;
        }
        *self
            .failure
            .lock()
            .expect("never poisoned: no panics while held") = None;
        self.metrics.set_hub_connected(true);
        matches!(before, Hub::Unreachable | Hub::RefusesToken)
    }

    /// The connection to the hub is up, before any call: failures of the attempts to connect
    /// are behind, and the first failed call after it starts a new spell.
    pub(crate) fn connected(&self) {
        if self
            .hub
            .compare_exchange(
                Hub::Unreachable as u8,
                Hub::Connecting as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            *self
                .failure
                .lock()
                .expect("never poisoned: no panics while held") = None;
        }
    }

    /// A call failed: the hub could not be reached (`token_refused` false) or refused the
    /// token. `error` is what the client saw; it never holds the token. True when the hub
    /// answered (or had not been reached) before: the first failure of a spell.
    pub(crate) fn hub_failed(&self, token_refused: bool, error: &dyn std::fmt::Display) -> bool {
        let now = if token_refused {
            Hub::RefusesToken
        } else {
            Hub::Unreachable
        };
        let before = Hub::from_u8(self.hub.swap(now as u8, Ordering::AcqRel));
        let mut failure = self
            .failure
            .lock()
            .expect("never poisoned: no panics while held");
        let since = match failure.take() {
            Some((_, since)) if before != Hub::Answering => since,
            _ => Instant::now(),
        };
        *failure = Some((Escaped(error).to_string(), since));
        drop(failure);
        if before == Hub::Answering {
            self.metrics.set_hub_connected(false);
        }
        !matches!(before, Hub::Unreachable | Hub::RefusesToken)
    }

    /// Whether `/readyz` answers 200.
    pub(crate) fn is_ready(&self) -> bool {
        self.hub() == Hub::Answering && !self.draining.is_cancelled()
    }

    /// `/readyz`'s answer: ready or not, and a JSON body saying why.
    pub(crate) fn report(&self) -> (bool, Value) {
        let mut reasons = Vec::new();
        let last_answer = match self.last_answer.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                self.born
                    .elapsed()
                    .saturating_sub(Duration::from_millis(at - 1)),
            ),
        };
        if self.draining.is_cancelled() {
            reasons.push(json!({
                "reason": "draining",
                "message": "the provider is shutting down: it takes no new tasks",
            }));
        }
        let failure = self
            .failure
            .lock()
            .expect("never poisoned: no panics while held")
            .clone();
        let failing_for = |since: Instant| since.elapsed().as_secs_f64();
        match (self.hub(), failure) {
            (Hub::Answering, _) => {}
            (Hub::Connecting, None) => reasons.push(json!({
                "reason": "connecting",
                "message": "the hub has not answered yet",
                "for_s": self.born.elapsed().as_secs_f64(),
            })),
            (hub, failure) => reasons.push(json!({
                "reason": if hub == Hub::RefusesToken { "token_refused" } else { "hub_unreachable" },
                "message": failure.as_ref().map_or("", |(error, _)| error.as_str()),
                "for_s": failure.map_or(0.0, |(_, since)| failing_for(since)),
            })),
        }
        let ready = reasons.is_empty();
        let body = json!({
            "status": if ready { "ready" } else { "not_ready" },
            "reasons": reasons,
            "hub_last_answer_s_ago": last_answer.map(|ago| ago.as_secs_f64()),
        });
        (ready, body)
    }
}

/// `arbv_ready`: 1 when `/readyz` answers 200, else 0, read at each scrape, so that
/// Prometheus sees what a readiness probe sees.
pub(crate) struct ReadyGauge {
    gauge: IntGauge,
    readiness: Weak<Readiness>,
}

impl ReadyGauge {
    pub(crate) fn new(provider: &str, readiness: Weak<Readiness>) -> Self {
        let opts = Opts::new(
            "arbv_ready",
            "1 when /readyz answers 200: the hub answered the last call and the provider is not draining.",
        )
        .const_label("provider", provider);
        let gauge = IntGauge::with_opts(opts).expect("a valid name and label");
        Self { gauge, readiness }
    }
}

impl Collector for ReadyGauge {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let ready = self.readiness.upgrade().is_some_and(|r| r.is_ready());
        self.gauge.set(i64::from(ready));
        self.gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness() -> (Readiness, CancellationToken) {
        let draining = CancellationToken::new();
        let metrics = Metrics::new("p", &[], true);
        (Readiness::new(draining.clone(), metrics), draining)
    }

    fn reasons(readiness: &Readiness) -> Vec<String> {
        let (ready, body) = readiness.report();
        let reasons: Vec<String> = body["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ready, reasons.is_empty(), "{body}");
        reasons
    }

    #[test]
    fn ready_only_while_the_hub_answers_and_not_draining() {
        let (readiness, draining) = readiness();
        assert_eq!(reasons(&readiness), ["connecting"]);
        assert!(
            !readiness.hub_answered(),
            "the first answer is not a recovery"
        );
        assert!(reasons(&readiness).is_empty());
        assert!(readiness.hub_failed(false, &"connection refused"));
        assert!(!readiness.hub_failed(false, &"connection refused"));
        assert_eq!(reasons(&readiness), ["hub_unreachable"]);
        assert!(readiness.hub_answered(), "answering again after failing");
        assert!(readiness.hub_failed(true, &"token refused"));
        assert_eq!(reasons(&readiness), ["token_refused"]);
        readiness.hub_answered();
        assert!(readiness.is_ready());
        draining.cancel();
        assert_eq!(reasons(&readiness), ["draining"]);
        assert!(!readiness.is_ready());
    }

    #[test]
    fn failed_connection_attempts_are_the_reason_until_the_connection_is_up() {
        let (readiness, _draining) = readiness();
        readiness.hub_failed(false, &"tcp connect error: connection refused");
        let (_, body) = readiness.report();
        assert_eq!(body["reasons"][0]["reason"], "hub_unreachable");
        assert_eq!(
            body["reasons"][0]["message"],
            "tcp connect error: connection refused"
        );
        readiness.connected();
        assert_eq!(reasons(&readiness), ["connecting"]);
        assert!(
            readiness.hub_failed(false, &"reset"),
            "the first failed call after connecting starts a spell (and is logged)"
        );
    }

    #[test]
    fn the_reason_carries_the_error_escaped_and_the_time_since_the_first_failure() {
        let (readiness, _draining) = readiness();
        readiness.hub_answered();
        readiness.hub_failed(false, &"first\nfailure");
        std::thread::sleep(Duration::from_millis(20));
        readiness.hub_failed(false, &"second");
        let (_, body) = readiness.report();
        let reason = &body["reasons"][0];
        assert_eq!(reason["message"], r"second");
        assert!(reason["for_s"].as_f64().unwrap() >= 0.02, "{body}");
        readiness.hub_failed(false, &"a\nb");
        assert_eq!(readiness.report().1["reasons"][0]["message"], r"a\nb");
        assert!(body["hub_last_answer_s_ago"].as_f64().is_some());
    }

    #[test]
    fn the_connected_gauge_follows_the_hub() {
        let (readiness, _draining) = readiness();
        let connected = || readiness.metrics.snapshot().hub_connected;
        assert!(!connected());
        readiness.hub_answered();
        assert!(connected());
        readiness.hub_failed(false, &"down");
        assert!(!connected());
    }
}
