//! Compile limits: what a single module may cost to compile.
//!
//! Cranelift's memory and time grow with the size of each function, and some shapes are
//! far more expensive than their bytes suggest (measured before these limits: a 1 MiB
//! `br_table` took about 600 MB to compile, a million nested `if`s about 2.1 GB, a function
//! keeping 900 000 values on its operand stack about 85 s). A module whose functions pass
//! any of these limits is refused at translation, before anything is compiled, with a
//! [`ModuleErrorKind::Limit`](super::ModuleErrorKind::Limit) error naming the function and
//! the limit.
//!
//! With the default limits the costliest function a module can hold compiles in a bounded
//! budget; the README's "Limits" section gives the measured worst cases. Each CPU compiles
//! one function at a time, so the budget does not grow with the number of functions (the
//! code and tables kept for the module do, linearly); a module is compiled on several
//! CPUs at once only when the memory free covers the estimate once per CPU.

/// The limits each function of a module must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Bytes of one function body, locals included.
    pub max_function_size: usize,
    /// `br_table` targets in one function, all tables together.
    pub max_br_table_targets: usize,
    /// Blocks open at once (`block`, `loop`, `if`, the function's own).
    pub max_nesting: u32,
    /// Blocks in one function (`block`, `loop`, `if`): each becomes blocks of the compiler's
    /// own, at about 1 KB of compile memory each (a million cost 2.1 GB).
    pub max_blocks: u32,
    /// Values on the operand stack at once.
    pub max_operand_stack: u32,
    /// Locals of one function, parameters included (wasmparser allows 50 000).
    pub max_locals: u32,
}

impl CompileLimits {
    /// The defaults: generous for compiled programs, small enough for a bounded budget.
    pub const DEFAULT: Self = Self {
        max_function_size: 1 << 20,
        max_br_table_targets: 1 << 16,
        max_nesting: 1000,
        max_blocks: 1 << 16,
        max_operand_stack: 10_000,
        max_locals: 50_000,
    };
}

/// Bytes of compile memory per byte of function body, at most (measured: straight-line
/// arithmetic, 63 MB for a 1 MiB body), for [`compile_memory_estimate`].
const MEMORY_PER_BODY_BYTE: u64 = 96;

/// Bytes of compile memory per block, at most (measured: 340 000 nested blocks, 310 MB).
const MEMORY_PER_BLOCK: u64 = 1024;

/// Bytes of compile memory per byte of the whole module (its description, the code and
/// tables kept for it), and a fixed part for the compiler itself.
const MEMORY_PER_MODULE_BYTE: u64 = 16;
/// See [`MEMORY_PER_MODULE_BYTE`].
const MEMORY_FIXED: u64 = 8 << 20;

/// An upper bound of the memory compiling a module takes: its largest function's cost
/// (`largest_function`, as [`function_cost`] gives) and the module-wide part.
#[must_use]
pub fn compile_memory_estimate(module_size: usize, largest_function: u64) -> u64 {
    (module_size as u64)
        .saturating_mul(MEMORY_PER_MODULE_BYTE)
        .saturating_add(largest_function)
        .saturating_add(MEMORY_FIXED)
}

/// The compile memory of one function of `body_size` bytes holding `blocks` blocks.
#[must_use]
pub fn function_cost(body_size: usize, blocks: u32) -> u64 {
    (body_size as u64)
        .saturating_mul(MEMORY_PER_BODY_BYTE)
        .max(u64::from(blocks).saturating_mul(MEMORY_PER_BLOCK))
}

impl Default for CompileLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
