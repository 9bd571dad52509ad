//! The monitors built on governor's GCRA: a minimum delay between calls, and a token bucket
//! with warning and critical thresholds. Plus the monitor that never limits.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde_json::{Value, json};

use super::clock::TokioClock;
use super::{AttachedProviders, Decision, Figures, RateLimitMonitor, RateSpec};

/// Never limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRateLimitMonitor;

impl RateLimitMonitor for NoRateLimitMonitor {
    fn check<'a>(&'a self, _key: &'a str) -> BoxFuture<'a, Decision> {
        Box::pin(std::future::ready(Decision::Admitted(Figures::new())))
    }

    fn describe(&self) -> Value {
        json!({ "kind": "none" })
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, TokioClock, StateInformationMiddleware>;
type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, TokioClock, StateInformationMiddleware>;

/// One GCRA budget for the key `""`, and one per other key.
///
/// A keyed budget whose bucket is full again carries no state, and governor's
/// `retain_recent` forgets it. That sweep runs once the keys reach twice what the last sweep
/// left (looked at every [`LEN_CHECK_EVERY`] checks, as counting them locks every shard), and
/// at most once per refill of a bucket: O(1) per check amortised, and memory proportional to
/// the keys used in the last refill time.
struct Budgets {
    clock: TokioClock,
    direct: Direct,
    keyed: Keyed,
    keyed_checks: AtomicU64,
    sweep: KeySweep,
}

/// When the keyed budgets are next swept.
struct KeySweep {
    /// Time a spent bucket takes to be full again, and then one call more.
    every: Duration,
    at_len: AtomicUsize,
    next_at: AtomicU64,
    running: AtomicBool,
}

/// The fewest keys a sweep leaves room for, so small maps are not swept often.
const MIN_SWEEP_AT: usize = 1024;
/// How often (in keyed checks) the number of keys is looked at.
const LEN_CHECK_EVERY: u64 = 256;

impl Budgets {
    fn new(quota: Quota) -> Self {
        let clock = TokioClock::default();
        let every = quota.burst_size_replenished_in() + quota.replenish_interval();
        Self {
            direct: RateLimiter::direct_with_clock(quota, clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            keyed:
                RateLimiter::<String, _, _, governor::middleware::NoOpMiddleware<Duration>>::new(
                    quota,
                    DefaultKeyedStateStore::default(),
                    clock.clone(),
                )
                .with_middleware::<StateInformationMiddleware>(),
            clock,
            keyed_checks: AtomicU64::new(0),
            sweep: KeySweep {
                every,
                at_len: AtomicUsize::new(MIN_SWEEP_AT),
                next_at: AtomicU64::new(nanos(every)),
                running: AtomicBool::new(false),
            },
        }
    }

    /// `Ok(remaining burst capacity)` or `Err(wait)`.
    fn check(&self, key: &str) -> Result<u32, Duration> {
        let outcome = if key.is_empty() {
            self.direct.check()
        } else {
            self.sweep_if_due();
            self.keyed.check_key(&key.to_owned())
        };
        match outcome {
            Ok(snapshot) => Ok(snapshot.remaining_burst_capacity()),
            Err(not_until) => Err(not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_millis(1))),
        }
    }

    fn sweep_if_due(&self) {
        let now = self.clock.now();
        let checks = self.keyed_checks.fetch_add(1, Ordering::Relaxed);
        let due = nanos(now) >= self.sweep.next_at.load(Ordering::Relaxed)
            || (checks % LEN_CHECK_EVERY == LEN_CHECK_EVERY - 1
                && self.keyed.len() >= self.sweep.at_len.load(Ordering::Relaxed));
        // One sweep at a time; a check that finds one running goes on without waiting.
        if !due || self.sweep.running.swap(true, Ordering::Acquire) {
            return;
        }
        self.keyed.retain_recent();
        self.keyed.shrink_to_fit();
        let left = self.keyed.len();
        self.sweep
            .at_len
            .store((left * 2).max(MIN_SWEEP_AT), Ordering::Relaxed);
        self.sweep
            .next_at
            .store(nanos(now + self.sweep.every), Ordering::Relaxed);
        self.sweep.running.store(false, Ordering::Release);
    }

    #[cfg(test)]
    fn keys_held(&self) -> usize {
        self.keyed.len()
    }
}

fn nanos(since_start: Duration) -> u64 {
    u64::try_from(since_start.as_nanos()).unwrap_or(u64::MAX)
}

fn period_per_call(rate: RateSpec) -> Duration {
    (rate.period / rate.count.max(1)).max(Duration::from_nanos(1))
}

/// At least `min_delay` between two admitted calls: the Python framework's `TimeBasedRateLimitMonitor`.
pub struct TimeBasedRateLimitMonitor {
    min_delay: Duration,
    budgets: Budgets,
    providers: AttachedProviders,
}

impl TimeBasedRateLimitMonitor {
    /// Admits one call, then the next no sooner than `min_delay` later.
    pub fn new(min_delay: Duration) -> Self {
        let min_delay = min_delay.max(Duration::from_nanos(1));
        let quota = Quota::with_period(min_delay).expect("a period above zero");
        Self {
            min_delay,
            budgets: Budgets::new(quota),
            providers: AttachedProviders::default(),
        }
    }
}

impl RateLimitMonitor for TimeBasedRateLimitMonitor {
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision> {
        let decision = match self.budgets.check(key) {
            Ok(_) => Decision::Admitted(Figures::new()),
            Err(wait) => {
                let mut figures = Figures::new();
                figures.insert("min_delay".into(), json!(self.min_delay.as_secs_f64()));
                self.providers.add_to(&mut figures);
                Decision::Limited { wait, figures }
            }
        };
        Box::pin(std::future::ready(decision))
    }

    fn describe(&self) -> Value {
        json!({ "kind": "time_based", "min_delay_s": self.min_delay.as_secs_f64() })
    }

    fn attach(&self, provider: &str) {
        self.providers.attach(provider)
    }
}

/// A token bucket: `rate` on average, `burst` at once, with warning and critical thresholds
/// of the bucket's use that log and show in the figures (`call_usage`, `is_near_limit`,
/// `is_critical`): the Python framework's `AdvancedRateLimitMonitor`.
pub struct AdvancedRateLimitMonitor {
    rate: RateSpec,
    burst: u32,
    warning_threshold: f64,
    critical_threshold: f64,
    budgets: Budgets,
    critical_logged: AtomicBool,
    providers: AttachedProviders,
}

impl AdvancedRateLimitMonitor {
    /// Refills at `rate`, holds at most `burst` calls (at least 1). Thresholds: 0.8 and 0.9.
    pub fn new(rate: RateSpec, burst: u32) -> Self {
        let burst = burst.max(1);
        let quota = Quota::with_period(period_per_call(rate))
            .expect("a period above zero")
            .allow_burst(NonZeroU32::new(burst).expect("burst is at least 1"));
        Self {
            rate,
            burst,
            warning_threshold: 0.8,
            critical_threshold: 0.9,
            budgets: Budgets::new(quota),
            critical_logged: AtomicBool::new(false),
            providers: AttachedProviders::default(),
        }
    }

    /// `requests_per_minute` on average with bursts of `burst_size`, as the Python framework writes it.
    pub fn per_minute(requests_per_minute: u32, burst_size: u32) -> Self {
        Self::new(
            RateSpec::new(requests_per_minute, Duration::from_secs(60)),
            burst_size,
        )
    }

    /// Sets the share of the bucket in use (0 to 1) above which calls are near the limit, and
    /// above which they are critical.
    pub fn with_thresholds(mut self, warning: f64, critical: f64) -> Self {
        self.warning_threshold = warning.clamp(0.0, 1.0);
        self.critical_threshold = critical.clamp(self.warning_threshold, 1.0);
        self
    }

    /// The share of the bucket in use once `remaining` calls are left.
    fn usage(&self, remaining: u32) -> f64 {
        f64::from(self.burst - remaining.min(self.burst)) / f64::from(self.burst)
    }

    fn figures(&self, remaining: u32) -> Figures {
        let usage = self.usage(remaining);
        let mut figures = Figures::new();
        figures.insert("limit".into(), json!(self.burst));
        figures.insert("remaining".into(), json!(remaining));
        figures.insert(
            "rate_per_second".into(),
            json!(f64::from(self.rate.count) / self.rate.period.as_secs_f64()),
        );
        figures.insert(
            "call_usage".into(),
            json!((usage * 1000.0).round() / 1000.0),
        );
        figures.insert(
            "is_near_limit".into(),
            json!(usage >= self.warning_threshold),
        );
        figures.insert(
            "is_critical".into(),
            json!(usage >= self.critical_threshold),
        );
        self.providers.add_to(&mut figures);
        if usage >= self.critical_threshold {
            if !self.critical_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(call_usage = usage, "rate limit budget is critical");
            }
        } else if usage < self.warning_threshold {
            self.critical_logged.store(false, Ordering::Relaxed);
        } else {
            tracing::debug!(call_usage = usage, "rate limit budget is near its limit");
        }
        figures
    }
}

impl RateLimitMonitor for AdvancedRateLimitMonitor {
    fn check<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Decision> {
        let decision = match self.budgets.check(key) {
            // Figures cost more than the decision: an admitted call reports them only once
            // the bucket is past the warning threshold, when they say something.
            Ok(remaining) if self.usage(remaining) < self.warning_threshold => {
                self.critical_logged.store(false, Ordering::Relaxed);
                Decision::Admitted(Figures::new())
            }
            Ok(remaining) => Decision::Admitted(self.figures(remaining)),
            Err(wait) => Decision::Limited {
                wait,
                figures: self.figures(0),
            },
        };
        Box::pin(std::future::ready(decision))
    }

    fn describe(&self) -> Value {
        json!({
            "kind": "token_bucket",
            "rate": { "count": self.rate.count, "period_s": self.rate.period.as_secs_f64() },
            "burst": self.burst,
            "warning_threshold": self.warning_threshold,
            "critical_threshold": self.critical_threshold,
        })
    }

    fn attach(&self, provider: &str) {
        self.providers.attach(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn time_based_spaces_calls_by_min_delay() {
        let m = TimeBasedRateLimitMonitor::new(Duration::from_millis(500));
        assert!(m.check("").await.is_admitted());
        let Decision::Limited { wait, .. } = m.check("").await else {
            panic!("second call too soon")
        };
        assert_eq!(wait, Duration::from_millis(500));
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(!m.check("").await.is_admitted());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(m.check("").await.is_admitted());
        // Keys are separate budgets.
        assert!(m.check("a").await.is_admitted());
        assert!(m.check("b").await.is_admitted());
        assert!(!m.check("a").await.is_admitted());
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_admits_a_burst_then_the_rate() {
        // 10 per second on average, bursts of 5.
        let m = AdvancedRateLimitMonitor::new(RateSpec::new(10, Duration::from_secs(1)), 5);
        let mut last = Figures::new();
        for _ in 0..5 {
            match m.check("").await {
                Decision::Admitted(f) => last = f,
                other => panic!("burst refused: {other:?}"),
            }
        }
        assert_eq!(last["call_usage"], json!(1.0));
        assert_eq!(last["is_critical"], json!(true));
        let Decision::Limited { wait, figures } = m.check("").await else {
            panic!("over the burst")
        };
        assert_eq!(wait, Duration::from_millis(100));
        assert_eq!(figures["remaining"], json!(0));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(m.check("").await.is_admitted());
        assert!(!m.check("").await.is_admitted());
        // After a full refill the usage is back to the first call's: below the warning
        // threshold, an admission carries no figures.
        tokio::time::advance(Duration::from_secs(1)).await;
        let Decision::Admitted(f) = m.check("").await else {
            panic!()
        };
        assert!(f.is_empty(), "{f:?}");
        for _ in 0..3 {
            assert!(m.check("").await.is_admitted());
        }
        let Decision::Admitted(f) = m.check("").await else {
            panic!()
        };
        assert_eq!(f["call_usage"], json!(1.0));
    }

    #[tokio::test(start_paused = true)]
    async fn thresholds_mark_near_and_critical_use() {
        let m = AdvancedRateLimitMonitor::new(RateSpec::new(1, Duration::from_secs(60)), 10)
            .with_thresholds(0.5, 0.7);
        let mut flags = Vec::new();
        for _ in 0..10 {
            let Decision::Admitted(f) = m.check("").await else {
                panic!()
            };
            flags.push((
                f.get("is_near_limit") == Some(&json!(true)),
                f.get("is_critical") == Some(&json!(true)),
            ));
        }
        assert_eq!(flags[3], (false, false)); // 40 %
        assert_eq!(flags[4], (true, false)); // 50 %
        assert_eq!(flags[6], (true, true)); // 70 %
    }

    #[tokio::test(start_paused = true)]
    async fn full_buckets_are_forgotten_and_spent_ones_kept() {
        // 1 call a second, bursts of 2: a spent bucket is full again after 2 s.
        let m = AdvancedRateLimitMonitor::new(RateSpec::new(1, Duration::from_secs(1)), 2);
        for i in 0..100_000 {
            assert!(m.check(&format!("k{i}")).await.is_admitted());
        }
        assert!(m.check("spent").await.is_admitted());
        assert!(m.check("spent").await.is_admitted());
        assert!(!m.check("spent").await.is_admitted());
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(m.check("spent").await.is_admitted());
        // Every bucket but `spent`'s is full again: the next keyed check sweeps them out.
        assert!(m.check("other").await.is_admitted());
        assert!(
            m.budgets.keys_held() <= 2,
            "{} keys held",
            m.budgets.keys_held()
        );
        assert!(
            m.check("spent").await.is_admitted(),
            "one call left in its bucket"
        );
        assert!(
            !m.check("spent").await.is_admitted(),
            "a kept key keeps its state"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_of_new_keys_holds_only_the_last_refills() {
        let m = TimeBasedRateLimitMonitor::new(Duration::from_secs(1));
        let mut most = 0;
        for i in 0..100_000 {
            assert!(m.check(&format!("k{i}")).await.is_admitted());
            most = most.max(m.budgets.keys_held());
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        // A key is forgotten 1 s after its call plus one more second; sweeps at most 2 s
        // apart; and the length is looked at every 256 checks.
        assert!(
            most <= 4_000 + MIN_SWEEP_AT + LEN_CHECK_EVERY as usize,
            "{most} keys held at most"
        );
    }
}
