//! The basic example provider. Its actions are a contract other checks rely on:
//! `echo`, `add_numbers`, `greet`, `create_profile`, `process_order`.

use std::collections::BTreeMap;

use arbv_provider::prelude::*;

/// `echo`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Echo {
    /// The text to send back.
    #[schemars(length(min = 1))]
    pub message: String,
}

/// `add_numbers`' payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddNumbers {
    /// The first term.
    pub a: f64,
    /// The second term.
    pub b: f64,
}

/// `greet`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Greet {
    /// Who to greet.
    #[schemars(length(min = 1))]
    pub name: String,
    /// `en`, `es`, `fr` or `de`; anything else greets in English.
    #[serde(default = "english")]
    pub language: String,
}

fn english() -> String {
    "en".to_owned()
}

/// `create_profile`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateProfile {
    /// The user's name.
    #[schemars(length(min = 1))]
    pub username: String,
    /// Free-form profile data.
    pub profile: BTreeMap<String, Value>,
    /// Tags, none by default.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The account `create_profile` needs.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ApiAccount {
    /// The API key (at least 32 characters).
    #[schemars(length(min = 32))]
    pub api_key: String,
    /// What the key may do.
    pub permissions: BTreeMap<String, Value>,
}

/// One line of an order.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderItem {
    /// The product.
    pub product_id: String,
    /// How many (at least 1).
    #[schemars(range(min = 1))]
    pub quantity: u32,
    /// The unit price (0 or more).
    #[schemars(range(min = 0.0))]
    pub price: f64,
}

/// Where an order goes.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub zip: String,
}

/// Who ordered.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Customer {
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Delivery address.
    pub address: Address,
}

/// `process_order`'s payload.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Order {
    /// The order's id.
    pub order_id: String,
    /// Its lines.
    pub items: Vec<OrderItem>,
    /// Who ordered.
    pub customer: Customer,
}

/// The basic example provider.
#[derive(Debug, Default)]
pub struct Basic;

#[provider(name = "basic-provider")]
impl Basic {
    /// Echo back the message.
    #[action]
    pub async fn echo(&self, payload: Echo) -> Value {
        json!({ "echo": payload.message })
    }

    /// Add two numbers.
    #[action]
    pub fn add_numbers(&self, payload: AddNumbers) -> Value {
        json!({ "sum": payload.a + payload.b })
    }

    /// Greet someone in English, Spanish, French or German.
    #[action]
    pub async fn greet(&self, payload: Greet) -> Value {
        let hello = match payload.language.as_str() {
            "es" => "Hola",
            "fr" => "Bonjour",
            "de" => "Hallo",
            _ => "Hello",
        };
        json!({ "message": format!("{hello}, {}!", payload.name) })
    }

    /// Create a user profile with an API account; answers with what it stored (never the key).
    #[action]
    pub async fn create_profile(
        &self,
        payload: CreateProfile,
        account: ApiAccount,
    ) -> Result<Value, ActionError> {
        Ok(json!({
            "username": payload.username,
            "profile": payload.profile,
            "tags": payload.tags,
            "permissions": account.permissions,
        }))
    }

    /// Total an order: Σ quantity × price.
    #[action]
    pub async fn process_order(&self, payload: Order) -> Value {
        let total: f64 = payload
            .items
            .iter()
            .map(|i| f64::from(i.quantity) * i.price)
            .sum();
        json!({ "order_id": payload.order_id, "total": total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Actions are plain methods: no hub, no runtime beyond the test's.
    #[tokio::test]
    async fn actions_are_plain_methods() {
        assert_eq!(
            Basic
                .echo(Echo {
                    message: "hi".into()
                })
                .await,
            json!({ "echo": "hi" })
        );
        assert_eq!(
            Basic.add_numbers(AddNumbers { a: 2.0, b: 0.5 }),
            json!({ "sum": 2.5 })
        );
        let greeting = Basic
            .greet(Greet {
                name: "Ana".into(),
                language: "fr".into(),
            })
            .await;
        assert_eq!(greeting["message"], "Bonjour, Ana!");
        let order = Order {
            order_id: "o".into(),
            items: vec![OrderItem {
                product_id: "p".into(),
                quantity: 3,
                price: 1.5,
            }],
            customer: Customer {
                name: "Ada".into(),
                email: "ada@example.com".into(),
                address: Address {
                    street: "s".into(),
                    city: "c".into(),
                    zip: "z".into(),
                },
            },
        };
        assert_eq!(Basic.process_order(order).await["total"], 4.5);
    }

    #[test]
    fn the_manifest_describes_every_action() {
        let manifest = Basic::manifest();
        assert_eq!(manifest["name"], "basic-provider");
        let names: Vec<&str> = manifest["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "echo",
                "add_numbers",
                "greet",
                "create_profile",
                "process_order"
            ]
        );
        let create = &manifest["actions"][3];
        assert_eq!(create["account_required"], true);
        assert_eq!(
            create["account_schema"]["properties"]["api_key"]["minLength"],
            32
        );
        assert_eq!(
            manifest["actions"][0]["description"],
            "Echo back the message."
        );
    }
}
