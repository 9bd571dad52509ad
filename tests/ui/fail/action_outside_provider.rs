use arbv_provider::prelude::*;

struct Ads;

impl Ads {
    #[action]
    fn ping(&self) -> &'static str {
        "pong"
    }
}

fn main() {
    // The method still exists: the error above is the only one.
    let _ = Ads.ping();
}
