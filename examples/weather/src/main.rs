//! The weather example as a process: `WEATHER_API_URL` (default `https://api.openweathermap.org`)
//! and the hub settings of every provider (`HUB_GRPC_URL`, `PROVIDER_AUTH_TOKEN`, …).

use arbv_provider::prelude::*;
use weather::Weather;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    Weather::from_env()?.serve().await?;
    Ok(())
}
