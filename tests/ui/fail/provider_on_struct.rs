use arbv_provider::prelude::*;

#[provider]
struct Ads {
    token: String,
}

fn main() {
    let _ = Ads { token: String::new() }.token;
}
