//! The one list of accepted and refused forms. The macros and the runtime call this crate's
//! parsers, so these cases hold for `#[action(timeout = "...")]`, `rate_limit = "..."`,
//! `per = "..."` and the environment variables alike.

use std::time::Duration;

use arbv_provider_grammar::{
    Bare, DurationError, MAX_DURATION, PerPath, PerSource, RateSpec, parse_duration, parse_size,
};
use proptest::prelude::*;

mod invariants;

const MS: u64 = 1_000_000;

#[test]
fn durations_accepted_everywhere() {
    for (text, nanos) in [
        ("500ms", 500 * MS),
        ("30s", 30_000 * MS),
        (" 30s ", 30_000 * MS),
        ("1.5s", 1_500 * MS),
        ("0.25m", 15_000 * MS),
        ("2m", 120_000 * MS),
        ("2h", 7_200_000 * MS),
        ("1d", 86_400_000 * MS),
        ("1.5d", 129_600_000 * MS),
        ("1 s", 1_000 * MS),
        ("1sec", 1_000 * MS),
        ("3 minutes", 180_000 * MS),
        ("250us", 250_000),
        ("10ns", 10),
        ("1m 30s", 90_000 * MS),
        ("1m30s", 90_000 * MS),
        ("1h 30m", 5_400_000 * MS),
        ("2days 4h", 187_200_000 * MS),
        ("1.5h 30m", 7_200_000 * MS),
        ("1s 1.5s", 2_500 * MS),
        ("0s", 0),
        ("365d", 31_536_000_000 * MS),
    ] {
        for bare in [Bare::Seconds, Bare::Refused] {
            assert_eq!(
                parse_duration(text, bare),
                Ok(Duration::from_nanos(nanos)),
                "{text:?}"
            );
        }
    }
}

#[test]
fn bare_numbers_are_seconds_where_allowed() {
    for (text, millis) in [("30", 30_000), ("2.5", 2_500), (" 0 ", 0), ("0.001", 1)] {
        assert_eq!(
            parse_duration(text, Bare::Seconds),
            Ok(Duration::from_millis(millis)),
            "{text:?}"
        );
        assert_eq!(
            parse_duration(text, Bare::Refused),
            Err(DurationError::Malformed {
                bare: Bare::Refused
            }),
            "{text:?}"
        );
    }
}

#[test]
fn durations_refused_everywhere() {
    for text in [
        "",
        " ",
        "s",
        "10x",
        "1.s",
        ".5s",
        "1.2.3s",
        "-1s",
        "+1s",
        "1e3s",
        "1e3",
        ".5",
        "1.",
        "inf",
        "NaN",
        "ms",
        "1 2s",
        "1.5.5h 30m",
    ] {
        for bare in [Bare::Seconds, Bare::Refused] {
            assert_eq!(
                parse_duration(text, bare),
                Err(DurationError::Malformed { bare }),
                "{text:?}"
            );
        }
    }
    for text in [
        "366d",
        "1year",
        "31536001",
        "1000years",
        "99999999999999999999999999h",
    ] {
        assert!(
            matches!(
                parse_duration(text, Bare::Seconds),
                Err(DurationError::TooLong | DurationError::Malformed { .. })
            ),
            "{text:?}"
        );
    }
    assert_eq!(
        parse_duration("366d", Bare::Refused),
        Err(DurationError::TooLong)
    );
    assert_eq!(
        parse_duration("31536001", Bare::Seconds),
        Err(DurationError::TooLong)
    );
}

#[test]
fn duration_errors_say_what_is_accepted() {
    let refused = parse_duration("x", Bare::Refused).unwrap_err().to_string();
    assert!(
        refused.contains("\"500ms\"") && !refused.contains("seconds"),
        "{refused}"
    );
    let seconds = parse_duration("x", Bare::Seconds).unwrap_err().to_string();
    assert!(
        seconds.contains("\"2.5\"") && seconds.contains("\"500ms\""),
        "{seconds}"
    );
    let long = parse_duration("400d", Bare::Refused)
        .unwrap_err()
        .to_string();
    assert!(long.contains("a year"), "{long}");
}

#[test]
fn rates_accepted() {
    for (text, count, secs) in [
        ("10/s", 10, 1),
        ("10/m", 10, 60),
        ("200/h", 200, 3600),
        ("1000/d", 1000, 86_400),
        ("5/10s", 5, 10),
        ("100/15m", 100, 900),
        (" 3 / min ", 3, 60),
        ("2/hours", 2, 3600),
        ("1/21527749996430671s", 1, 21_527_749_996_430_671),
    ] {
        let spec: RateSpec = text.parse().unwrap();
        assert_eq!(
            (spec.count, spec.period),
            (count, Duration::from_secs(secs)),
            "{text}"
        );
    }
}

#[test]
fn rates_refused() {
    for text in [
        "10/x", "0/s", "-1/s", "10", "/s", "ten/s", "10/0s", "10/", "1.5/s", "10/s/s", "10/500ms",
        "10/1.5s", "", "10/ s5",
    ] {
        let error = text.parse::<RateSpec>().unwrap_err();
        assert_eq!(error.0, text, "the error names the text");
        assert!(error.to_string().contains("\"10/s\""), "{text}: {error}");
    }
}

/// Found by a property test: the period was written through an f64.
#[test]
fn a_long_period_is_written_back_exactly() {
    let spec: RateSpec = "1/21527749996430671s".parse().unwrap();
    assert_eq!(spec.to_string(), "1/21527749996430671s");
    assert_eq!(spec.to_string().parse::<RateSpec>(), Ok(spec));
}

#[test]
fn per_paths_accepted() {
    for (text, source, fields) in [
        (
            "account.ad_account_id",
            PerSource::Account,
            &["ad_account_id"][..],
        ),
        ("payload.user", PerSource::Payload, &["user"]),
        ("payload.user.id", PerSource::Payload, &["user", "id"]),
        ("account.owner.id", PerSource::Account, &["owner", "id"]),
        ("payload.with space", PerSource::Payload, &["with space"]),
    ] {
        let path = PerPath::parse(text).unwrap();
        assert_eq!(path.source(), source, "{text}");
        assert_eq!(path.fields(), fields, "{text}");
        assert_eq!(path.as_str(), text);
    }
}

#[test]
fn per_paths_refused() {
    for text in [
        "",
        "account",
        "payload",
        "account.",
        "payload..x",
        "payload.x.",
        ".x",
        "headers.x",
        "Account.x",
        " account.x",
    ] {
        let error = PerPath::parse(text).unwrap_err();
        assert_eq!(error.0, text);
        assert!(
            error.to_string().contains("\"account.<field>\""),
            "{text}: {error}"
        );
    }
}

#[test]
fn sizes() {
    for (text, bytes) in [
        ("65536", 65_536),
        ("0", 0),
        ("1B", 1),
        ("512KiB", 512 << 10),
        ("4MiB", 4 << 20),
        (" 4 MiB ", 4 << 20),
        ("1GiB", 1 << 30),
    ] {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
    for text in [
        "",
        "MiB",
        "4MB",
        "4 mib",
        "-1",
        "1.5MiB",
        "4MiB4",
        "99999999999999999999",
        "17179869184GiB",
    ] {
        assert!(parse_size(text).is_err(), "{text}");
    }
}

const UNITS: &[&str] = &[
    "s", "sec", "second", "seconds", "m", "min", "minute", "minutes", "h", "hour", "hours", "d",
    "day", "days", "ms", "x", "",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rate_any_text(text in ".{0,24}") {
        invariants::rate_spec(&text);
    }

    #[test]
    fn rate_well_formed(
        count in prop_oneof![any::<u32>(), 0u32..3],
        multiple in proptest::option::of(prop_oneof![any::<u64>(), 0u64..100]),
        unit in proptest::sample::select(UNITS),
        space in proptest::sample::select(&[" ", "", "\t"][..]),
    ) {
        let written = multiple.map(|m| m.to_string()).unwrap_or_default();
        let text = format!("{space}{count}{space}/{space}{written}{unit}{space}");
        invariants::rate_spec(&text);
        let unit_secs = match unit {
            "s" | "sec" | "second" | "seconds" => Some(1u64),
            "m" | "min" | "minute" | "minutes" => Some(60),
            "h" | "hour" | "hours" => Some(3600),
            "d" | "day" | "days" => Some(86_400),
            _ => None,
        };
        let expected = unit_secs
            .filter(|_| count > 0 && multiple != Some(0))
            .and_then(|unit| multiple.unwrap_or(1).checked_mul(unit))
            .map(|secs| RateSpec::new(count, Duration::from_secs(secs)));
        prop_assert_eq!(text.parse::<RateSpec>().ok(), expected, "{:?}", text);
    }

    #[test]
    fn duration_any_text(text in ".{0,24}") {
        invariants::duration(&text);
    }

    #[test]
    fn duration_well_formed(
        number in prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..100).prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            (0.0f64..10.0).prop_map(|f| f.to_string()),
        ],
        unit in proptest::sample::select(&["", "ns", "us", "ms", "s", "m", "h", "d", "w", "y", "x", " s"][..]),
    ) {
        invariants::duration(&format!("{number}{unit}"));
    }

    #[test]
    fn durations_up_to_a_year_read_back(nanos in 0..=MAX_DURATION.as_nanos() as u64) {
        invariants::duration(&humantime::format_duration(Duration::from_nanos(nanos)).to_string());
    }

    #[test]
    fn a_decimal_second_is_exact(whole in 0u64..100_000, millis in 0u64..1000) {
        let expected = Ok(Duration::from_millis(whole * 1000 + millis));
        prop_assert_eq!(parse_duration(&format!("{whole}.{millis:03}s"), Bare::Refused), expected);
        prop_assert_eq!(parse_duration(&format!("{whole}.{millis:03}"), Bare::Seconds), expected);
    }
}
