use arbv_provider::prelude::*;

struct Ads;

#[provider]
impl Ads {
    #[action(timeout = "10x")]
    fn unit(&self) {}

    #[action(timeout = "0s")]
    fn zero(&self) {}

    #[action(timeout = 30)]
    fn number(&self) {}
}

fn main() {}
