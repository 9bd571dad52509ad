//! `bench-provider` on tokio's default runtime (`#[tokio::main]`, a worker thread per core)
//! instead of the current-thread one the examples ask for: the benchmark's "runtime" section
//! measures what that choice costs. Its own executable, so that its memory is its own.

use arbv_provider::prelude::*;
use basic::Basic;

#[tokio::main]
async fn main() -> Result<(), arbv_provider::Error> {
    Basic.serve().await
}
