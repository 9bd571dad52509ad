//! Every parameter form and return type `#[provider]` accepts; `main` checks the action table
//! and runs each action as a task from the hub, in process (`Runtime::run_task`).
#![deny(warnings)]

use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::{Envelope, IncomingTask, Runtime};

#[derive(Deserialize, JsonSchema)]
struct Echo {
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct Account {
    token: String,
}

#[derive(Serialize)]
struct Stats {
    accounts: u32,
}

struct Full;

#[provider]
impl Full {
    /// Echo back the message.
    ///
    /// A second paragraph.
    #[action]
    async fn echo(&self, payload: Echo) -> Result<Value, ActionError> {
        Ok(json!({ "echo": payload.message }))
    }

    /// Overridden by `description`.
    #[action(name = "with-all", description = "Every role.", timeout = "1.5s")]
    pub async fn all(&self, ctx: &Context, account: Account, payload: Echo) -> ActionResponse {
        ActionResponse::success(json!({
            "action": ctx.action(),
            "token": account.token,
            "message": payload.message,
        }))
    }

    #[action]
    async fn maybe(&self, account: Option<Account>, _ctx: Context) -> Stats {
        Stats { accounts: u32::from(account.is_some()) }
    }

    #[action]
    fn ping(&self) -> &'static str {
        "pong"
    }

    #[action]
    fn nothing() {}

    #[action(timeout = "2m")]
    async fn refuse(_payload: Echo) -> Result<ActionResponse, ActionError> {
        Err(ActionError::new("refused").with_code("NO"))
    }

    #[action(name = "io")]
    fn read_config(&self) -> Result<u8, std::io::Error> {
        Err(std::io::Error::other("disk on fire"))
    }

    #[action]
    async fn r#type(&self) -> Option<u8> {
        self.helper()
    }

    fn helper(&self) -> Option<u8> {
        Some(7)
    }
}

async fn run(full: &Runtime, name: &str, payload: Value, account: Option<Value>) -> Envelope {
    let task = IncomingTask {
        id: "task-1".into(),
        action: name.into(),
        payload: payload.to_string().into(),
        account: account.map(|a| a.to_string().into()).unwrap_or_default(),
    };
    serde_json::from_str(&full.run_task(task).await.result).unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let def = Full::definition();
    assert_eq!(def.name(), "full");
    let names: Vec<&str> = def.actions().iter().map(|a| &*a.spec().name).collect();
    assert_eq!(
        names,
        ["echo", "with-all", "maybe", "ping", "nothing", "refuse", "io", "type"]
    );
    let spec = |name: &str| def.actions().iter().find(|a| a.spec().name == name).unwrap().spec();
    assert_eq!(spec("echo").description, "Echo back the message.\n\nA second paragraph.");
    assert!(spec("echo").payload_schema.is_some() && spec("echo").account_schema.is_none());
    assert_eq!(spec("with-all").description, "Every role.");
    assert_eq!(spec("with-all").timeout, Some(Duration::from_millis(1500)));
    assert!(spec("with-all").account_required);
    assert!(spec("maybe").account_schema.is_some() && !spec("maybe").account_required);
    assert_eq!(spec("refuse").timeout, Some(Duration::from_secs(120)));
    assert_eq!(spec("ping").description, "");

    // The methods stay plain methods.
    assert_eq!(Full.ping(), "pong");
    assert_eq!(Full.echo(Echo { message: "hi".into() }).await.unwrap()["echo"], "hi");

    let full = Runtime::new(Full, Config::builder().auth_token("t").build().unwrap()).unwrap();
    let message = json!({ "message": "hi" });
    let token = json!({ "token": "t" });
    let ok = run(&full, "echo", message.clone(), None).await;
    assert_eq!((ok.status, &ok.data.response), (Status::Success, &json!({ "echo": "hi" })));
    let all = run(&full, "with-all", message.clone(), Some(token.clone())).await;
    assert_eq!(
        all.data.response,
        json!({ "action": "with-all", "token": "t", "message": "hi" })
    );
    let none = run(&full, "maybe", json!({}), None).await;
    assert_eq!(none.data.response, json!({ "accounts": 0 }));
    let some = run(&full, "maybe", json!({}), Some(token)).await;
    assert_eq!(some.data.response, json!({ "accounts": 1 }));
    assert_eq!(run(&full, "ping", json!({}), None).await.data.response, "pong");
    assert_eq!(run(&full, "nothing", json!({}), None).await.data.response, Value::Null);
    let refused = run(&full, "refuse", message, None).await;
    assert_eq!((refused.status, refused.message.as_str()), (Status::Error, "refused"));
    let io = run(&full, "io", json!({}), None).await;
    assert_eq!(io.message, "disk on fire");
    assert_eq!(run(&full, "type", json!({}), None).await.data.response, 7);
    let invalid = run(&full, "echo", json!({ "nope": 1 }), None).await;
    assert_eq!(invalid.status, Status::Error);
    assert!(invalid.message.starts_with("Invalid payload"), "{}", invalid.message);
}
