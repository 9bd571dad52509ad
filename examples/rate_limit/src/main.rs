//! The rate-limit example as a process, configured from the environment.

use arbv_provider::prelude::*;
use rate_limit::{RateLimited, SharedBudget};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    SharedBudget::from_env()?.install();
    RateLimited.serve().await?;
    Ok(())
}
