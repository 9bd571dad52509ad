//! The quickstart: a dev hub and the basic provider in one process, a batch of tasks that shows
//! each kind of answer, and the answers printed for a person.

use std::time::Duration;

use arbv_provider::Config;
use arbv_provider::dev_hub::DevHub;
use arbv_provider::prelude::*;
use basic::Basic;

const TOKEN: &str = "quickstart-token";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hub = DevHub::builder().token(TOKEN).build();
    let server = hub.serve("127.0.0.1:0".parse()?).await?;
    let config = Config::builder()
        .auth_token(TOKEN)
        .hub_url(server.url())
        .timezone("Europe/Moscow")
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let provider = tokio::spawn(Basic.serve_until(config, async move {
        let _ = stopped.await;
    }));
    println!("arbv-provider quickstart");
    println!(
        "  dev hub on {} · provider \"basic-provider\" · time zone Europe/Moscow\n",
        server.addr()
    );

    let order = json!({
        "order_id": "A-1001",
        "items": [
            {"product_id": "apple", "quantity": 3, "price": 0.5},
            {"product_id": "pear", "quantity": 2, "price": 1.25}
        ],
        "customer": {"name": "Ada", "email": "ada@example.com",
                     "address": {"street": "1 Loop Rd", "city": "Localhost", "zip": "12700"}}
    });
    let batch = [
        (
            "echo",
            json!({"message": "Hello from the quickstart"}),
            None,
        ),
        ("add_numbers", json!({"a": 2, "b": 3.5}), None),
        ("greet", json!({"name": "Ana", "language": "es"}), None),
        ("process_order", order, None),
        (
            "create_profile",
            json!({"username": "ada", "profile": {"plan": "pro"}, "tags": ["beta"]}),
            Some(json!({"api_key": "k".repeat(32), "permissions": {"write": true}})),
        ),
        ("echo", json!({"text": "the wrong field"}), None),
        ("add_numbers", json!({"a": "two", "b": 3}), None),
        (
            "create_profile",
            json!({"username": "bob", "profile": {}}),
            None,
        ),
        ("translate", json!({"text": "hola"}), None),
    ];
    let ids: Vec<_> = batch
        .into_iter()
        .map(|(action, payload, account)| {
            (
                action,
                hub.enqueue("basic-provider", action, payload, account),
            )
        })
        .collect();
    let mut unanswered = 0;
    for (action, id) in ids {
        let Some(envelope) = hub.wait_result(&id, Duration::from_secs(10)).await else {
            println!("  ?  {action:<15} no answer within 10 s");
            unanswered += 1;
            continue;
        };
        let status = envelope["status"].as_str().unwrap_or("?");
        let mark = if status == "success" { "✓" } else { "✗" };
        let response = &envelope["data"]["response"];
        let detail = match status {
            "success" => response.to_string(),
            _ if response.get("available_actions").is_some() => format!(
                "{} (available: {})",
                envelope["message"].as_str().unwrap_or_default(),
                response["available_actions"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            _ => envelope["message"].as_str().unwrap_or_default().to_owned(),
        };
        println!("  {mark} {status:<8} {action:<15} {detail}");
    }
    let sample = hub.tasks().into_iter().next().and_then(|t| t.result);
    if let Some(sample) = sample {
        println!(
            "\nThe first envelope in full:\n{}",
            serde_json::to_string_pretty(&sample)?
        );
    }

    let _ = stop.send(());
    provider.await??;
    server.stop().await;
    if unanswered > 0 {
        return Err(
            format!("{unanswered} task(s) got no answer: every task should get one").into(),
        );
    }
    Ok(())
}
