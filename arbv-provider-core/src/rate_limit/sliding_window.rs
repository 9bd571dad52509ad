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
///
/// A key whose window has emptied carries no state, and is swept out: when a new key would
/// take the map past `sweep_at` entries, and at most once a period. The next threshold is
/// twice the keys left, so a sweep's cost is paid by the insertions or the checks of the
/// period before it: O(1) per check amortised, and memory proportional to the keys used in
/// the last period, whatever number of keys has been seen.
struct Windows {
    global: VecDeque<Instant>,
    keyed: HashMap<String, VecDeque<Instant>>,
    sweep_at: usize,
    next_timed_sweep: Instant,
}

/// The fewest keys a sweep leaves room for, so small maps are not swept on every new key.
const MIN_SWEEP_AT: usize = 1024;

impl Windows {
    fn new(period: Duration) -> Self {
        Self {
            global: VecDeque::new(),
            keyed: HashMap::new(),
            sweep_at: MIN_SWEEP_AT,
            next_timed_sweep: Instant::now() + period,
        }
    }

    /// Drops the windows with no call younger than `period`.
    fn sweep(&mut self, now: Instant, period: Duration) {
        self.keyed.retain(|_, calls| {
            calls
                .back()
                .is_some_and(|last| now.duration_since(*last) < period)
        });
        self.sweep_at = (self.keyed.len() * 2).max(MIN_SWEEP_AT);
        self.keyed.shrink_to(self.sweep_at);
        self.next_timed_sweep = now + period;
    }
}

impl SlidingWindowRateLimitMonitor {
    /// `rate.count` calls per `rate.period`.
    pub fn new(rate: RateSpec) -> Self {
        Self {
            rate,
            windows: Mutex::new(Windows::new(rate.period)),
            providers: AttachedProviders::default(),
        }
    }

    fn decide(&self, key: &str) -> Decision {
        let now = Instant::now();
        let limit = self.rate.count as usize;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let period = self.rate.period;
        if now >= windows.next_timed_sweep {
            windows.sweep(now, period);
        }
        let calls = if key.is_empty() {
            &mut windows.global
        } else {
            if !windows.keyed.contains_key(key) {
                if windows.keyed.len() >= windows.sweep_at {
                    windows.sweep(now, period);
                }
                // No room kept ahead: most keys see few calls before they go idle.
                windows.keyed.insert(key.to_owned(), VecDeque::new());
            }
            windows.keyed.get_mut(key).expect("inserted above")
        };
        while calls
            .front()
            .is_some_and(|first| now.duration_since(*first) >= period)
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

    impl SlidingWindowRateLimitMonitor {
        fn keys_held(&self) -> usize {
            self.windows.lock().unwrap().keyed.len()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_forgotten_and_live_ones_keep_their_window() {
        let m = SlidingWindowRateLimitMonitor::new(RateSpec::new(2, Duration::from_secs(10)));
        for i in 0..100_000 {
            assert!(m.check(&format!("k{i}")).await.is_admitted());
        }
        // Live keys are state the window needs, and they are all within the last period.
        assert!(m.keys_held() <= 100_000);
        assert!(m.check("k7").await.is_admitted());
        assert!(!m.check("k7").await.is_admitted(), "k7 has spent its 2");

        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(m.check("late").await.is_admitted());
        tokio::time::advance(Duration::from_secs(5)).await;
        // Ten seconds on: every window but `late`'s has emptied, and
        // the next check, on any key, sweeps them out.
        assert!(m.check("").await.is_admitted());
        assert_eq!(m.keys_held(), 1, "only `late` is still in its window");
        assert!(m.check("late").await.is_admitted());
        assert!(
            !m.check("late").await.is_admitted(),
            "a live key keeps its window across a sweep"
        );
        assert!(
            m.check("k1").await.is_admitted(),
            "a forgotten key starts whole"
        );
        assert!(m.check("k1").await.is_admitted());
        assert!(!m.check("k1").await.is_admitted());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_of_new_keys_holds_only_the_last_periods() {
        // 1 000 new keys a second under a 1 s window: whatever the number seen, the map holds
        // about one period's worth (and at most twice that, by the sweep threshold).
        let m = SlidingWindowRateLimitMonitor::new(RateSpec::new(1, Duration::from_secs(1)));
        let mut most = 0;
        for i in 0..100_000 {
            assert!(m.check(&format!("k{i}")).await.is_admitted());
            most = most.max(m.keys_held());
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        assert!(most <= 2 * 1_000 + MIN_SWEEP_AT, "{most} keys held at most");
    }
}
