//! Numbers in the spec scripts' text notation, which `sim run` takes for arguments and
//! prints results in: integers in decimal or `0x` hexadecimal with one optional sign and
//! `_` between digits; floats in decimal or `0x` hexadecimal (`0x1.8p3`), `inf`, and NaNs
//! as `nan` (the canonical NaN), `nan:0x200000` (that payload), each with an optional sign
//! (`-nan`).
//!
//! Parsing is exact: a hexadecimal float is rounded to nearest, ties to even, and a literal
//! that does not fit (an integer past both signs' ranges, a float that rounds to infinity)
//! is an error, never a silently changed value.

use alloc::format;
use alloc::string::{String, ToString};

/// Why a number did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// The text is not a number in the notation.
    Syntax,
    /// The number is well-formed but does not fit the type.
    OutOfRange,
}

impl core::fmt::Display for NumberError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Syntax => "not a number in the spec notation",
            Self::OutOfRange => "out of range",
        })
    }
}

/// Splits one leading `+` or `-` off `text`: whether it was `-`, and the rest.
fn split_sign(text: &str) -> (bool, &str) {
    match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    }
}

/// Whether `digits` is a non-empty run of digits of `radix`, with single `_`s only between
/// two digits.
fn valid_digits(digits: &str, radix: u32) -> bool {
    !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c == '_' || c.is_digit(radix))
}

/// The value of a valid run of digits, or `None` past `u128`.
fn digits_value(digits: &str, radix: u32) -> Option<u128> {
    digits
        .chars()
        .filter_map(|c| c.to_digit(radix))
        .try_fold(0u128, |value, digit| {
            value
                .checked_mul(u128::from(radix))?
                .checked_add(u128::from(digit))
        })
}

/// Parses an integer of `bits` bits (8 to 64) in either sign's range: `-1`, `255` and
/// `0xff` are all the 8-bit pattern `0xff`. Returns the bit pattern.
///
/// # Errors
/// [`NumberError::Syntax`] unless the text is `[+-]?digits` or `[+-]?0xhexdigits`;
/// [`NumberError::OutOfRange`] when the number fits neither signed nor unsigned `bits`.
pub fn parse_int(text: &str, bits: u32) -> Result<u64, NumberError> {
    let (negative, rest) = split_sign(text);
    let (radix, digits) = match rest.strip_prefix("0x") {
        Some(hex) => (16, hex),
        None => (10, rest),
    };
    if !valid_digits(digits, radix) {
        return Err(NumberError::Syntax);
    }
    let magnitude = digits_value(digits, radix).ok_or(NumberError::OutOfRange)?;
    let mask = u128::MAX >> (128 - bits);
    if negative {
        if magnitude > 1 << (bits - 1) {
            return Err(NumberError::OutOfRange);
        }
        Ok((magnitude.wrapping_neg() & mask) as u64)
    } else if magnitude > mask {
        Err(NumberError::OutOfRange)
    } else {
        Ok(magnitude as u64)
    }
}

/// The shape of an IEEE 754 binary format.
#[derive(Debug, Clone, Copy)]
struct Format {
    /// Stored mantissa bits (23 or 52).
    mantissa: u32,
    /// Exponent bits (8 or 11).
    exponent: u32,
}

const F32: Format = Format {
    mantissa: 23,
    exponent: 8,
};
const F64: Format = Format {
    mantissa: 52,
    exponent: 11,
};

impl Format {
    const fn sign_bit(self) -> u64 {
        1 << (self.mantissa + self.exponent)
    }

    const fn max_biased(self) -> u64 {
        (1 << self.exponent) - 1
    }

    const fn mantissa_mask(self) -> u64 {
        (1 << self.mantissa) - 1
    }

    const fn infinity(self) -> u64 {
        self.max_biased() << self.mantissa
    }

    const fn quiet_bit(self) -> u64 {
        1 << (self.mantissa - 1)
    }
}

/// Parses a float in the notation into the bits of `format`.
fn parse_float(text: &str, format: Format) -> Result<u64, NumberError> {
    let (negative, rest) = split_sign(text);
    let sign = if negative { format.sign_bit() } else { 0 };
    let lower = rest.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Ok(sign | format.infinity());
    }
    if lower == "nan" {
        return Ok(sign | format.infinity() | format.quiet_bit());
    }
    if let Some(payload) = lower.strip_prefix("nan:0x") {
        if !valid_digits(payload, 16) {
            return Err(NumberError::Syntax);
        }
        let payload = digits_value(payload, 16).ok_or(NumberError::OutOfRange)?;
        if payload == 0 || payload > u128::from(format.mantissa_mask()) {
            return Err(NumberError::OutOfRange);
        }
        return Ok(sign | format.infinity() | payload as u64);
    }
    let bits = match rest.strip_prefix("0x") {
        Some(hex) => parse_hex_float(hex, format)?,
        None => parse_decimal_float(rest, format)?,
    };
    Ok(sign | bits)
}

/// A decimal float without its sign: digits with an optional fraction and exponent,
/// rounded by Rust's own (correctly rounding) parser.
fn parse_decimal_float(text: &str, format: Format) -> Result<u64, NumberError> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (mantissa, None),
    };
    let fraction_ok = fraction.is_none_or(|f| f.is_empty() || valid_digits(f, 10));
    let exponent_ok = exponent.is_none_or(|e| valid_digits(split_sign(e).1, 10));
    if !valid_digits(integer, 10) || !fraction_ok || !exponent_ok {
        return Err(NumberError::Syntax);
    }
    let plain: String = text.chars().filter(|&c| c != '_').collect();
    let (bits, infinite) = if format.mantissa == F32.mantissa {
        let value: f32 = plain.parse().map_err(|_| NumberError::Syntax)?;
        (u64::from(value.to_bits()), value.is_infinite())
    } else {
        let value: f64 = plain.parse().map_err(|_| NumberError::Syntax)?;
        (value.to_bits(), value.is_infinite())
    };
    if infinite {
        return Err(NumberError::OutOfRange);
    }
    Ok(bits)
}

/// A hexadecimal float without its sign and `0x`: hex digits with an optional fraction and
/// an optional binary exponent (`p` and decimal digits), rounded to nearest, ties to even.
fn parse_hex_float(text: &str, format: Format) -> Result<u64, NumberError> {
    let (mantissa, exponent) = match text.find(['p', 'P']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, fraction),
        None => (mantissa, ""),
    };
    if !valid_digits(integer, 16) || !(fraction.is_empty() || valid_digits(fraction, 16)) {
        return Err(NumberError::Syntax);
    }
    let mut exponent_value: i64 = 0;
    if let Some(exponent) = exponent {
        let (negative, digits) = split_sign(exponent);
        if !valid_digits(digits, 10) {
            return Err(NumberError::Syntax);
        }
        // Saturated far past any format's range, so that the sums below cannot overflow.
        let magnitude = digits_value(digits, 10).map_or(1 << 20, |v| v.min(1 << 20)) as i64;
        exponent_value = if negative { -magnitude } else { magnitude };
    }
    // The significand, its first 60 bits kept exactly and the rest folded into `sticky`.
    let (mut significand, mut sticky, mut exponent2) = (0u64, false, exponent_value);
    let digits = integer
        .chars()
        .map(|c| (c, false))
        .chain(fraction.chars().map(|c| (c, true)));
    for (c, in_fraction) in digits {
        let Some(digit) = c.to_digit(16) else {
            continue;
        };
        if significand < 1 << 56 {
            significand = significand * 16 + u64::from(digit);
            if in_fraction {
                exponent2 -= 4;
            }
        } else {
            sticky |= digit != 0;
            if !in_fraction {
                exponent2 += 4;
            }
        }
    }
    if significand == 0 {
        return Ok(0);
    }
    // value = significand * 2^exponent2; normalise the significand's top bit to bit 63.
    let leading = significand.leading_zeros();
    significand <<= leading;
    let unbiased = exponent2 - i64::from(leading) + 63;
    let bias = (1i64 << (format.exponent - 1)) - 1;
    let mut biased = unbiased + bias;
    // Bits dropped below the stored mantissa: normals keep mantissa + 1 bits, subnormals
    // fewer, by how far their exponent is below the smallest normal's.
    let mut shift = i64::from(63 - format.mantissa);
    if biased < 1 {
        shift += 1 - biased;
        biased = 0;
    }
    if shift > 64 {
        // Below half the smallest subnormal: rounds to zero.
        return Ok(0);
    }
    let shift = shift as u32;
    let wide = u128::from(significand);
    let mut mantissa = (wide >> shift) as u64;
    let remainder = wide & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    let round_up = remainder > half || (remainder == half && (sticky || mantissa & 1 == 1));
    mantissa += u64::from(round_up);
    if biased == 0 {
        // A subnormal; rounding up into bit `mantissa` makes it the smallest normal, which
        // is exactly what the bits then say.
        return Ok(mantissa);
    }
    if mantissa >> (format.mantissa + 1) != 0 {
        mantissa >>= 1;
        biased += 1;
    }
    if biased as u64 >= format.max_biased() {
        return Err(NumberError::OutOfRange);
    }
    Ok(((biased as u64) << format.mantissa) | (mantissa & format.mantissa_mask()))
}

/// Parses an `f32` in the notation; returns its bits.
///
/// # Errors
/// [`NumberError::Syntax`] for text that is not a float; [`NumberError::OutOfRange`] for a
/// finite literal that rounds to infinity or a NaN payload that is zero or too wide.
pub fn parse_f32(text: &str) -> Result<u32, NumberError> {
    parse_float(text, F32).map(|bits| bits as u32)
}

/// Parses an `f64` in the notation; returns its bits.
///
/// # Errors
/// As [`parse_f32`].
pub fn parse_f64(text: &str) -> Result<u64, NumberError> {
    parse_float(text, F64)
}

/// A NaN in the notation: `nan` for the canonical payload (the quiet bit alone), else
/// `nan:0x<payload>`, with `-` when the sign bit is set.
fn format_nan(negative: bool, payload: u64, canonical: u64) -> String {
    let sign = if negative { "-" } else { "" };
    if payload == canonical {
        format!("{sign}nan")
    } else {
        format!("{sign}nan:{payload:#x}")
    }
}

/// Formats an `f32`: as Rust prints it (`1.5`, `-0`, `inf`), NaNs in the notation.
#[must_use]
pub fn format_f32(bits: u32) -> String {
    let value = f32::from_bits(bits);
    if value.is_nan() {
        let payload = u64::from(bits) & F32.mantissa_mask();
        format_nan(bits >> 31 == 1, payload, F32.quiet_bit())
    } else {
        value.to_string()
    }
}

/// Formats an `f64`: as Rust prints it, NaNs in the notation.
#[must_use]
pub fn format_f64(bits: u64) -> String {
    let value = f64::from_bits(bits);
    if value.is_nan() {
        format_nan(bits >> 63 == 1, bits & F64.mantissa_mask(), F64.quiet_bit())
    } else {
        value.to_string()
    }
}
