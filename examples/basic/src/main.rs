//! The basic provider as a process: configured from the environment (`PROVIDER_AUTH_TOKEN`,
//! `HUB_GRPC_URL`, …), stopped by Ctrl-C or SIGTERM. `--manifest` prints its manifest.

use arbv_provider::prelude::*;
use basic::Basic;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), arbv_provider::Error> {
    Basic.serve().await
}
