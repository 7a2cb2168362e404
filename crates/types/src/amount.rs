//! Token amounts: integers of a base unit, checked arithmetic, exact decimal
//! text. There is no float anywhere near money.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Base units in one token (PCL). Nine decimals, like a nano-unit.
pub const BASE_UNITS_PER_TOKEN: u128 = 1_000_000_000;
/// Decimals in the text form.
pub const DECIMALS: usize = 9;

/// An amount of tokens, counted in base units.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u128);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);

    /// An amount of `units` base units.
    pub const fn from_base_units(units: u128) -> Self {
        Amount(units)
    }

    /// An amount of whole tokens (a u64 of tokens always fits).
    pub const fn from_tokens(tokens: u64) -> Self {
        Amount(tokens as u128 * BASE_UNITS_PER_TOKEN)
    }

    /// The count of base units.
    pub const fn base_units(self) -> u128 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` when it would go below zero.
    #[must_use]
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self * n`, or `None` on overflow.
    #[must_use]
    pub fn checked_mul(self, n: u128) -> Option<Amount> {
        self.0.checked_mul(n).map(Amount)
    }

    /// `self * numerator / denominator` rounded down, or `None` on overflow or a
    /// zero denominator. Used for fractions (fees, slashes) without floats.
    #[must_use]
    pub fn checked_mul_div(self, numerator: u128, denominator: u128) -> Option<Amount> {
        if denominator == 0 {
            return None;
        }
        self.0
            .checked_mul(numerator)
            .map(|x| Amount(x / denominator))
    }

    /// The smaller of two amounts.
    #[must_use]
    pub fn min(self, other: Amount) -> Amount {
        Amount(self.0.min(other.0))
    }

    /// Whether this is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    /// Exact decimal tokens, trailing zeros trimmed: `1.5`, `0.000000001`, `12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / BASE_UNITS_PER_TOKEN;
        let frac = self.0 % BASE_UNITS_PER_TOKEN;
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:0DECIMALS$}");
            write!(f, "{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} PCL")
    }
}

/// An amount's text could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    /// Not a plain decimal number.
    #[error("{text:?} is not an amount: write a plain decimal number of tokens like 12 or 0.5")]
    NotANumber {
        /// The text given.
        text: String,
    },
    /// More than nine decimals.
    #[error("{text:?} has more than {DECIMALS} decimals, the smallest unit is 0.000000001")]
    TooPrecise {
        /// The text given.
        text: String,
    },
    /// Larger than the representable maximum.
    #[error("{text:?} is too large an amount")]
    Overflow {
        /// The text given.
        text: String,
    },
}

impl FromStr for Amount {
    type Err = AmountError;
    fn from_str(text: &str) -> Result<Self, AmountError> {
        let nan = || AmountError::NotANumber {
            text: text.to_owned(),
        };
        let s = text
            .trim()
            .strip_suffix("PCL")
            .unwrap_or(text.trim())
            .trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(frac)
            || (s.contains('.') && frac.is_empty())
        {
            return Err(nan());
        }
        if frac.len() > DECIMALS {
            return Err(AmountError::TooPrecise {
                text: text.to_owned(),
            });
        }
        let overflow = || AmountError::Overflow {
            text: text.to_owned(),
        };
        let whole: u128 = whole.parse().map_err(|_| overflow())?;
        let frac_units: u128 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<DECIMALS$}").parse().map_err(|_| nan())?
        };
        whole
            .checked_mul(BASE_UNITS_PER_TOKEN)
            .and_then(|w| w.checked_add(frac_units))
            .map(Amount)
            .ok_or_else(overflow)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            u128::deserialize(d).map(Amount)
        }
    }
}

impl schemars::JsonSchema for Amount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Amount".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Tokens (PCL) as an exact decimal string with at most 9 decimals, e.g. \"0.25\".",
            "pattern": "^[0-9]+(\\.[0-9]{1,9})?$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!("1.5".parse::<Amount>().unwrap(), Amount(1_500_000_000));
        assert_eq!("0.000000001".parse::<Amount>().unwrap(), Amount(1));
        assert_eq!("12 PCL".parse::<Amount>().unwrap(), Amount::from_tokens(12));
        assert_eq!(Amount(1_500_000_000).to_string(), "1.5");
        assert_eq!(Amount(1).to_string(), "0.000000001");
        for bad in ["", "-1", "1.", ".5", "1e3", "abc", "1.2.3"] {
            assert!(
                matches!(bad.parse::<Amount>(), Err(AmountError::NotANumber { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            "0.0000000001".parse::<Amount>(),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            "999999999999999999999999999999999999999".parse::<Amount>(),
            Err(AmountError::Overflow { .. })
        ));
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Amount(1).checked_sub(Amount(2)), None);
        assert_eq!(Amount(u128::MAX).checked_add(Amount(1)), None);
        assert_eq!(Amount(10).checked_mul_div(1, 3), Some(Amount(3)));
        assert_eq!(Amount(10).checked_mul_div(1, 0), None);
    }

    proptest! {
        #[test]
        fn text_round_trips(units in 0u128..u128::MAX / 2) {
            let a = Amount(units);
            prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a);
        }
    }
}
