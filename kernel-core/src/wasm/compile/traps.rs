//! How [`Trap`]s are spelled in generated code: Cranelift trap codes.
//!
//! Checks the translator emits itself carry the user code `Trap::code() + 1` (user codes
//! start at 1); checks Cranelift emits on its own carry its reserved codes, which map to
//! the WebAssembly trap they stand for.

use cranelift_codegen::ir::TrapCode;

use crate::wasm::trap::Trap;

/// The Cranelift trap code generated code uses for `trap`.
#[must_use]
pub const fn trap_code(trap: Trap) -> TrapCode {
    // `Trap::code()` is below `Trap::ALL.len()` (14), far from the reserved codes at the
    // top of the byte range, so `+ 1` is a valid user code.
    TrapCode::unwrap_user(trap.code() + 1)
}

/// The trap a Cranelift trap code in generated code stands for, or `None` for a code no
/// generated code uses.
#[must_use]
pub fn trap_from_code(code: TrapCode) -> Option<Trap> {
    Some(match code {
        TrapCode::STACK_OVERFLOW => Trap::StackOverflow,
        TrapCode::HEAP_OUT_OF_BOUNDS => Trap::MemoryOutOfBounds,
        TrapCode::INTEGER_OVERFLOW => Trap::IntegerOverflow,
        TrapCode::INTEGER_DIVISION_BY_ZERO => Trap::IntegerDivisionByZero,
        TrapCode::BAD_CONVERSION_TO_INTEGER => Trap::BadConversionToInteger,
        user => return Trap::from_code(user.as_raw().get().checked_sub(1)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trap_round_trips() {
        for trap in Trap::ALL {
            assert_eq!(trap_from_code(trap_code(trap)), Some(trap));
        }
    }

    #[test]
    fn reserved_codes_map_to_their_traps() {
        assert_eq!(
            trap_from_code(TrapCode::INTEGER_DIVISION_BY_ZERO),
            Some(Trap::IntegerDivisionByZero)
        );
        assert_eq!(
            trap_from_code(TrapCode::STACK_OVERFLOW),
            Some(Trap::StackOverflow)
        );
        assert_eq!(
            trap_from_code(TrapCode::HEAP_OUT_OF_BOUNDS),
            Some(Trap::MemoryOutOfBounds)
        );
    }

    #[test]
    fn unused_user_codes_map_to_nothing() {
        let past_the_end = u8::try_from(Trap::ALL.len() + 1).expect("small");
        assert_eq!(trap_from_code(TrapCode::unwrap_user(past_the_end)), None);
        assert_eq!(trap_from_code(TrapCode::unwrap_user(200)), None);
    }
}
