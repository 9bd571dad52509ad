//! An exact sliding window: at most N admitted calls in any window of the period's length.
//!
//! Written here rather than taken from governor: GCRA (governor's algorithm) lets a full burst
//! through and then keeps admitting at the average rate, so a window can hold up to 2N - 1
//! calls; `"N/period"` promises at most N.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{AttachedProviders, Decision, Figures, RateLimitMonitor, RateSpec};

/// At most `count` calls in any window of `period`, and a burst of `count` at once.
pub struct SlidingWindowRateLimitMonitor {
    rate: RateSpec,
    windows: Mutex<Windows>,
    providers: AttachedProviders,
}

/// The calls still in the window: the monitor's one budget, and one per key.
#[derive(Default)]
struct Windows {
    global: VecDeque<Instant>,
    keyed: HashMap<String, VecDeque<Instant>>,
}

impl SlidingWindowRateLimitMonitor {
    /// `rate.count` calls per `rate.period`.
    pub fn new(rate: RateSpec) -> Self {
        Self {
            rate,
            windows: Mutex::default(),
            providers: AttachedProviders::default(),
        }
    }

    fn decide(&self, key: &str) -> Decision {
        let now = Instant::now();
        let limit = self.rate.count as usize;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let Windows { global, keyed } = &mut *windows;
        let calls = if key.is_empty() {
            global
        } else {
            if !keyed.contains_key(key) {
                // Drop windows that have emptied before adding one, so keys do not pile up.
                if keyed.len() >= 1024 {
                    let period = self.rate.period;
                    keyed.retain(|_, calls| {
                        calls
                            .back()
                            .is_some_and(|last| now.duration_since(*last) < period)
                    });
                }
                keyed.insert(key.to_owned(), VecDeque::with_capacity(limit.min(64)));
            }
            keyed.get_mut(key).expect("inserted above")
        };
        while calls
            .front()
            .is_some_and(|first| now.duration_since(*first) >= self.rate.period)
        {
            calls.pop_front();
        }
        let admitted = calls.len() < limit;
        if admitted {
            calls.push_back(now);
        }
        if admitted {
            // Figures cost more than the decision; only a refusal reports them.
            return Decision::Admitted(Figures::new());
        }
        let mut figures = Figures::new();
        figures.insert("current_count".into(), json!(calls.len()));
        figures.insert("limit".into(), json!(self.rate.count));
        figures.insert("window_size".into(), json!(self.rate.period.as_secs_f64()));
        self.providers.add_to(&mut figures);
        let oldest = *calls.front().expect("a full window has calls");
        let wait = (oldest + self.rate.period)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        Decision::Limited { wait, figures }
    }
}

impl RateLimitMonitor for SlidingWindowRateLimitMonitor {
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(self.decide(key)))
    }

    fn describe(&self) -> Value {
        json!({ "kind": "sliding_window", "limit": self.rate.count, "window_s": self.rate.period.as_secs_f64() })
    }

    fn attach(&self, provider: &str) {
        self.providers.attach(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn admits_a_burst_of_n_then_at_most_n_in_any_window() {
        let m = SlidingWindowRateLimitMonitor::new(RateSpec::new(3, Duration::from_secs(10)));
        for _ in 0..3 {
            assert!(m.check("").await.is_admitted());
        }
        let Decision::Limited { wait, figures } = m.check("").await else {
            panic!("4th in the window")
        };
        assert_eq!(wait, Duration::from_secs(10));
        assert_eq!(figures["current_count"], json!(3));
        assert_eq!(figures["limit"], json!(3));
        tokio::time::advance(Duration::from_secs(4)).await;
        let Decision::Limited { wait, .. } = m.check("").await else {
            panic!()
        };
        assert_eq!(wait, Duration::from_secs(6));
        tokio::time::advance(Duration::from_secs(6)).await;
        // The first three left the window together: three more, and no fourth.
        for _ in 0..3 {
            assert!(m.check("").await.is_admitted());
        }
        assert!(!m.check("").await.is_admitted());
    }

    #[tokio::test(start_paused = true)]
    async fn spread_calls_never_exceed_n_in_any_window() {
        let rate = RateSpec::new(5, Duration::from_secs(1));
        let m = SlidingWindowRateLimitMonitor::new(rate);
        let mut admitted_at = Vec::new();
        let start = Instant::now();
        for _ in 0..400 {
            if m.check("").await.is_admitted() {
                admitted_at.push(Instant::now() - start);
            }
            tokio::time::advance(Duration::from_millis(13)).await;
        }
        for (i, t) in admitted_at.iter().enumerate() {
            let in_window = admitted_at[i..]
                .iter()
                .take_while(|u| **u - *t < rate.period)
                .count();
            assert!(in_window <= 5, "{in_window} calls in the window from {t:?}");
        }
        // ~5.2 s of demand at 77/s: the budget is used, not wasted.
        assert!(admitted_at.len() >= 25, "{}", admitted_at.len());
    }

    #[tokio::test(start_paused = true)]
    async fn keys_have_independent_budgets() {
        let m = SlidingWindowRateLimitMonitor::new(RateSpec::new(1, Duration::from_secs(60)));
        assert!(m.check("account=a").await.is_admitted());
        assert!(m.check("account=b").await.is_admitted());
        assert!(!m.check("account=a").await.is_admitted());
    }
}
