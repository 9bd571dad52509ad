use arbv_provider::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Account {
    id: String,
}

struct Limits;

#[provider]
impl Limits {
    #[action(rate_limit = "10/x")]
    async fn bad_unit(&self) {}

    #[action(rate_limit = "0/s")]
    async fn zero(&self) {}

    #[action(rate_limit = 10)]
    async fn not_a_string(&self) {}

    #[action(rate_limit = "5/s", burst = 0)]
    async fn zero_burst(&self) {}

    #[action(burst = 5)]
    async fn burst_without_rate(&self) {}

    #[action(rate_limit = none, min_delay = "1s")]
    async fn none_refined(&self) {}

    #[action(rate_limit = shared, burst = 2)]
    async fn monitor_refined(&self) {}

    #[action(min_delay = "soon")]
    async fn bad_delay(&self) {}

    #[action(rate_limit = "5/s", per = "account")]
    async fn per_without_field(&self, account: Account) {
        let _ = account.id;
    }

    #[action(rate_limit = "5/s", per = "account.id")]
    async fn per_without_account(&self) {}

    #[action(per = "account.id")]
    async fn per_without_limit(&self, account: Account) {
        let _ = account.id;
    }

    #[action(rate_limit = "5/s", on_limit = "later")]
    async fn bad_on_limit(&self) {}

    #[action(on_limit = "wait")]
    async fn wait_without_limit(&self) {}
}

fn shared() -> arbv_provider::rate_limit::NoRateLimitMonitor {
    arbv_provider::rate_limit::NoRateLimitMonitor
}

fn main() {}
