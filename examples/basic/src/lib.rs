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
