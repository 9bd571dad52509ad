//! Byte sizes: `65536`, `512KiB`, `4MiB`, `1GiB`.

use std::fmt;

/// Why a text is not a byte size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeError;

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "write a whole number of bytes, bare or with a unit: 4194304, 512KiB, 4MiB, 1GiB",
        )
    }
}

impl std::error::Error for SizeError {}

/// Parses a number of bytes, bare or with a binary unit (`B`, `KiB`, `MiB`, `GiB`), spaces
/// allowed between them. Zero parses: whether it is allowed is the caller's to say.
///
/// ```
/// use arbv_provider_grammar::parse_size;
/// assert_eq!(parse_size("4MiB"), Ok(4 << 20));
/// assert_eq!(parse_size("65536"), Ok(65536));
/// assert!(parse_size("4MB").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(SizeError),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or(SizeError)
}
