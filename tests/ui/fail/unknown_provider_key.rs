use arbv_provider::prelude::*;

struct Ads;

#[provider(timeout = "5s")]
impl Ads {
    #[action]
    fn ping(&self) -> &'static str {
        "pong"
    }
}

fn main() {}
