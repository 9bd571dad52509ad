//! The RabbitMQ example as a process: `AMQP_URL` names the broker (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`); the hub and the runtime are configured as for every
//! provider.

use arbv_provider::prelude::*;
use message_queue::{AmqpUrl, MessageQueue};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = AmqpUrl::from_env()?;
    MessageQueue::new(url).serve().await?;
    Ok(())
}
