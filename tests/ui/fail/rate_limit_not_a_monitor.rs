use arbv_provider::prelude::*;

struct Limits;

fn budget() -> u32 {
    5
}

#[provider]
impl Limits {
    #[action(rate_limit = budget)]
    async fn guarded(&self) {}
}

fn main() {}
