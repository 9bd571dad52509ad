//! The provider the throughput benchmark measures: `basic::Basic` built as a provider binary is,
//! the same `main` as `examples/basic` (nothing of the benchmark's hubs or clients linked in),
//! configured from the environment, logging on, stopped with SIGTERM.

use arbv_provider::prelude::*;
use basic::Basic;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), arbv_provider::Error> {
    Basic.serve().await
}
