use arbv_provider::prelude::*;

struct Ads;

#[provider]
impl Ads {
    #[action]
    async fn mutable(&mut self) {}

    #[action]
    fn owned(self) {}
}

fn main() {}
