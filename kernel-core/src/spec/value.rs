//! Values passed to and returned from spec-script actions, and the patterns results are
//! checked against.

use alloc::vec::Vec;
use core::fmt;

/// A WebAssembly value as a spec script passes it to an export or expects it back.
///
/// Floats are kept as their bit patterns so that NaN payloads survive unchanged; a `v128`
/// is one little-endian 128-bit integer (lane 0 in the low bits). References are opaque:
/// a function reference is an engine-chosen id, an extern reference is the host value
/// `n` of the script's `ref.extern n`, so the engine must give it back unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecValue {
    /// An `i32`, as its bits.
    I32(u32),
    /// An `i64`, as its bits.
    I64(u64),
    /// An `f32`, as its bits.
    F32(u32),
    /// An `f64`, as its bits.
    F64(u64),
    /// A `v128`, lane 0 in the least significant bits.
    V128(u128),
    /// A `funcref`: `None` is null, `Some` an engine-chosen id of a function.
    FuncRef(Option<u32>),
    /// An `externref`: `None` is null, `Some(n)` the host value of `ref.extern n`.
    ExternRef(Option<u32>),
}

/// How one float result is checked: its exact bits, or one of the spec's NaN classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloatPattern<Bits> {
    /// Exactly these bits (a NaN with a given payload and sign included).
    Exact(Bits),
    /// `nan:canonical`: exponent all ones, mantissa only the quiet bit, either sign.
    CanonicalNan,
    /// `nan:arithmetic`: exponent all ones and the quiet bit set, any other payload bits,
    /// either sign.
    ArithmeticNan,
}

/// The canonical `f32` NaN's magnitude: exponent all ones and the quiet bit.
const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// The canonical `f64` NaN's magnitude: exponent all ones and the quiet bit.
const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

impl FloatPattern<u32> {
    /// Whether an `f32` with these bits matches the pattern.
    #[must_use]
    pub fn matches(self, bits: u32) -> bool {
        match self {
            FloatPattern::Exact(expected) => bits == expected,
            FloatPattern::CanonicalNan => bits & !(1 << 31) == F32_CANONICAL_NAN,
            FloatPattern::ArithmeticNan => bits & F32_CANONICAL_NAN == F32_CANONICAL_NAN,
        }
    }
}

impl FloatPattern<u64> {
    /// Whether an `f64` with these bits matches the pattern.
    #[must_use]
    pub fn matches(self, bits: u64) -> bool {
        match self {
            FloatPattern::Exact(expected) => bits == expected,
            FloatPattern::CanonicalNan => bits & !(1 << 63) == F64_CANONICAL_NAN,
            FloatPattern::ArithmeticNan => bits & F64_CANONICAL_NAN == F64_CANONICAL_NAN,
        }
    }
}

/// How a `v128` result is checked, lane by lane in the script's lane shape.
///
/// Integer lanes are exact (a lane written as signed in the script is stored as its bits);
/// float lanes are each a [`FloatPattern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V128Pattern {
    /// Sixteen exact 8-bit lanes.
    I8x16([u8; 16]),
    /// Eight exact 16-bit lanes.
    I16x8([u16; 8]),
    /// Four exact 32-bit lanes.
    I32x4([u32; 4]),
    /// Two exact 64-bit lanes.
    I64x2([u64; 2]),
    /// Four `f32` lanes.
    F32x4([FloatPattern<u32>; 4]),
    /// Two `f64` lanes.
    F64x2([FloatPattern<u64>; 2]),
}

impl V128Pattern {
    /// Whether a `v128` (lane 0 in the least significant bits) matches the pattern.
    #[must_use]
    pub fn matches(&self, value: u128) -> bool {
        let lane = |index: usize, width: u32| value >> (index as u32 * width);
        match self {
            V128Pattern::I8x16(lanes) => lanes
                .iter()
                .enumerate()
                .all(|(i, &l)| lane(i, 8) as u8 == l),
            V128Pattern::I16x8(lanes) => lanes
                .iter()
                .enumerate()
                .all(|(i, &l)| lane(i, 16) as u16 == l),
            V128Pattern::I32x4(lanes) => lanes
                .iter()
                .enumerate()
                .all(|(i, &l)| lane(i, 32) as u32 == l),
            V128Pattern::I64x2(lanes) => lanes
                .iter()
                .enumerate()
                .all(|(i, &l)| lane(i, 64) as u64 == l),
            V128Pattern::F32x4(lanes) => lanes
                .iter()
                .enumerate()
                .all(|(i, l)| l.matches(lane(i, 32) as u32)),
            V128Pattern::F64x2(lanes) => lanes
                .iter()
                .enumerate()
                .all(|(i, l)| l.matches(lane(i, 64) as u64)),
        }
    }
}

/// The kind of a null reference: which reference hierarchy it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// `funcref` (and `nofunc`).
    Func,
    /// `externref` (and `noextern`).
    Extern,
}

/// An expected result of `assert_return`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expected {
    /// Exactly this `i32`.
    I32(u32),
    /// Exactly this `i64`.
    I64(u64),
    /// An `f32` matching the pattern.
    F32(FloatPattern<u32>),
    /// An `f64` matching the pattern.
    F64(FloatPattern<u64>),
    /// A `v128` matching the lane patterns.
    V128(V128Pattern),
    /// A null reference: of this kind, or of any kind when `None` (`(ref.null)`).
    RefNull(Option<RefKind>),
    /// Any non-null function reference (`(ref.func)`, with or without an index: the
    /// index is not checked, function identity is engine-specific).
    RefFunc,
    /// A non-null extern reference: with host value `n` for `Some(n)`, any for `None`.
    RefExtern(Option<u32>),
    /// Any one of these (`(either ...)`).
    Either(Vec<Expected>),
}

impl Expected {
    /// Whether `value` is a result this pattern accepts, with the spec's NaN rules.
    #[must_use]
    pub fn matches(&self, value: &SpecValue) -> bool {
        match (self, value) {
            (Expected::I32(expected), SpecValue::I32(actual)) => expected == actual,
            (Expected::I64(expected), SpecValue::I64(actual)) => expected == actual,
            (Expected::F32(pattern), SpecValue::F32(bits)) => pattern.matches(*bits),
            (Expected::F64(pattern), SpecValue::F64(bits)) => pattern.matches(*bits),
            (Expected::V128(pattern), SpecValue::V128(bits)) => pattern.matches(*bits),
            (Expected::RefNull(kind), SpecValue::FuncRef(None)) => {
                matches!(kind, None | Some(RefKind::Func))
            }
            (Expected::RefNull(kind), SpecValue::ExternRef(None)) => {
                matches!(kind, None | Some(RefKind::Extern))
            }
            (Expected::RefFunc, SpecValue::FuncRef(Some(_))) => true,
            (Expected::RefExtern(expected), SpecValue::ExternRef(Some(actual))) => {
                expected.is_none_or(|expected| expected == *actual)
            }
            (Expected::Either(choices), value) => choices.iter().any(|c| c.matches(value)),
            _ => false,
        }
    }
}

impl fmt::Display for SpecValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpecValue::I32(bits) => write!(f, "i32 {} ({bits:#x})", bits as i32),
            SpecValue::I64(bits) => write!(f, "i64 {} ({bits:#x})", bits as i64),
            SpecValue::F32(bits) => write!(f, "f32 {} ({bits:#010x})", f32::from_bits(bits)),
            SpecValue::F64(bits) => write!(f, "f64 {} ({bits:#018x})", f64::from_bits(bits)),
            SpecValue::V128(bits) => write!(f, "v128 {bits:#034x}"),
            SpecValue::FuncRef(None) => f.write_str("ref.null func"),
            SpecValue::FuncRef(Some(id)) => write!(f, "ref.func (id {id})"),
            SpecValue::ExternRef(None) => f.write_str("ref.null extern"),
            SpecValue::ExternRef(Some(n)) => write!(f, "ref.extern {n}"),
        }
    }
}

impl fmt::Display for FloatPattern<u32> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FloatPattern::Exact(bits) => write!(f, "{} ({bits:#010x})", f32::from_bits(bits)),
            FloatPattern::CanonicalNan => f.write_str("nan:canonical"),
            FloatPattern::ArithmeticNan => f.write_str("nan:arithmetic"),
        }
    }
}

impl fmt::Display for FloatPattern<u64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FloatPattern::Exact(bits) => write!(f, "{} ({bits:#018x})", f64::from_bits(bits)),
            FloatPattern::CanonicalNan => f.write_str("nan:canonical"),
            FloatPattern::ArithmeticNan => f.write_str("nan:arithmetic"),
        }
    }
}

/// Writes `lanes` separated by spaces.
fn write_lanes<T: fmt::Display>(f: &mut fmt::Formatter<'_>, lanes: &[T]) -> fmt::Result {
    for (i, lane) in lanes.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{lane}")?;
    }
    Ok(())
}

impl fmt::Display for V128Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            V128Pattern::I8x16(lanes) => {
                f.write_str("i8x16 ")?;
                write_lanes(f, lanes)
            }
            V128Pattern::I16x8(lanes) => {
                f.write_str("i16x8 ")?;
                write_lanes(f, lanes)
            }
            V128Pattern::I32x4(lanes) => {
                f.write_str("i32x4 ")?;
                write_lanes(f, lanes)
            }
            V128Pattern::I64x2(lanes) => {
                f.write_str("i64x2 ")?;
                write_lanes(f, lanes)
            }
            V128Pattern::F32x4(lanes) => {
                f.write_str("f32x4 ")?;
                write_lanes(f, lanes)
            }
            V128Pattern::F64x2(lanes) => {
                f.write_str("f64x2 ")?;
                write_lanes(f, lanes)
            }
        }
    }
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::I32(bits) => write!(f, "i32 {} ({bits:#x})", *bits as i32),
            Expected::I64(bits) => write!(f, "i64 {} ({bits:#x})", *bits as i64),
            Expected::F32(pattern) => write!(f, "f32 {pattern}"),
            Expected::F64(pattern) => write!(f, "f64 {pattern}"),
            Expected::V128(pattern) => write!(f, "v128 {pattern}"),
            Expected::RefNull(None) => f.write_str("ref.null"),
            Expected::RefNull(Some(RefKind::Func)) => f.write_str("ref.null func"),
            Expected::RefNull(Some(RefKind::Extern)) => f.write_str("ref.null extern"),
            Expected::RefFunc => f.write_str("ref.func"),
            Expected::RefExtern(None) => f.write_str("ref.extern"),
            Expected::RefExtern(Some(n)) => write!(f, "ref.extern {n}"),
            Expected::Either(choices) => {
                f.write_str("either(")?;
                for (i, choice) in choices.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{choice}")?;
                }
                f.write_str(")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    const F32_CANONICAL: u32 = 0x7fc0_0000;
    const F64_CANONICAL: u64 = 0x7ff8_0000_0000_0000;

    #[test]
    fn canonical_nan_accepts_both_signs_and_nothing_else() {
        let pattern = FloatPattern::<u32>::CanonicalNan;
        assert!(pattern.matches(F32_CANONICAL));
        assert!(pattern.matches(F32_CANONICAL | 0x8000_0000));
        assert!(!pattern.matches(F32_CANONICAL | 1), "extra payload bit");
        assert!(!pattern.matches(0x7f80_0001), "signalling NaN");
        assert!(!pattern.matches(0x7f80_0000), "infinity");
        assert!(!pattern.matches(0x3f80_0000), "1.0");

        let pattern = FloatPattern::<u64>::CanonicalNan;
        assert!(pattern.matches(F64_CANONICAL));
        assert!(pattern.matches(F64_CANONICAL | (1 << 63)));
        assert!(!pattern.matches(F64_CANONICAL | 1));
        assert!(!pattern.matches(0x7ff0_0000_0000_0001));
        assert!(!pattern.matches(0x7ff0_0000_0000_0000));
    }

    #[test]
    fn arithmetic_nan_needs_the_quiet_bit_and_allows_any_payload() {
        let pattern = FloatPattern::<u32>::ArithmeticNan;
        assert!(pattern.matches(F32_CANONICAL));
        assert!(pattern.matches(0xffc0_0000));
        assert!(pattern.matches(0x7fff_ffff));
        assert!(pattern.matches(0x7fc0_0001));
        assert!(!pattern.matches(0x7fa0_0000), "signalling NaN with payload");
        assert!(!pattern.matches(0x7f80_0000), "infinity");
        assert!(
            !pattern.matches(0x0040_0000),
            "quiet bit without the exponent"
        );

        let pattern = FloatPattern::<u64>::ArithmeticNan;
        assert!(pattern.matches(F64_CANONICAL));
        assert!(pattern.matches(0xfff8_0000_0000_0001));
        assert!(pattern.matches(0x7fff_ffff_ffff_ffff));
        assert!(!pattern.matches(0x7ff4_0000_0000_0000));
        assert!(!pattern.matches(0x7ff0_0000_0000_0000));
    }

    #[test]
    fn exact_floats_compare_bits() {
        // A NaN matches an exact NaN only with the same payload and sign; +0 is not -0.
        assert!(FloatPattern::Exact(0x7fa0_0000u32).matches(0x7fa0_0000));
        assert!(!FloatPattern::Exact(0x7fa0_0000u32).matches(0xffa0_0000));
        assert!(!FloatPattern::Exact(0u32).matches(0x8000_0000));
        assert!(Expected::F64(FloatPattern::Exact(1)).matches(&SpecValue::F64(1)));
    }

    #[test]
    fn values_of_another_type_never_match() {
        assert!(!Expected::I32(0).matches(&SpecValue::I64(0)));
        assert!(!Expected::F32(FloatPattern::Exact(0)).matches(&SpecValue::I32(0)));
        assert!(!Expected::F32(FloatPattern::CanonicalNan).matches(&SpecValue::F64(F64_CANONICAL)));
        assert!(!Expected::RefNull(Some(RefKind::Func)).matches(&SpecValue::ExternRef(None)));
        assert!(!Expected::RefFunc.matches(&SpecValue::FuncRef(None)));
        assert!(!Expected::RefExtern(None).matches(&SpecValue::ExternRef(None)));
    }

    #[test]
    fn references() {
        assert!(Expected::RefNull(None).matches(&SpecValue::FuncRef(None)));
        assert!(Expected::RefNull(None).matches(&SpecValue::ExternRef(None)));
        assert!(Expected::RefNull(Some(RefKind::Extern)).matches(&SpecValue::ExternRef(None)));
        assert!(Expected::RefFunc.matches(&SpecValue::FuncRef(Some(3))));
        assert!(Expected::RefExtern(Some(7)).matches(&SpecValue::ExternRef(Some(7))));
        assert!(!Expected::RefExtern(Some(7)).matches(&SpecValue::ExternRef(Some(8))));
        assert!(Expected::RefExtern(None).matches(&SpecValue::ExternRef(Some(8))));
    }

    #[test]
    fn v128_lanes() {
        let lanes = [1u32, 0xffff_ffff, 3, 0x8000_0000];
        let value = lanes
            .iter()
            .enumerate()
            .fold(0u128, |v, (i, &l)| v | (u128::from(l) << (32 * i)));
        assert!(V128Pattern::I32x4(lanes).matches(value));
        assert!(!V128Pattern::I32x4([1, 0xffff_ffff, 3, 0]).matches(value));
        let bytes = value.to_le_bytes();
        assert!(V128Pattern::I8x16(bytes).matches(value));
        let halves = [value as u64, (value >> 64) as u64];
        assert!(V128Pattern::I64x2(halves).matches(value));
        let shorts: [u16; 8] = core::array::from_fn(|i| (value >> (16 * i)) as u16);
        assert!(V128Pattern::I16x8(shorts).matches(value));

        // f32x4: lane 0 canonical, lane 1 arithmetic, lanes 2 and 3 exact.
        let value = u128::from(F32_CANONICAL)
            | (u128::from(0xffc0_0001u32) << 32)
            | (u128::from(0x3f80_0000u32) << 64);
        let pattern = V128Pattern::F32x4([
            FloatPattern::CanonicalNan,
            FloatPattern::ArithmeticNan,
            FloatPattern::Exact(0x3f80_0000),
            FloatPattern::Exact(0),
        ]);
        assert!(pattern.matches(value));
        let wrong_lane_1 = value & !(u128::from(0x0040_0000u32) << 32);
        assert!(!pattern.matches(wrong_lane_1), "lane 1 lost its quiet bit");

        let value = u128::from(F64_CANONICAL) << 64 | 5;
        let pattern = V128Pattern::F64x2([FloatPattern::Exact(5), FloatPattern::CanonicalNan]);
        assert!(pattern.matches(value));
        assert!(Expected::V128(pattern).matches(&SpecValue::V128(value)));
        assert!(!Expected::V128(pattern).matches(&SpecValue::I64(5)));
    }

    #[test]
    fn either_matches_any_choice() {
        let either = Expected::Either(vec![Expected::I32(1), Expected::I32(2)]);
        assert!(either.matches(&SpecValue::I32(2)));
        assert!(!either.matches(&SpecValue::I32(3)));
        assert_eq!(either.to_string(), "either(i32 1 (0x1) | i32 2 (0x2))");
    }

    #[test]
    fn display() {
        assert_eq!(SpecValue::I32(u32::MAX).to_string(), "i32 -1 (0xffffffff)");
        assert_eq!(
            SpecValue::F32(0x3f80_0000).to_string(),
            "f32 1 (0x3f800000)"
        );
        assert_eq!(
            Expected::F64(FloatPattern::CanonicalNan).to_string(),
            "f64 nan:canonical"
        );
        assert_eq!(
            Expected::V128(V128Pattern::I64x2([1, 2])).to_string(),
            "v128 i64x2 1 2"
        );
    }
}
