use arbv_provider::prelude::*;

struct Report;

struct Ads;

#[provider]
impl Ads {
    #[action]
    async fn report(&self) -> Report {
        Report
    }

    #[action]
    async fn fallible(&self) -> Result<Value, String> {
        Ok(Value::Null)
    }
}

fn main() {}
