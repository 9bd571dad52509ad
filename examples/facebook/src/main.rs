//! The Facebook example as a process: `FB_GRAPH_URL` and `FB_GRAPH_VERSION` name the Graph
//! API; the hub and the runtime are configured as for every provider.

use arbv_provider::prelude::*;
use facebook::{Facebook, GraphConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let graph = GraphConfig::from_env()?;
    Facebook::new(graph)?.serve().await?;
    Ok(())
}
