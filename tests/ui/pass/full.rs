//! Every parameter form and return type `#[provider]` accepts; `main` checks the action table
//! and runs each handler the way the runtime does.
#![deny(warnings)]

use std::sync::Arc;
use std::time::Duration;

use arbv_provider::prelude::*;
use arbv_provider::{Call, InvalidInput, ProviderDef};
use arbv_provider_core::provider::Handler;

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

async fn run(
    def: &ProviderDef<Full>,
    name: &str,
    payload: Value,
    account: Option<Value>,
) -> Result<ActionResponse, InvalidInput> {
    let action = def.actions().iter().find(|a| a.spec().name == name).unwrap();
    let call = Call::new(payload, account, Context::detached(name));
    match action.handler() {
        Handler::Async(handler) => handler(Arc::new(Full), call).await,
        Handler::Blocking(handler) => handler(Arc::new(Full), call),
    }
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
    assert!(matches!(def.actions()[3].handler(), Handler::Blocking(_)));

    // The methods stay plain methods.
    assert_eq!(Full.ping(), "pong");
    assert_eq!(Full.echo(Echo { message: "hi".into() }).await.unwrap()["echo"], "hi");

    let message = json!({ "message": "hi" });
    let token = json!({ "token": "t" });
    let ok = run(&def, "echo", message.clone(), None).await.unwrap();
    assert_eq!((ok.status(), ok.response()), (Status::Success, &json!({ "echo": "hi" })));
    let all = run(&def, "with-all", message.clone(), Some(token.clone())).await.unwrap();
    assert_eq!(
        all.response(),
        &json!({ "action": "with-all", "token": "t", "message": "hi" })
    );
    let none = run(&def, "maybe", json!({}), None).await.unwrap();
    assert_eq!(none.response(), &json!({ "accounts": 0 }));
    let some = run(&def, "maybe", json!({}), Some(token)).await.unwrap();
    assert_eq!(some.response(), &json!({ "accounts": 1 }));
    assert_eq!(run(&def, "ping", json!({}), None).await.unwrap().response(), "pong");
    assert_eq!(run(&def, "nothing", json!({}), None).await.unwrap().response(), &Value::Null);
    let refused = run(&def, "refuse", message, None).await.unwrap();
    assert_eq!((refused.status(), refused.message()), (Status::Error, Some("refused")));
    let io = run(&def, "io", json!({}), None).await.unwrap();
    assert_eq!(io.message(), Some("disk on fire"));
    assert_eq!(run(&def, "type", json!({}), None).await.unwrap().response(), 7);
    assert!(run(&def, "echo", json!({ "nope": 1 }), None).await.is_err());
}
