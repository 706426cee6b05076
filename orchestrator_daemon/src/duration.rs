//! Durations written as a whole number and a unit (`90s`, `30m`, `1h`,
//! `7d`), or bare seconds, as `join-token --ttl` takes them.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a duration: expected a whole number and a unit, s, m, h or d (e.g. 30m, 1h, 7d)"
)]
pub struct BadDuration(String);

/// Parses `text`; see the module doc.
pub fn parse(text: &str) -> Result<Duration, BadDuration> {
    let t = text.trim();
    let bad = || BadDuration(text.to_owned());
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        Some(_) => (t, 's'),
        None => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let per_unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(per_unit)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_garbage() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse(" 2d ").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "h", "1x", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
