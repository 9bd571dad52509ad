use arbv_provider::prelude::*;

struct Ads;

#[provider]
impl Ads {
    #[action(nmae = "pong")]
    fn ping(&self) -> &'static str {
        "pong"
    }

    #[action(rate = "5/s")]
    fn pong(&self) -> &'static str {
        "ping"
    }
}

fn main() {}
