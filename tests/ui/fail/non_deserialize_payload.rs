use arbv_provider::prelude::*;

#[derive(JsonSchema)]
struct Echo {
    message: String,
}

#[derive(Deserialize)]
struct Account {
    token: String,
}

struct Ads;

#[provider]
impl Ads {
    #[action]
    async fn echo(&self, payload: Echo) -> String {
        payload.message
    }

    #[action]
    async fn login(&self, account: Option<Account>) -> bool {
        account.is_some_and(|a| !a.token.is_empty())
    }
}

fn main() {}
