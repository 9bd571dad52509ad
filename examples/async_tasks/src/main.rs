//! The concurrent-fetch example as a process; the hub and the runtime are configured as for
//! every provider.

use arbv_provider::prelude::*;
use async_tasks::AsyncTasks;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    AsyncTasks::new()?.serve().await?;
    Ok(())
}
