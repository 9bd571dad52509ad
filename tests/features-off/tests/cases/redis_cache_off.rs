use arbv_provider::prelude::*;

struct Weather;

#[provider]
impl Weather {
    #[action(cache = redis("10m"))]
    async fn forecast(&self) -> Value {
        json!("sunny")
    }
}

fn main() {}
