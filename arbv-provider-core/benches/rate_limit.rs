//! The cost of one rate-limit decision, in process, against the governor crate measured in the
//! same run; and Redis decisions per second over loopback.
//!
//! `cargo bench -p arbv-provider-core --features redis --bench rate_limit` (Redis at `REDIS_URL`,
//! default `redis://127.0.0.1:6379`; without one the Redis part says so and is skipped).

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbv_provider_core::rate_limit::{
    AdvancedRateLimitMonitor, Decision, NoRateLimitMonitor, RateLimitMonitor, RateSpec,
    RedisRateLimitMonitor, SlidingWindowRateLimitMonitor, TimeBasedRateLimitMonitor,
};
use futures_util::FutureExt;
use governor::{Quota, RateLimiter};

const ROUNDS: usize = 7;
const DECISIONS: u32 = 200_000;

/// Median nanoseconds per call of `decide` over several rounds.
fn ns_per_decision(mut decide: impl FnMut() -> bool) -> f64 {
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..DECISIONS {
                black_box(decide());
            }
            start.elapsed().as_nanos() as f64 / f64::from(DECISIONS)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[ROUNDS / 2]
}

fn ours(monitor: &dyn RateLimitMonitor, key: &str) -> bool {
    monitor
        .check(key)
        .now_or_never()
        .expect("in-process monitors decide at once")
        .is_admitted()
}

fn main() {
    // A budget so large that every call is admitted: the cost of the common path.
    let huge = NonZeroU32::new(1_000_000_000).unwrap();
    let governor_direct = RateLimiter::direct(Quota::per_second(huge));
    let governor_keyed = RateLimiter::keyed(Quota::per_second(huge));
    let baseline = ns_per_decision(|| governor_direct.check().is_ok());
    let baseline_keyed =
        ns_per_decision(|| governor_keyed.check_key(&"account=42".to_owned()).is_ok());

    let big = RateSpec::new(u32::MAX, Duration::from_secs(1));
    let rows: Vec<(&str, f64, f64)> = vec![
        (
            "NoRateLimitMonitor",
            ns_per_decision(|| ours(&NoRateLimitMonitor, "")),
            baseline,
        ),
        (
            "TimeBasedRateLimitMonitor (1 ns)",
            {
                let m = TimeBasedRateLimitMonitor::new(Duration::from_nanos(1));
                ns_per_decision(|| ours(&m, ""))
            },
            baseline,
        ),
        (
            "AdvancedRateLimitMonitor (token bucket)",
            {
                let m = AdvancedRateLimitMonitor::new(big, 1_000_000);
                ns_per_decision(|| ours(&m, ""))
            },
            baseline,
        ),
        (
            "AdvancedRateLimitMonitor, per key",
            {
                let m = AdvancedRateLimitMonitor::new(big, 1_000_000);
                ns_per_decision(|| ours(&m, "account=42"))
            },
            baseline_keyed,
        ),
        (
            "SlidingWindowRateLimitMonitor (limit 64, full)",
            {
                // Full window: every call scans nothing new and is refused, the busy case.
                let m = SlidingWindowRateLimitMonitor::new(RateSpec::new(
                    64,
                    Duration::from_secs(3600),
                ));
                ns_per_decision(|| ours(&m, ""))
            },
            baseline,
        ),
        (
            "SlidingWindowRateLimitMonitor (admitting)",
            {
                let m = SlidingWindowRateLimitMonitor::new(RateSpec::new(
                    u32::MAX,
                    Duration::from_nanos(1),
                ));
                ns_per_decision(|| ours(&m, ""))
            },
            baseline,
        ),
    ];

    println!("in-process decisions (median of {ROUNDS} rounds of {DECISIONS}):");
    println!(
        "  {:<48} {:>9.1} ns",
        "governor RateLimiter::direct (baseline)", baseline
    );
    println!(
        "  {:<48} {:>9.1} ns",
        "governor RateLimiter::keyed (baseline, per key)", baseline_keyed
    );
    for (name, ns, against) in &rows {
        println!(
            "  {name:<48} {ns:>9.1} ns   {:>5.2}x governor",
            ns / against
        );
    }

    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(redis_decisions(&url));
}

async fn redis_decisions(url: &str) {
    let key = format!("arbv:bench:{}", std::process::id());
    let monitor =
        match RedisRateLimitMonitor::new(url, key, RateSpec::new(u32::MAX, Duration::from_secs(1)))
        {
            Ok(m) => Arc::new(m),
            Err(e) => return println!("Redis decisions: skipped ({e})"),
        };
    if let Decision::Limited { figures, .. } = monitor.check("").await
        && figures.contains_key("error")
    {
        return println!("Redis decisions: skipped, no Redis answers at {url} (set REDIS_URL)");
    }
    println!("Redis decisions over loopback ({url}):");
    for in_flight in [1usize, 16, 64] {
        let window = Duration::from_secs(2);
        let start = Instant::now();
        let workers: Vec<_> = (0..in_flight)
            .map(|_| {
                let monitor = monitor.clone();
                tokio::spawn(async move {
                    let mut decided = 0u64;
                    while start.elapsed() < window {
                        black_box(monitor.check("").await);
                        decided += 1;
                    }
                    decided
                })
            })
            .collect();
        let mut total = 0;
        for worker in workers {
            total += worker.await.unwrap();
        }
        let rate = total as f64 / start.elapsed().as_secs_f64();
        println!("  {in_flight:>3} in flight: {rate:>9.0} decisions/s");
    }
}
