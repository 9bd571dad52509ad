use arbv_provider::rate_limit::RedisRateLimitMonitor;

fn main() {
    let _ = RedisRateLimitMonitor::new;
}
