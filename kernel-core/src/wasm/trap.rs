//! WebAssembly traps: the reasons generated code stops, with the spec's messages.

use core::fmt;

/// Why WebAssembly execution trapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trap {
    /// `unreachable` was executed.
    Unreachable,
    /// A load or store outside the memory (a guard page was hit).
    MemoryOutOfBounds,
    /// A table access outside the table (`table.get`, `table.set`, bulk table operations).
    TableOutOfBounds,
    /// `call_indirect` with an index past the end of the table.
    UndefinedElement,
    /// `call_indirect` through a null table entry.
    IndirectCallToNull,
    /// `call_indirect` to a function of another type.
    BadSignature,
    /// Integer division or remainder by zero.
    IntegerDivisionByZero,
    /// Integer overflow (signed division of the minimum by -1, float-to-int out of range).
    IntegerOverflow,
    /// Float-to-int conversion of a NaN.
    BadConversionToInteger,
    /// The wasm stack limit was reached (runaway recursion).
    StackOverflow,
    /// A host function called from WebAssembly failed.
    HostError,
    /// The process was interrupted (epoch deadline).
    Interrupted,
    /// The process ran out of fuel.
    OutOfFuel,
    /// The process was killed.
    Killed,
}

impl Trap {
    /// Every trap, for exhaustive tables and tests.
    pub const ALL: [Self; 14] = [
        Self::Unreachable,
        Self::MemoryOutOfBounds,
        Self::TableOutOfBounds,
        Self::UndefinedElement,
        Self::IndirectCallToNull,
        Self::BadSignature,
        Self::IntegerDivisionByZero,
        Self::IntegerOverflow,
        Self::BadConversionToInteger,
        Self::StackOverflow,
        Self::HostError,
        Self::Interrupted,
        Self::OutOfFuel,
        Self::Killed,
    ];

    /// The message the WebAssembly spec tests expect (the kernel's own for the last four).
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::MemoryOutOfBounds => "out of bounds memory access",
            Self::TableOutOfBounds => "out of bounds table access",
            Self::UndefinedElement => "undefined element",
            Self::IndirectCallToNull => "uninitialized element",
            Self::BadSignature => "indirect call type mismatch",
            Self::IntegerDivisionByZero => "integer divide by zero",
            Self::IntegerOverflow => "integer overflow",
            Self::BadConversionToInteger => "invalid conversion to integer",
            Self::StackOverflow => "call stack exhausted",
            Self::HostError => "host function failed",
            Self::Interrupted => "interrupted",
            Self::OutOfFuel => "out of fuel",
            Self::Killed => "killed",
        }
    }

    /// A stable number for the trap (its position in [`Trap::ALL`]), used as the user trap
    /// code in generated code.
    #[must_use]
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The trap with number `code`, if there is one.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        if (code as usize) < Self::ALL.len() {
            Some(Self::ALL[code as usize])
        } else {
            None
        }
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}
