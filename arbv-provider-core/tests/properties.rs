//! Property tests of the parsers and the validation summary: the checks the cargo-fuzz targets in
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

const UNITS: &[&str] = &[
    "s", "sec", "second", "seconds", "m", "min", "minute", "minutes", "h", "hour", "hours", "d",
    "day", "days", "ms", "x", "",
];

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn rate_spec_any_text(text in ".{0,24}") {
        invariants::rate_spec(&text);
    }

    #[test]
    fn rate_spec_well_formed(
        count in prop_oneof![any::<u32>(), 0u32..3],
        multiple in prop::option::of(prop_oneof![any::<u64>(), 0u64..100]),
        unit in prop::sample::select(UNITS),
        space in prop::sample::select(&[" ", "", "\t"][..]),
    ) {
        let multiple = multiple.map(|m| m.to_string()).unwrap_or_default();
        invariants::rate_spec(&format!("{space}{count}{space}/{space}{multiple}{unit}{space}"));
    }

    #[test]
    fn env_duration_any_text(text in ".{0,24}", allow_zero in any::<bool>()) {
        invariants::env_duration(&text, allow_zero);
    }

    #[test]
    fn env_duration_well_formed(
        number in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..100).prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            (0.0f64..10.0).prop_map(|f| f.to_string()),
        ],
        unit in prop::sample::select(&["", "ns", "us", "ms", "s", "m", "h", "d", "w", "y", "x", " s"][..]),
        allow_zero in any::<bool>(),
    ) {
        invariants::env_duration(&format!("{number}{unit}"), allow_zero);
    }

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

/// Found by `env_duration_well_formed`: zero written with a unit, or a number of seconds below a
/// nanosecond, passed where zero is refused.
#[test]
fn zero_with_a_unit_is_refused_where_zero_is() {
    use arbv_provider_core::config::fuzzing::parse_duration;
    // The last one rounds to zero nanoseconds (found by `env_duration_well_formed` too).
    for text in ["0ns", "0s", " 0ms ", "0.0000000001"] {
        assert!(parse_duration(text, false).is_err(), "{text:?}");
        assert_eq!(
            parse_duration(text, true).unwrap(),
            std::time::Duration::ZERO
        );
    }
}

/// Found by `env_duration_any_text`: a number of seconds was reported trimmed, not as given.
#[test]
fn a_refused_number_is_reported_as_given() {
    let error = arbv_provider_core::config::fuzzing::parse_duration(":0\u{b}", true).unwrap_err();
    assert!(
        matches!(&error, arbv_provider_core::ConfigError::Invalid { value, .. } if value == ":0\u{b}"),
        "{error:?}"
    );
}
