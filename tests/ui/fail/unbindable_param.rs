use arbv_provider::prelude::*;

struct Ads;

#[provider]
impl Ads {
    #[action]
    async fn by_id(&self, id: u64) -> u64 {
        id
    }

    #[action]
    async fn pair(&self, (a, b): (u8, u8)) -> u8 {
        a + b
    }

    #[action]
    async fn borrowed(&self, payload: &str) -> usize {
        payload.len()
    }
}

fn main() {}
