//! The external-API example as a process: `GITHUB_API_URL` (default `https://api.github.com`)
//! and the hub settings of every provider (`HUB_GRPC_URL`, `PROVIDER_AUTH_TOKEN`, …).

use arbv_provider::prelude::*;
use external_api::GitHub;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    GitHub::from_env()?.serve().await?;
    Ok(())
}
