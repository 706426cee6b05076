//! Kubernetes resource quantities.
//!
//! CPU is held in millicores: `100m` → 100, `1.5` → 1500, `2` → 2000. Memory is
//! held in bytes: `64Mi` → 67108864, `1G` → 10^9, `1.5Gi` → 1610612736. Both
//! accept a string or a number in a manifest and serialise back to a canonical
//! string, so a manifest round-trips.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Why a quantity failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a quantity: {reason}")]
pub struct QuantityError {
    input: String,
    reason: &'static str,
}

fn qerr(input: &str, reason: &'static str) -> QuantityError {
    QuantityError {
        input: input.to_owned(),
        reason,
    }
}

/// Splits `"1.5Gi"` into its number (as integer and scale of 10) and its suffix.
/// Returns `(mantissa, decimals, suffix)` so that value = mantissa / 10^decimals.
fn split_number(input: &str) -> Result<(u128, u32, &str), QuantityError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(qerr(input, "empty"));
    }
    if s.starts_with('-') {
        return Err(qerr(input, "negative"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(end);
    if num.is_empty() || num == "." {
        return Err(qerr(input, "no number"));
    }
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if frac_part.contains('.') {
        return Err(qerr(input, "more than one decimal point"));
    }
    if int_part.len() + frac_part.len() > 30 {
        return Err(qerr(input, "too large"));
    }
    let digits = format!("{int_part}{frac_part}");
    let mantissa: u128 = digits.parse().map_err(|_| qerr(input, "no number"))?;
    Ok((mantissa, frac_part.len() as u32, suffix))
}

/// value × multiplier, which must come out a whole number within u64.
fn scale(
    input: &str,
    mantissa: u128,
    decimals: u32,
    multiplier: u128,
    fraction_reason: &'static str,
) -> Result<u64, QuantityError> {
    let product = mantissa
        .checked_mul(multiplier)
        .ok_or_else(|| qerr(input, "too large"))?;
    let divisor = 10u128.pow(decimals);
    if product % divisor != 0 {
        return Err(qerr(input, fraction_reason));
    }
    u64::try_from(product / divisor).map_err(|_| qerr(input, "too large"))
}

/// A CPU quantity in millicores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuQuantity(pub u64);

impl CpuQuantity {
    /// Millicores.
    pub fn millis(self) -> u64 {
        self.0
    }
}

impl FromStr for CpuQuantity {
    type Err = QuantityError;
    fn from_str(input: &str) -> Result<Self, QuantityError> {
        let (mantissa, decimals, suffix) = split_number(input)?;
        let multiplier = match suffix {
            "m" => 1,
            "" => 1000,
            _ => return Err(qerr(input, "cpu takes no unit but `m` (millicores)")),
        };
        scale(input, mantissa, decimals, multiplier, "finer than 1m").map(Self)
    }
}

impl fmt::Display for CpuQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// A memory quantity in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemoryQuantity(pub u64);

impl MemoryQuantity {
    /// Bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

const BINARY: [(&str, u128); 6] = [
    ("Ei", 1 << 60),
    ("Pi", 1 << 50),
    ("Ti", 1 << 40),
    ("Gi", 1 << 30),
    ("Mi", 1 << 20),
    ("Ki", 1 << 10),
];
const DECIMAL: [(&str, u128); 6] = [
    ("E", 1_000_000_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("T", 1_000_000_000_000),
    ("G", 1_000_000_000),
    ("M", 1_000_000),
    ("k", 1_000),
];

impl FromStr for MemoryQuantity {
    type Err = QuantityError;
    fn from_str(input: &str) -> Result<Self, QuantityError> {
        let (mantissa, decimals, suffix) = split_number(input)?;
        let multiplier = if suffix.is_empty() {
            1
        } else if let Some((_, m)) = BINARY
            .iter()
            .chain(DECIMAL.iter())
            .find(|(s, _)| *s == suffix)
        {
            *m
        } else {
            return Err(qerr(
                input,
                "unknown unit (use Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E)",
            ));
        };
        scale(
            input,
            mantissa,
            decimals,
            multiplier,
            "not a whole number of bytes",
        )
        .map(Self)
    }
}

impl fmt::Display for MemoryQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = u128::from(self.0);
        if v != 0 {
            for (suffix, m) in BINARY {
                if v % m == 0 {
                    return write!(f, "{}{suffix}", v / m);
                }
            }
        }
        write!(f, "{}", self.0)
    }
}

/// Accepts a quantity written as a string or as a YAML/JSON number.
struct QuantityVisitor<T>(std::marker::PhantomData<T>);

impl<T> de::Visitor<'_> for QuantityVisitor<T>
where
    T: FromStr<Err = QuantityError>,
{
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a quantity such as \"500m\", \"1.5\", \"64Mi\" or a number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if !v.is_finite() {
            return Err(E::custom(format!(
                "{v} is not a quantity: not a finite number"
            )));
        }
        self.visit_str(&v.to_string())
    }
}

macro_rules! quantity_serde {
    ($t:ty, $desc:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(QuantityVisitor(std::marker::PhantomData))
            }
        }
        impl JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "description": $desc,
                    "anyOf": [
                        {"type": "string", "pattern": "^\\+?[0-9]*\\.?[0-9]+[a-zA-Z]*$"},
                        {"type": "number", "minimum": 0}
                    ]
                })
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $t {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
                OneOfBuilder::new()
                    .item(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^\\+?[0-9]*\\.?[0-9]+[a-zA-Z]*$")),
                    )
                    .item(ObjectBuilder::new().schema_type(Type::Number).minimum(Some(0)))
                    .description(Some($desc))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $t {}
    };
}

quantity_serde!(
    CpuQuantity,
    "CPU in Kubernetes notation: `100m`, `0.5`, `2`"
);
quantity_serde!(
    MemoryQuantity,
    "memory in Kubernetes notation: `64Mi`, `1Gi`, `500M`, bytes"
);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_parses_kubernetes_notation() {
        for (s, m) in [
            ("100m", 100),
            ("1.5", 1500),
            ("2", 2000),
            ("0.001", 1),
            ("+1", 1000),
        ] {
            assert_eq!(s.parse::<CpuQuantity>().unwrap().millis(), m, "{s}");
        }
        for bad in ["", "-1", "1.5m", "1Gi", "0.0001", "abc", "1..2", "."] {
            assert!(bad.parse::<CpuQuantity>().is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_parses_kubernetes_notation() {
        for (s, b) in [
            ("64Mi", 64 << 20),
            ("1Gi", 1 << 30),
            ("1.5Gi", 3 << 29),
            ("1G", 1_000_000_000),
            ("500k", 500_000),
            ("123", 123),
        ] {
            assert_eq!(s.parse::<MemoryQuantity>().unwrap().bytes(), b, "{s}");
        }
        for bad in ["64Mo", "-1Mi", "0.5", "1m", "99999999999Ei", "Mi"] {
            assert!(bad.parse::<MemoryQuantity>().is_err(), "{bad}");
        }
        let e = "64Mo".parse::<MemoryQuantity>().unwrap_err().to_string();
        assert!(e.starts_with("\"64Mo\" is not a quantity"), "{e}");
    }

    #[test]
    fn numbers_in_yaml_are_quantities() {
        let c: CpuQuantity = serde_yaml_ng::from_str("1.5").unwrap();
        assert_eq!(c.millis(), 1500);
        let c: CpuQuantity = serde_yaml_ng::from_str("2").unwrap();
        assert_eq!(c.millis(), 2000);
        let m: MemoryQuantity = serde_json::from_str("1048576").unwrap();
        assert_eq!(m.to_string(), "1Mi");
        assert!(serde_json::from_str::<CpuQuantity>("-1").is_err());
    }

    proptest! {
        #[test]
        fn cpu_display_round_trips(m in 0u64..10_000_000_000) {
            let q = CpuQuantity(m);
            prop_assert_eq!(q.to_string().parse::<CpuQuantity>().unwrap(), q);
        }

        #[test]
        fn memory_display_round_trips(b in any::<u64>()) {
            let q = MemoryQuantity(b);
            prop_assert_eq!(q.to_string().parse::<MemoryQuantity>().unwrap(), q);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in ".{0,40}") {
            let _ = s.parse::<CpuQuantity>();
            let _ = s.parse::<MemoryQuantity>();
        }
    }
}
