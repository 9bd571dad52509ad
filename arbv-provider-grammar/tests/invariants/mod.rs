//! What the parsers must hold for any input. The property tests in `tests/forms.rs` and the
//! cargo-fuzz targets in `fuzz/` both call these functions, so a finding of one is a failing
//! case of the other. Each function panics when its input breaks a property.

use std::time::Duration;

use arbv_provider_grammar::{Bare, DurationError, MAX_DURATION, RateSpec, parse_duration};

/// `"N/period"`: a parsed rate has a count and a whole, non-zero period, and reads back the
/// same once written out; a refusal names the text as given.
pub fn rate_spec(text: &str) {
    let spec = match text.parse::<RateSpec>() {
        Ok(spec) => spec,
        Err(error) => {
            assert_eq!(error.0, text, "the error names the text");
            return;
        }
    };
    assert!(spec.count >= 1, "{text:?} -> {spec:?}");
    assert!(
        spec.period >= Duration::from_secs(1) && spec.period.subsec_nanos() == 0,
        "{text:?} -> {spec:?}"
    );
    let written = spec.to_string();
    assert_eq!(
        written.parse::<RateSpec>(),
        Ok(spec),
        "{text:?} was written back as {written:?}"
    );
}

/// A duration, with bare seconds accepted and refused: at most a year; a text with a unit
/// means the same in both modes; a refusal is `Malformed` (naming the mode) or `TooLong`; a
/// duration written with its units (`1m 30s 5ms`) reads back exactly.
pub fn duration(text: &str) {
    let seconds = parse_duration(text, Bare::Seconds);
    let refused = parse_duration(text, Bare::Refused);
    for (bare, parsed) in [(Bare::Seconds, seconds), (Bare::Refused, refused)] {
        match parsed {
            Ok(duration) => assert!(duration <= MAX_DURATION, "{text:?} -> {duration:?}"),
            Err(DurationError::Malformed { bare: named }) => assert_eq!(named, bare, "{text:?}"),
            Err(DurationError::TooLong) => {}
        }
    }
    if let Ok(duration) = refused {
        assert_eq!(seconds, Ok(duration), "{text:?} means one thing");
        let written = humantime::format_duration(duration).to_string();
        assert_eq!(
            parse_duration(&written, Bare::Refused),
            Ok(duration),
            "{text:?} -> {written:?}"
        );
    }
}
