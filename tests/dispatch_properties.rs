//! Property test of dispatch through the `basic` example provider, in process: any action name,
//! any payload bytes, any account bytes get exactly one well-formed envelope that carries none of
//! the account's values. The cargo-fuzz target `dispatch_basic` in `fuzz/` checks the same.

mod invariants;

use std::sync::LazyLock;

use arbv_provider_core::Runtime;
use proptest::prelude::*;
use serde_json::{Value, json};

static BASIC: LazyLock<Runtime> = LazyLock::new(invariants::basic_runtime);

const ACTIONS: &[&str] = &[
    "echo",
    "add_numbers",
    "greet",
    "create_profile",
    "process_order",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,10}", "[a-z]{0,40}", Just(String::new())]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "message",
                        "a",
                        "b",
                        "name",
                        "language",
                        "username",
                        "profile",
                        "tags",
                        "order_id",
                        "items",
                        "customer",
                        "api_key",
                        "permissions",
                    ])
                    .prop_map(str::to_owned),
                    ".{0,6}",
                ],
                inner,
                0..5,
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Payloads that pass validation as well as ones that do not, and bytes that are not JSON.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    let document = prop_oneof![
        json_value(),
        text().prop_map(|message| json!({ "message": message })),
        (any::<f64>(), any::<i32>()).prop_map(|(a, b)| json!({ "a": a, "b": b })),
        (text(), text()).prop_map(|(name, language)| json!({ "name": name, "language": language })),
        (text(), json_value()).prop_map(|(username, tags)| {
            json!({ "username": username, "profile": {"bio": tags}, "tags": ["t"] })
        }),
        (text(), -2i64..3).prop_map(|(id, quantity)| json!({
            "order_id": id,
            "items": [{"product_id": "p", "quantity": quantity, "price": 1.5}],
            "customer": {"name": "n", "email": "e", "address": {"street": "s", "city": "c", "zip": id}},
        })),
    ];
    prop_oneof![
        4 => document.prop_map(|d| serde_json::to_vec(&d).expect("serializes")),
        1 => prop::collection::vec(any::<u8>(), 0..24),
    ]
}

fn account() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(
            (
                prop_oneof![
                    prop::sample::select(vec!["api_key", "permissions"]).prop_map(str::to_owned),
                    ".{0,6}",
                ],
                "[a-zA-Z0-9]{0,40}",
            ),
            0..4,
        )
        .prop_map(|fields| invariants::secret_account(&fields)),
        1 => json_value().prop_map(|d| serde_json::to_vec(&d).expect("serializes")),
        1 => prop::collection::vec(any::<u8>(), 0..16),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn every_task_gets_one_clean_envelope(
        action in prop_oneof![3 => prop::sample::select(ACTIONS).prop_map(str::to_owned), 1 => ".{0,12}"],
        payload in payload(),
        account in account(),
    ) {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
        let task = invariants::task(&action, &payload, &account);
        let done = tokio.block_on(BASIC.run_task(task.clone()));
        invariants::completed(&task, &done);
    }
}
