use arbv_provider::prelude::*;

struct Ads;

#[provider]
impl Default for Ads {
    fn default() -> Self {
        Ads
    }
}

fn main() {}
