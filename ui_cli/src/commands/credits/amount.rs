//! Credit amounts: the ledger counts integer milli-units (MYCELIAL.md,
//! "Ledger"); people type and read units with up to three decimals. Parsing
//! is exact, on the digits, with no floating point anywhere: `12.5` is 12500.

/// Milli-units in one unit.
pub const MILLI_PER_UNIT: i64 = 1000;

/// Why an amount typed by the user was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing was given.
    #[error("the amount is empty: give units with at most 3 decimals, e.g. 12.5")]
    Empty,
    /// A minus sign.
    #[error("{0:?} is negative: only a positive amount can be sent")]
    Negative(String),
    /// Zero (`0`, `0.000`).
    #[error("{0:?} is zero: send at least 0.001")]
    Zero(String),
    /// Finer than a milli-unit.
    #[error("{0:?} has more than 3 decimals: the smallest amount is 0.001")]
    TooManyDecimals(String),
    /// Not digits with an optional decimal point.
    #[error("{0:?} is not an amount: expected units with at most 3 decimals, e.g. 12 or 12.5")]
    NotANumber(String),
    /// More milli-units than the ledger can count.
    #[error("{0:?} is too large for the ledger")]
    TooLarge(String),
}

/// Parses a positive amount in units (`12`, `12.5`, `0.001`) into
/// milli-units. Accepts digits with an optional `.` and one to three
/// decimals; refuses signs, exponents, separators, zero and anything finer
/// than a milli-unit.
pub fn parse_amount(text: &str) -> Result<i64, AmountError> {
    let t = text.trim();
    let owned = || t.to_owned();
    if t.is_empty() {
        return Err(AmountError::Empty);
    }
    if t.starts_with('-') {
        return Err(AmountError::Negative(owned()));
    }
    let (whole, decimals) = match t.split_once('.') {
        Some((w, d)) => (w, d),
        None => (t, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (t.contains('.') && !digits(decimals)) {
        return Err(AmountError::NotANumber(owned()));
    }
    if decimals.len() > 3 {
        return Err(AmountError::TooManyDecimals(owned()));
    }
    // Only digits: parsing fails on overflow alone.
    let whole: i64 = whole.parse().map_err(|_| AmountError::TooLarge(owned()))?;
    // One to three digits, right-padded: "5" is 500 milli-units, "05" is 50.
    let fraction: i64 = if decimals.is_empty() {
        0
    } else {
        format!("{decimals:0<3}")
            .parse()
            .map_err(|_| AmountError::NotANumber(owned()))?
    };
    let milli = whole
        .checked_mul(MILLI_PER_UNIT)
        .and_then(|m| m.checked_add(fraction))
        .ok_or_else(|| AmountError::TooLarge(owned()))?;
    if milli == 0 {
        return Err(AmountError::Zero(owned()));
    }
    Ok(milli)
}

/// Milli-units as units with three decimals: `12.500`, `-0.001`.
pub fn format_units(milli: i64) -> String {
    let sign = if milli < 0 { "-" } else { "" };
    let abs = milli.unsigned_abs();
    let per = MILLI_PER_UNIT.unsigned_abs();
    format!("{sign}{}.{:03}", abs / per, abs % per)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn amounts_are_exact_milli_units() {
        for (text, milli) in [
            ("12.5", 12_500),
            ("12", 12_000),
            ("12.50", 12_500),
            ("12.500", 12_500),
            ("0.001", 1),
            ("0.05", 50),
            ("0.1", 100),
            ("007.007", 7_007),
            (" 3.25 ", 3_250),
            ("9223372036854775.807", i64::MAX),
        ] {
            assert_eq!(parse_amount(text), Ok(milli), "{text}");
        }
    }

    #[test]
    fn bad_amounts_say_why() {
        use AmountError::*;
        for (text, expected) in [
            ("", Empty),
            ("  ", Empty),
            ("-5", Negative("-5".into())),
            ("-0.5", Negative("-0.5".into())),
            ("0", Zero("0".into())),
            ("0.000", Zero("0.000".into())),
            ("1.2345", TooManyDecimals("1.2345".into())),
            ("0.0001", TooManyDecimals("0.0001".into())),
            ("1.5000", TooManyDecimals("1.5000".into())),
            (
                "9223372036854775.808",
                TooLarge("9223372036854775.808".into()),
            ),
            ("9223372036854776", TooLarge("9223372036854776".into())),
            (
                "99999999999999999999",
                TooLarge("99999999999999999999".into()),
            ),
        ] {
            assert_eq!(parse_amount(text), Err(expected), "{text:?}");
        }
        for text in [
            "+5", "1e3", "1,5", "1_000", ".5", "5.", "1.2.3", "abc", "½", "1 000", "0x10", "NaN",
            "inf",
        ] {
            assert_eq!(parse_amount(text), Err(NotANumber(text.into())), "{text:?}");
        }
        assert_eq!(
            parse_amount("1.2345").expect_err("too fine").to_string(),
            "\"1.2345\" has more than 3 decimals: the smallest amount is 0.001"
        );
        assert_eq!(
            parse_amount("-5").expect_err("negative").to_string(),
            "\"-5\" is negative: only a positive amount can be sent"
        );
    }

    #[test]
    fn units_print_with_three_decimals() {
        assert_eq!(format_units(12_500), "12.500");
        assert_eq!(format_units(0), "0.000");
        assert_eq!(format_units(1), "0.001");
        assert_eq!(format_units(-1), "-0.001");
        assert_eq!(format_units(-100_000), "-100.000");
        assert_eq!(format_units(i64::MAX), "9223372036854775.807");
        assert_eq!(format_units(i64::MIN), "-9223372036854775.808");
    }

    proptest! {
        #[test]
        fn printed_amounts_parse_back(milli in 1..=i64::MAX) {
            prop_assert_eq!(parse_amount(&format_units(milli)), Ok(milli));
        }

        #[test]
        fn any_whole_and_up_to_three_decimals_is_exact(
            whole in 0..1_000_000_000i64,
            decimals in "[0-9]{1,3}",
        ) {
            let text = format!("{whole}.{decimals}");
            let padded: i64 = format!("{decimals:0<3}").parse().expect("digits");
            let milli = whole * 1000 + padded;
            if milli == 0 {
                prop_assert_eq!(parse_amount(&text), Err(AmountError::Zero(text.clone())));
            } else {
                prop_assert_eq!(parse_amount(&text), Ok(milli));
            }
        }

        #[test]
        fn four_or_more_decimals_never_parse(whole in 0..1_000_000i64, decimals in "[0-9]{4,8}") {
            let text = format!("{whole}.{decimals}");
            prop_assert_eq!(parse_amount(&text), Err(AmountError::TooManyDecimals(text.clone())));
        }

        #[test]
        fn arbitrary_text_is_refused_or_positive(text in "\\PC{0,24}") {
            if let Ok(milli) = parse_amount(&text) {
                prop_assert!(milli > 0, "{text:?} parsed to {milli}");
            }
        }
    }
}
