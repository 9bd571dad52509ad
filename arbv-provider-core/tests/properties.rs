//! Property tests of the `per` keys, hub URLs and the validation summary (the grammar of
//! durations and rates has its own, in `arbv-provider-grammar`): the checks the cargo-fuzz targets in
//! `fuzz/` run for hours, run here on a few hundred generated inputs each, in seconds.

mod invariants;

use arbv_provider_core::validation::{FieldError, Violations};
use proptest::prelude::*;
use serde_json::Value;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Field names that the schema of [`invariants::schema_summary`] and the `per` paths use, so that
/// generated documents hit them, and a few others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "order_id",
            "items",
            "customer",
            "product_id",
            "quantity",
            "name",
            "address",
            "zip",
            "user",
            "id",
            "a.b",
            "~1/",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,3}",
        ".{0,6}",
    ]
}

fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[0-9]{5}",
        ".{0,12}".prop_map(|s| format!("{}{s}", invariants::SECRET)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-3i64..5).prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON numbers are finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        string_value().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn per_key_any_path_and_documents(
        text in prop_oneof![
            ".{0,16}",
            "(account|payload|headers)(\\.(user|id|a|b|)){0,3}",
        ],
        payload in json_value(),
        account in prop::option::of(json_value()),
    ) {
        invariants::per_key(&text, &payload, account.as_ref());
    }

    #[test]
    fn hub_url_any_text(
        text in prop_oneof![
            ".{0,32}",
            "(http://|https://|ftp://|HTTP://|)([a-z0-9.-]{0,8}|\\[::1\\]|[^/]{0,6})(:[0-9]{0,6})?(/.{0,4})?\\s?",
        ],
    ) {
        invariants::hub_url(&text);
    }

    #[test]
    fn summary_of_any_violations(
        errors in prop::collection::vec(
            (
                prop_oneof![Just(String::new()), "(/(a|b|a.b|~0|~1|[a-z]{0,2})){1,3}", ".{0,8}"],
                ".{0,16}",
            ),
            0..8,
        ),
        missing in prop::collection::vec(
            prop_oneof!["(a|b|a.b|~|/)(\\.(a|b)){0,2}", ".{0,8}"],
            0..4,
        ),
    ) {
        let violations = Violations {
            errors: errors
                .into_iter()
                .map(|(path, message)| FieldError { path, message })
                .collect(),
            missing,
            ..Violations::default()
        };
        invariants::summary(&violations);
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn summary_of_schema_refusals(instance in json_value()) {
        invariants::schema_summary(&instance);
    }
}
