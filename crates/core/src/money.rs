//! Money as integers: USD strings to and from `u64` micro-USD, and atomic token amounts (decimal
//! strings up to uint256) converted to micro-USD by rounding up. Never `f64`.

use std::cmp::Ordering;
use std::fmt;

/// Micro-USD in one US dollar.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// Fraction digits of a micro-USD amount.
const USD_DECIMALS: usize = 6;

/// 2^256 - 1, the largest atomic amount (uint256).
/// 2^256 - 1, the largest atomic amount, as decimal digits.
pub const UINT256_MAX: &str =
    "115792089237316195423570985008687907853269984665640564039457584007913129639935";

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount string is empty.
    #[error("amount is empty; give a decimal such as \"25.00\"")]
    Empty,
    /// The amount is not plain decimal digits (no sign, spaces, exponent, separators or hex).
    #[error("amount is not a plain decimal; write digits with an optional fraction, e.g. 25.00")]
    NotDecimal,
    /// A USD amount has more than six fraction digits.
    #[error("amount has more than 6 fraction digits; micro-USD is the smallest unit")]
    TooManyDecimals,
    /// The amount does not fit its range (u64 micro-USD, or uint256 atomic units).
    #[error("amount is out of range")]
    OutOfRange,
}

/// Parses a USD decimal ("25", "25.00", "0.000001") into micro-USD, exactly.
pub fn parse_usd(s: &str) -> Result<u64, MoneyError> {
    let (whole, fraction) = split_usd(s)?;
    if fraction.len() > USD_DECIMALS {
        return Err(MoneyError::TooManyDecimals);
    }
    digits_to_u64(whole)?
        .checked_mul(MICROS_PER_USD)
        .and_then(|w| w.checked_add(fraction_micros(fraction)))
        .ok_or(MoneyError::OutOfRange)
}

/// Parses a USD decimal with any number of fraction digits into micro-USD rounded down, for an
/// amount predebit must stay at or below (AgentCore's `maxSpendAmount`): "0.0000019" is 1
/// micro-USD, and a value beyond `u64` micro-USD is `u64::MAX`, which any predebit amount is at or
/// below. Only plain digits with an optional fraction are read; anything else is `NotDecimal`.
pub fn parse_usd_floor(s: &str) -> Result<u64, MoneyError> {
    let (whole, fraction) = split_usd(s)?;
    Ok(digits_to_u64(whole)
        .ok()
        .and_then(|w| w.checked_mul(MICROS_PER_USD))
        .and_then(|w| w.checked_add(fraction_micros(fraction)))
        .unwrap_or(u64::MAX))
}

/// The whole and fraction digits of a plain USD decimal (no sign, exponent or spaces).
fn split_usd(s: &str) -> Result<(&str, &str), MoneyError> {
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if !is_digits(whole) || (s.contains('.') && !is_digits(fraction)) {
        return Err(MoneyError::NotDecimal);
    }
    Ok((whole, fraction))
}

/// The first six fraction digits as micro-USD (the rest cut off).
fn fraction_micros(fraction: &str) -> u64 {
    (0..USD_DECIMALS).fold(0u64, |acc, i| {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| u64::from(b - b'0'));
        acc * 10 + digit
    })
}

/// Formats micro-USD as a USD decimal with 2 to 6 fraction digits ("25.00", "1.50", "0.000001").
pub fn format_usd(micros: u64) -> String {
    let whole = micros / MICROS_PER_USD;
    let fraction = format!("{:06}", micros % MICROS_PER_USD);
    let significant = fraction.trim_end_matches('0').len().max(2);
    format!("{whole}.{}", &fraction[..significant])
}

/// An atomic token amount: canonical decimal digits (no leading zeros, "0" for zero), at most
/// 2^256-1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AtomicAmount(String);

impl AtomicAmount {
    /// Parses canonical decimal digits; leading zeros are refused so each amount has one spelling.
    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        if s.is_empty() {
            return Err(MoneyError::Empty);
        }
        if !is_digits(s) || (s.len() > 1 && s.starts_with('0')) {
            return Err(MoneyError::NotDecimal);
        }
        if compare_digits(s, UINT256_MAX) == Ordering::Greater {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Self(s.to_string()))
    }

    /// The canonical digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the amount is zero.
    pub fn is_zero(&self) -> bool {
        self.0 == "0"
    }

    /// Micro-USD for a USD-pegged token: ceil(atomic * 10^6 / 10^decimals); overflow is an error.
    pub fn to_micros(&self, decimals: u8) -> Result<u64, MoneyError> {
        let decimals = usize::from(decimals);
        if decimals <= USD_DECIMALS {
            // Fewer decimals than micro-USD: multiply by appending zeros, exact.
            let scale = 10u64.pow((USD_DECIMALS - decimals) as u32);
            return digits_to_u64(&self.0)?
                .checked_mul(scale)
                .ok_or(MoneyError::OutOfRange);
        }
        // More decimals: drop the last `shift` digits and round up if any of them is non-zero.
        let shift = decimals - USD_DECIMALS;
        let split = self.0.len().saturating_sub(shift);
        let (quotient, remainder) = self.0.split_at(split);
        let quotient = if quotient.is_empty() {
            0
        } else {
            digits_to_u64(quotient)?
        };
        let round_up = remainder.bytes().any(|b| b != b'0');
        quotient
            .checked_add(u64::from(round_up))
            .ok_or(MoneyError::OutOfRange)
    }
}

impl fmt::Display for AtomicAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for AtomicAmount {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_digits(&self.0, &other.0)
    }
}

impl PartialOrd for AtomicAmount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<'de> serde::Deserialize<'de> for AtomicAmount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(AtomicAmountVisitor)
    }
}

/// Accepts only strings: a JSON number cannot carry uint256 exactly.
struct AtomicAmountVisitor;

impl serde::de::Visitor<'_> for AtomicAmountVisitor {
    type Value = AtomicAmount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string of decimal digits (an atomic token amount up to 2^256-1)")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AtomicAmount, E> {
        AtomicAmount::parse(v).map_err(E::custom)
    }
}

/// Whether `s` is one or more ASCII digits.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Numeric order of two digit strings without leading zeros.
fn compare_digits(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Digits to `u64` with checked arithmetic; overflow is `OutOfRange`.
fn digits_to_u64(digits: &str) -> Result<u64, MoneyError> {
    digits.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(u64::from(b - b'0')))
            .ok_or(MoneyError::OutOfRange)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TWO_POW_256: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639936";

    fn atomic(s: &str) -> AtomicAmount {
        AtomicAmount::parse(s).unwrap()
    }

    // ---- parse_usd ----

    #[test]
    fn parse_usd_reads_whole_dollars() {
        // GIVEN a whole-dollar string WHEN parsed THEN it is that many million micros
        assert_eq!(parse_usd("25"), Ok(25_000_000));
    }

    #[test]
    fn parse_usd_reads_two_decimals() {
        assert_eq!(parse_usd("25.00"), Ok(25_000_000));
        assert_eq!(parse_usd("1.50"), Ok(1_500_000));
    }

    #[test]
    fn parse_usd_reads_one_micro() {
        assert_eq!(parse_usd("0.000001"), Ok(1));
    }

    #[test]
    fn parse_usd_reads_zero() {
        assert_eq!(parse_usd("0"), Ok(0));
        assert_eq!(parse_usd("0.00"), Ok(0));
    }

    #[test]
    fn parse_usd_refuses_empty() {
        assert_eq!(parse_usd(""), Err(MoneyError::Empty));
    }

    #[test]
    fn parse_usd_refuses_seven_decimals() {
        assert_eq!(parse_usd("0.0000001"), Err(MoneyError::TooManyDecimals));
    }

    #[test]
    fn parse_usd_refuses_signs_spaces_exponents_and_separators() {
        for input in [
            "-1", "+1", " 1", "1 ", "1e3", "1.", ".5", "1,000", "1.2.3", "0x10", "1_000", "١",
        ] {
            assert_eq!(parse_usd(input), Err(MoneyError::NotDecimal), "{input:?}");
        }
    }

    #[test]
    fn parse_usd_reads_the_largest_u64() {
        // GIVEN u64::MAX micros written as dollars WHEN parsed THEN it is exactly u64::MAX
        assert_eq!(parse_usd("18446744073709.551615"), Ok(u64::MAX));
    }

    #[test]
    fn parse_usd_refuses_one_micro_above_u64() {
        assert_eq!(
            parse_usd("18446744073709.551616"),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(parse_usd("18446744073710"), Err(MoneyError::OutOfRange));
        assert_eq!(
            parse_usd("99999999999999999999999999"),
            Err(MoneyError::OutOfRange)
        );
    }

    // ---- parse_usd_floor ----

    #[test]
    fn parse_usd_floor_reads_plain_decimals_exactly() {
        for (input, micros) in [
            ("5", 5_000_000),
            ("5.00", 5_000_000),
            ("0.000001", 1),
            ("007.5", 7_500_000),
            ("18446744073709.551615", u64::MAX),
        ] {
            assert_eq!(parse_usd_floor(input), Ok(micros), "{input:?}");
        }
    }

    #[test]
    fn parse_usd_floor_rounds_fractions_below_a_micro_down() {
        assert_eq!(parse_usd_floor("0.0000001"), Ok(0));
        assert_eq!(parse_usd_floor("0.0000019"), Ok(1));
        assert_eq!(parse_usd_floor("4.9999999999999999999"), Ok(4_999_999));
    }

    #[test]
    fn parse_usd_floor_caps_amounts_beyond_u64_at_u64_max() {
        assert_eq!(parse_usd_floor("18446744073709.551616"), Ok(u64::MAX));
        assert_eq!(
            parse_usd_floor(&format!("{}.5", "9".repeat(400))),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn parse_usd_floor_refuses_what_is_not_a_plain_decimal() {
        for input in [
            "-1", "+1", " 1", "1 ", "1e3", "1E3", "1.", ".5", "1,000", "1.2.3", "0x10", "1_000",
            "١", "NaN", "inf", "-0.5", "5 USD", "$5",
        ] {
            assert_eq!(
                parse_usd_floor(input),
                Err(MoneyError::NotDecimal),
                "{input:?}"
            );
        }
        assert_eq!(parse_usd_floor(""), Err(MoneyError::Empty));
    }

    proptest! {
        #[test]
        fn parse_usd_floor_never_exceeds_the_written_amount(whole in 0u64..20_000_000_000_000, fraction in "[0-9]{0,12}") {
            let text = if fraction.is_empty() { whole.to_string() } else { format!("{whole}.{fraction}") };
            let micros = parse_usd_floor(&text).unwrap();
            // micros <= text < micros + 1 micro-USD, compared as u128 with 12 fraction digits
            let padded = format!("{fraction:0<12}");
            let scaled = u128::from(whole) * 1_000_000_000_000 + padded.parse::<u128>().unwrap();
            let floor = u128::from(micros) * 1_000_000;
            if micros < u64::MAX {
                prop_assert!(floor <= scaled && scaled < floor + 1_000_000);
            } else {
                prop_assert!(floor <= scaled);
            }
        }
    }

    // ---- format_usd ----

    #[test]
    fn format_usd_keeps_two_decimals_for_whole_dollars() {
        assert_eq!(format_usd(25_000_000), "25.00");
        assert_eq!(format_usd(0), "0.00");
    }

    #[test]
    fn format_usd_trims_zeros_beyond_two_decimals() {
        assert_eq!(format_usd(1_500_000), "1.50");
        assert_eq!(format_usd(1_234_500), "1.2345");
    }

    #[test]
    fn format_usd_shows_one_micro() {
        assert_eq!(format_usd(1), "0.000001");
    }

    #[test]
    fn format_usd_shows_the_largest_u64() {
        assert_eq!(format_usd(u64::MAX), "18446744073709.551615");
    }

    // ---- AtomicAmount::parse ----

    #[test]
    fn atomic_parse_reads_digits() {
        let amount = atomic("10000");
        assert_eq!(amount.as_str(), "10000");
        assert!(!amount.is_zero());
    }

    #[test]
    fn atomic_parse_reads_zero() {
        assert!(atomic("0").is_zero());
    }

    #[test]
    fn atomic_parse_refuses_non_digits() {
        for input in ["-1", "1.5", "+1", "0x10", "1e3", " 1", "1 ", "1,0", "１"] {
            assert_eq!(
                AtomicAmount::parse(input),
                Err(MoneyError::NotDecimal),
                "{input:?}"
            );
        }
    }

    #[test]
    fn atomic_parse_refuses_empty() {
        assert_eq!(AtomicAmount::parse(""), Err(MoneyError::Empty));
    }

    #[test]
    fn atomic_parse_refuses_leading_zeros() {
        assert_eq!(AtomicAmount::parse("007"), Err(MoneyError::NotDecimal));
        assert_eq!(AtomicAmount::parse("00"), Err(MoneyError::NotDecimal));
    }

    #[test]
    fn atomic_parse_reads_uint256_max() {
        assert_eq!(atomic(UINT256_MAX).as_str(), UINT256_MAX);
    }

    #[test]
    fn atomic_parse_refuses_two_pow_256() {
        assert_eq!(
            AtomicAmount::parse(TWO_POW_256),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(
            AtomicAmount::parse(&format!("1{UINT256_MAX}")),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn atomic_amounts_order_numerically() {
        assert!(atomic("9") < atomic("10"));
        assert!(atomic("100") > atomic("99"));
        assert!(atomic("0") < atomic("1"));
        assert_eq!(atomic("42").cmp(&atomic("42")), Ordering::Equal);
    }

    #[test]
    fn atomic_amount_deserializes_from_a_json_string() {
        let amount: AtomicAmount = serde_json::from_str("\"1000000\"").unwrap();
        assert_eq!(amount.as_str(), "1000000");
    }

    #[test]
    fn atomic_amount_refuses_a_json_number() {
        let err = serde_json::from_str::<AtomicAmount>("1000000").unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn atomic_amount_refuses_an_invalid_json_string() {
        assert!(serde_json::from_str::<AtomicAmount>("\"1.5\"").is_err());
    }

    #[test]
    fn atomic_amount_serializes_as_a_json_string() {
        assert_eq!(serde_json::to_string(&atomic("123")).unwrap(), "\"123\"");
    }

    // ---- to_micros ----

    #[test]
    fn six_decimal_amount_equal_to_a_cap_converts_to_exactly_the_cap() {
        // GIVEN 25 USDC in atomic units WHEN converted THEN it is exactly 25.00 USD
        assert_eq!(atomic("25000000").to_micros(6), Ok(25_000_000));
    }

    #[test]
    fn six_decimal_amount_one_unit_over_a_cap_converts_to_cap_plus_one() {
        assert_eq!(atomic("25000001").to_micros(6), Ok(25_000_001));
    }

    #[test]
    fn one_token_of_an_eighteen_decimal_asset_is_one_million_micros() {
        // The 18-decimal trap: 10^18 wei is 1 USD = 10^6 micros, not 10^12.
        assert_eq!(atomic("1000000000000000000").to_micros(18), Ok(1_000_000));
    }

    #[test]
    fn one_wei_over_one_token_of_eighteen_decimals_rounds_up_to_one_more_micro() {
        assert_eq!(atomic("1000000000000000001").to_micros(18), Ok(1_000_001));
    }

    #[test]
    fn one_wei_rounds_up_to_one_micro() {
        assert_eq!(atomic("1").to_micros(18), Ok(1));
    }

    #[test]
    fn zero_converts_to_zero_micros_for_any_decimals() {
        for decimals in [0, 2, 6, 18, 77, 255] {
            assert_eq!(atomic("0").to_micros(decimals), Ok(0), "{decimals}");
        }
    }

    #[test]
    fn fewer_decimals_than_micros_multiply() {
        // GIVEN 1.23 of a 2-decimal token WHEN converted THEN it is 1_230_000 micros
        assert_eq!(atomic("123").to_micros(2), Ok(1_230_000));
        assert_eq!(atomic("7").to_micros(0), Ok(7_000_000));
    }

    #[test]
    fn zero_decimal_amount_overflowing_u64_is_out_of_range() {
        // u64::MAX / 10^6 = 18446744073709 whole tokens fit; one more does not.
        assert_eq!(
            atomic("18446744073709").to_micros(0),
            Ok(18_446_744_073_709_000_000)
        );
        assert_eq!(
            atomic("18446744073710").to_micros(0),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn six_decimal_amount_of_u64_max_fits_and_one_more_is_out_of_range() {
        assert_eq!(atomic("18446744073709551615").to_micros(6), Ok(u64::MAX));
        assert_eq!(
            atomic("18446744073709551616").to_micros(6),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn rounding_up_past_u64_max_is_out_of_range_not_wrapped() {
        // GIVEN u64::MAX micros plus one wei WHEN converted THEN ceil overflows: OutOfRange
        assert_eq!(
            atomic("18446744073709551615000000000001").to_micros(18),
            Err(MoneyError::OutOfRange)
        );
        assert_eq!(
            atomic("18446744073709551615000000000000").to_micros(18),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn uint256_max_is_out_of_range_for_eighteen_decimals() {
        assert_eq!(
            atomic(UINT256_MAX).to_micros(18),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn uint256_max_with_many_decimals_converts_exactly_with_ceiling() {
        // 2^256-1 = 1.15792089... * 10^77: with 77 decimals, 1_157_920.89... micros, so 1_157_921
        assert_eq!(atomic(UINT256_MAX).to_micros(77), Ok(1_157_921));
        assert_eq!(atomic(UINT256_MAX).to_micros(83), Ok(2));
        assert_eq!(atomic(UINT256_MAX).to_micros(84), Ok(1));
        assert_eq!(atomic(UINT256_MAX).to_micros(255), Ok(1));
    }

    // ---- properties ----

    /// The u128 reference: ceil(atomic * 10^6 / 10^decimals), or None when it does not fit u64.
    fn reference_micros(atomic: u128, decimals: u32) -> Option<u64> {
        let value = if decimals <= 6 {
            atomic.checked_mul(10u128.pow(6 - decimals))?
        } else {
            match 10u128.checked_pow(decimals - 6) {
                Some(divisor) => atomic.div_ceil(divisor),
                // A divisor beyond u128 exceeds any u128 amount: ceil is 1, or 0 for zero.
                None => u128::from(atomic != 0),
            }
        };
        u64::try_from(value).ok()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn format_then_parse_usd_round_trips_any_u64(micros in any::<u64>()) {
            prop_assert_eq!(parse_usd(&format_usd(micros)), Ok(micros));
        }

        #[test]
        fn parse_usd_never_panics(s in "\\PC*") {
            let _ = parse_usd(&s);
        }

        #[test]
        fn parse_usd_never_panics_on_decimal_like_strings(s in "[-+ 0-9.,e]{0,30}") {
            if let Ok(micros) = parse_usd(&s) {
                // Anything accepted formats back to the same amount.
                prop_assert_eq!(parse_usd(&format_usd(micros)), Ok(micros));
            }
        }

        #[test]
        fn atomic_parse_never_panics(s in "\\PC*") {
            let _ = AtomicAmount::parse(&s);
        }

        #[test]
        fn atomic_parse_accepts_exactly_canonical_u128_digits(n in any::<u128>()) {
            let amount = AtomicAmount::parse(&n.to_string()).unwrap();
            prop_assert_eq!(amount.as_str(), n.to_string());
        }

        #[test]
        fn to_micros_never_panics(digits in "[1-9][0-9]{0,77}", decimals in any::<u8>()) {
            if let Ok(amount) = AtomicAmount::parse(&digits) {
                let _ = amount.to_micros(decimals);
            }
        }

        #[test]
        fn to_micros_equals_the_u128_reference(n in any::<u128>(), decimals in 0u8..=77) {
            let amount = AtomicAmount::parse(&n.to_string()).unwrap();
            let expected = reference_micros(n, u32::from(decimals)).ok_or(MoneyError::OutOfRange);
            prop_assert_eq!(amount.to_micros(decimals), expected);
        }

        #[test]
        fn to_micros_equals_the_u128_reference_for_small_amounts(
            n in 0u128..=u128::from(u64::MAX),
            decimals in 0u8..=30,
        ) {
            let amount = AtomicAmount::parse(&n.to_string()).unwrap();
            let expected = reference_micros(n, u32::from(decimals)).ok_or(MoneyError::OutOfRange);
            prop_assert_eq!(amount.to_micros(decimals), expected);
        }

        #[test]
        fn to_micros_is_monotonic(
            a in "[1-9][0-9]{0,77}|0",
            b in "[1-9][0-9]{0,77}|0",
            decimals in 0u8..=80,
        ) {
            let (Ok(a), Ok(b)) = (AtomicAmount::parse(&a), AtomicAmount::parse(&b)) else {
                return Ok(());
            };
            let (low, high) = if a <= b { (a, b) } else { (b, a) };
            match (low.to_micros(decimals), high.to_micros(decimals)) {
                (Ok(l), Ok(h)) => prop_assert!(l <= h),
                // Once the smaller amount overflows, the larger must too.
                (Err(_), r) => prop_assert_eq!(r, Err(MoneyError::OutOfRange)),
                (Ok(_), Err(_)) => {}
            }
        }

        #[test]
        fn atomic_order_matches_u128_order(a in any::<u128>(), b in any::<u128>()) {
            let x = AtomicAmount::parse(&a.to_string()).unwrap();
            let y = AtomicAmount::parse(&b.to_string()).unwrap();
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
        }
    }
}
