use arbv_provider::prelude::*;

struct Upstream;

#[provider]
impl Upstream {
    #[action(retry)]
    async fn bare(&self) -> Value {
        json!(1)
    }

    #[action(retry(backoff = "200ms..5s"))]
    async fn no_attempts(&self) -> Value {
        json!(1)
    }

    #[action(retry(attempts = 1))]
    async fn one_attempt(&self) -> Value {
        json!(1)
    }

    #[action(retry(attempts = 0))]
    async fn no_try(&self) -> Value {
        json!(1)
    }

    #[action(retry(attempts = 3, backoff = "5s..200ms"))]
    async fn reversed_backoff(&self) -> Value {
        json!(1)
    }

    #[action(retry(attempts = 3, backoff = "200ms"))]
    async fn one_sided_backoff(&self) -> Value {
        json!(1)
    }

    #[action(retry(attempts = 3, backoff = "0s..1s"))]
    async fn immediate_backoff(&self) -> Value {
        json!(1)
    }

    #[action(timeout = "5s", retry(attempts = 3, attempt_timeout = "5s"))]
    async fn attempt_as_long_as_the_action(&self) -> Value {
        json!(1)
    }

    #[action(retry(attempts = 3, jitter = "full"))]
    async fn unknown_retry_key(&self) -> Value {
        json!(1)
    }
}

fn main() {}
