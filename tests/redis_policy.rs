//! A Redis monitor while its Redis goes away and comes back, on a Redis of the test's own
//! (killed mid-run, its data lost as in a crash): fail open admits and fail closed refuses with
//! `wait_time` 1 s; each monitor logs one warning per outage however many calls come during
//! it, and one line when Redis answers again.

use std::time::Duration;

use arbv_provider::rate_limit::{Decision, RateLimitMonitor, RateSpec, RedisRateLimitMonitor};
use arbv_tests::logs::LogBuffer;
use arbv_tests::services::PrivateRedis;

const DOWN: &str = "Redis is unreachable for the shared rate limit";
const BACK: &str = "Redis answers again";

/// Asks `monitor` until Redis decides again (its figures carry `current_count`).
async fn until_redis_decides(monitor: &RedisRateLimitMonitor) -> Decision {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let decision = monitor.check("").await;
        let figures = match &decision {
            Decision::Admitted(figures) | Decision::Limited { figures, .. } => figures,
        };
        if figures.contains_key("current_count") {
            return decision;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Redis did not decide again within 20 s of its return"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// A current-thread runtime: the subscriber set for this thread sees every decision's log.
#[tokio::test]
async fn an_outage_admits_when_failing_open_refuses_when_closed_and_warns_once_each_time() {
    let Some(mut redis) = PrivateRedis::start() else {
        return;
    };
    let logs = LogBuffer::default();
    let _capture = logs.capture_thread(tracing::Level::INFO);
    let rate = RateSpec::new(2, Duration::from_secs(60));
    let open_key = format!("arbv-test:{}:fail-open", std::process::id());
    let closed_key = format!("arbv-test:{}:fail-closed", std::process::id());
    let open = RedisRateLimitMonitor::new(&redis.url(), open_key.clone(), rate)
        .unwrap()
        .fail_open();
    let closed = RedisRateLimitMonitor::new(&redis.url(), closed_key.clone(), rate).unwrap();

    // Redis up: its budget decides, for both policies.
    for monitor in [&open, &closed] {
        assert!(monitor.check("").await.is_admitted());
        assert!(monitor.check("").await.is_admitted());
        let Decision::Limited { figures, .. } = monitor.check("").await else {
            panic!("the third call in the minute is over the budget");
        };
        assert_eq!(figures["current_count"], 2);
    }

    for outage in 1..=2 {
        redis.stop();
        for _ in 0..5 {
            let Decision::Admitted(figures) = open.check("").await else {
                panic!("fail open admits while Redis is gone");
            };
            assert_eq!(figures["policy"], "fail_open");
            assert!(
                figures["error"].as_str().unwrap().contains("unreachable"),
                "{figures:?}"
            );
            let Decision::Limited { wait, figures } = closed.check("").await else {
                panic!("fail closed refuses while Redis is gone");
            };
            assert_eq!(wait, Duration::from_secs(1));
            assert_eq!(figures["policy"], "fail_closed");
        }
        for key in [&open_key, &closed_key] {
            assert_eq!(
                logs.lines_with(&["WARN", DOWN, key]).len(),
                outage,
                "one warning per outage for {key}, not one per call"
            );
        }

        // Back, empty: Redis decides again, from a whole budget.
        redis.resume();
        for monitor in [&open, &closed] {
            let Decision::Admitted(figures) = until_redis_decides(monitor).await else {
                panic!("a restarted Redis has the whole budget");
            };
            assert_eq!(figures["current_count"], 1);
        }
        for key in [&open_key, &closed_key] {
            assert_eq!(logs.lines_with(&["INFO", BACK, key]).len(), outage, "{key}");
        }
        // Spend the budget again, so the next outage starts from a full window.
        for monitor in [&open, &closed] {
            assert!(monitor.check("").await.is_admitted());
            assert!(!monitor.check("").await.is_admitted());
        }
    }
}
