use arbv_provider::prelude::*;

struct Ads;

#[provider]
impl Ads {
    #[action]
    fn ping(&self) -> &'static str {
        "pong"
    }

    #[action(name = "ping")]
    fn ping_again(&self) -> &'static str {
        "pong"
    }
}

fn main() {}
