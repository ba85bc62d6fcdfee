//! A ticket's price, in integer cents.
//!
//! Prices arrive as JSON numbers (`19.99`). They are parsed from the number's exact text
//! as a decimal, never through a float: `19.99 * 100` is `1998.9999999999998` in binary
//! floating point, which is how the original app came to store fractional cents.

use common::FieldError;
use serde::Serialize;

/// Validation message of the contract, for every way a price can be wrong.
pub const PRICE_MESSAGE: &str = "Price must be greater than 0";

/// The highest price: 1,000,000.00.
pub const MAX_CENTS: u64 = 100_000_000;

/// Decimal digits of [`MAX_CENTS`]; no valid price has more.
const MAX_DIGITS: usize = 9;

/// A price greater than 0 and at most [`MAX_CENTS`], in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PriceCents(u64);

impl PriceCents {
    /// Parses the JSON text of the `price` field (e.g. `10.99`, `10`, `1.5e1`).
    ///
    /// `None` (missing), strings, other JSON values, negative numbers, zero, more than
    /// two decimals (`10.999`) and more than 1,000,000 are all invalid. Trailing zeros do
    /// not count as decimals (`10.990` is 10.99).
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldError> {
        raw.and_then(exact_cents)
            .and_then(Self::from_cents)
            .ok_or_else(|| FieldError::new("price", PRICE_MESSAGE))
    }

    /// Parses a number already decoded by serde_json, from its text.
    ///
    /// Without serde_json's `arbitrary_precision`, a fractional number was stored as the
    /// nearest `f64`, whose shortest text is what the client sent for any price with a
    /// few digits; prefer [`PriceCents::parse`] on the raw text where it is available.
    pub fn from_number(number: &serde_json::Number) -> Result<Self, FieldError> {
        Self::parse(Some(&number.to_string()))
    }

    /// A price from a number of cents, if it is in range.
    pub fn from_cents(cents: u64) -> Option<Self> {
        (1..=MAX_CENTS).contains(&cents).then_some(Self(cents))
    }

    /// The price in cents.
    pub fn cents(self) -> u64 {
        self.0
    }

    /// The price in dollars as a JSON number: `10` for 1000 cents, `10.99` for 1099.
    pub fn dollars(self) -> Dollars {
        if self.0.is_multiple_of(100) {
            Dollars::Whole(self.0 / 100)
        } else {
            // Both operands are exact and IEEE division rounds correctly, so this is the
            // double nearest to the decimal value, which serializes as e.g. `10.99`.
            Dollars::Fraction(self.0 as f64 / 100.0)
        }
    }
}

/// The `price` field of responses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Dollars {
    /// A whole number of dollars, written without a fraction (`10`).
    Whole(u64),
    /// Dollars and cents (`10.99`).
    Fraction(f64),
}

/// The exact value of a JSON number text in cents, when it is a non-negative whole
/// number of cents with at most [`MAX_DIGITS`] digits; `None` otherwise.
fn exact_cents(text: &str) -> Option<u64> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], parse_exponent(&text[at + 1..])?),
        None => (text, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let integer_ok = is_digits(integer) && (integer == "0" || !integer.starts_with('0'));
    let fraction_ok = (fraction.is_empty() && !mantissa.contains('.')) || is_digits(fraction);
    if !integer_ok || !fraction_ok {
        // Also every non-number: strings, `-1`, `true`, `null`, objects.
        return None;
    }

    // value = digits × 10^(exponent − |fraction|); cents = value × 100.
    let digits = format!("{integer}{fraction}");
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    let trailing_zeros = digits.trim_start_matches('0').len() - significant.len();
    let shift = exponent
        .checked_add(i64::try_from(trailing_zeros).ok()?)?
        .checked_sub(i64::try_from(fraction.len()).ok()?)?
        .checked_add(2)?;
    // A negative shift leaves a fraction of a cent (significant has no trailing zeros).
    let shift = usize::try_from(shift).ok()?;
    if significant.len().checked_add(shift)? > MAX_DIGITS {
        return None;
    }
    let significant: u64 = significant.parse().ok()?;
    Some(significant * 10u64.pow(u32::try_from(shift).ok()?))
}

fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !is_digits(digits) {
        return None;
    }
    // Too many digits for an i64 means the value is absurdly large or small: invalid.
    text.parse().ok()
}

fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(raw: &str) -> Option<u64> {
        PriceCents::parse(Some(raw)).ok().map(PriceCents::cents)
    }

    #[test]
    fn parses_exact_cents() {
        for (raw, expected) in [
            ("10.99", 1099),
            ("10", 1000),
            ("10.5", 1050),
            ("10.50", 1050),
            ("10.990", 1099),
            ("0.01", 1),
            ("0.1", 10),
            ("1.1", 110),
            ("4.35", 435),
            ("19.99", 1999),
            ("1000000", 100_000_000),
            ("1000000.00", 100_000_000),
            ("999999.99", 99_999_999),
            ("1e2", 10_000),
            ("1E+2", 10_000),
            ("1.5e1", 1500),
            ("1099e-2", 1099),
            ("0.0001e2", 1),
            ("1e6", 100_000_000),
            (" 7 ", 700),
        ] {
            assert_eq!(cents(raw), Some(expected), "{raw}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_price() {
        for raw in [
            "10.999",
            "0.001",
            "1e-3",
            "0",
            "0.00",
            "-0",
            "-1",
            "-10.99",
            "1000000.01",
            "1000001",
            "1e7",
            "1e999999999999999999999",
            "1e-999999999999999999",
            "NaN",
            "Infinity",
            "\"10\"",
            "\"10.99\"",
            "true",
            "null",
            "[10]",
            "{}",
            "",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "0x10",
            "1_000",
            "10.9 9",
        ] {
            assert_eq!(cents(raw), None, "{raw}");
        }
    }

    #[test]
    fn floats_that_do_not_multiply_evenly_are_exact() {
        // The defect of the original: 19.99 * 100 is not 1999 in f64.
        assert_ne!(19.99_f64 * 100.0, 1999.0);
        assert_eq!(cents("19.99"), Some(1999));
        assert_eq!(cents("1.13"), Some(113));
        assert_eq!(cents("0.29"), Some(29));
    }

    #[test]
    fn the_error_names_the_price_field() {
        let err = PriceCents::parse(None).unwrap_err();
        assert_eq!(
            err,
            FieldError::new("price", "Price must be greater than 0")
        );
    }

    #[test]
    fn numbers_parse_from_their_text() {
        let number: serde_json::Number = serde_json::from_str("10.99").unwrap();
        assert_eq!(PriceCents::from_number(&number).unwrap().cents(), 1099);
        let number: serde_json::Number = serde_json::from_str("10.999").unwrap();
        assert!(PriceCents::from_number(&number).is_err());
    }

    #[test]
    fn range_of_stored_cents() {
        assert_eq!(PriceCents::from_cents(0), None);
        assert_eq!(PriceCents::from_cents(1).map(PriceCents::cents), Some(1));
        assert!(PriceCents::from_cents(MAX_CENTS).is_some());
        assert_eq!(PriceCents::from_cents(MAX_CENTS + 1), None);
    }

    #[test]
    fn dollars_serialize_as_the_decimal_they_are() {
        let json = |cents| {
            serde_json::to_string(&PriceCents::from_cents(cents).unwrap().dollars()).unwrap()
        };
        assert_eq!(json(1099), "10.99");
        assert_eq!(json(1000), "10");
        assert_eq!(json(1050), "10.5");
        assert_eq!(json(1), "0.01");
        assert_eq!(json(MAX_CENTS), "1000000");
        assert_eq!(json(MAX_CENTS - 1), "999999.99");
        // Every price up to 10,000.00 (and a sample above) writes as its exact decimal
        // and parses back to the same cents.
        for cents in (1..=1_000_000).chain((1_000_000..=MAX_CENTS).step_by(9_973)) {
            let text = json(cents);
            let exact = format!("{}.{:02}", cents / 100, cents % 100);
            let exact = exact.trim_end_matches('0').trim_end_matches('.');
            assert_eq!(text, exact, "{cents}");
            assert_eq!(PriceCents::parse(Some(&text)).unwrap().cents(), cents);
        }
    }
}
