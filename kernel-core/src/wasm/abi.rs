//! The contract between generated code and the runtime: calling conventions, trampolines,
//! builtins and the runtime structures generated code reads.
//!
//! Both `wasm::compile` (which emits code) and `wasm::runtime` (which calls it and serves
//! its builtin calls) follow this module; neither depends on the other.
//!
//! # Calling conventions
//!
//! * **WebAssembly functions** use Cranelift's `tail` calling convention with the signature
//!   `(callee_vmctx: ptr, caller_vmctx: ptr, stack_left: i64, params...) -> results`.
//!   `stack_left` is what is left of the call's stack budget in frame costs
//!   (`compile::stack_cost`): a counted function traps with `call stack exhausted` when
//!   it is below its cost and passes on what remains after its cost to its callees.
//!   `VMFuncRef::wasm_call` and `VMFunctionImport::wasm_call` point at such code.
//! * **Array shims** (one per function type of a module) use the `tail` convention with the
//!   signature `(callee_vmctx: ptr, caller_vmctx: ptr, values: ptr, wasm_call: ptr,
//!   stack_left: i64) -> ()`. They load the parameters from `values` (one
//!   [`VALUE_SLOT_SIZE`]-byte slot per value, little-endian at the start of the slot), call
//!   `wasm_call` with the WebAssembly convention, and store the results into the slots
//!   from the first one.
//!   `VMFuncRef::array_call` points at the shim of the function's type.
//! * **The entry trampoline** (one per module) uses the platform's C convention:
//!   `(activation: *mut VMActivation, array_shim: ptr, wasm_call: ptr, callee_vmctx: ptr,
//!   caller_vmctx: ptr, values: ptr, stack_left: i64) -> i32`. It stores its frame
//!   pointer, stack pointer and the address of its exception handler into the
//!   [`VMActivation`], passes `stack_left` on, calls `array_shim` with
//!   `try_call_indirect` (`tail` convention, so the exceptional edge clobbers every register
//!   and needs no register restore), and returns 1 on a normal return, 0 when a trap
//!   redirected execution to the handler.
//! * **Host functions** are called from WebAssembly through a per-type *wasm-to-host
//!   trampoline* (WebAssembly convention; its `callee_vmctx` is a [`VMHostFuncContext`]). It
//!   spills the parameters into value slots on its stack, calls
//!   `VMHostFuncContext::host_call` with the C convention as
//!   `(host_context, caller_vmctx, values, capacity: u32) -> u32` where `capacity` is the
//!   number of slots, and traps with [`crate::wasm::trap::Trap::HostError`] when it
//!   returns non-zero; otherwise it loads the results from the slots and returns them.
//!
//! # Traps
//!
//! Generated code traps with Cranelift trap instructions carrying
//! `TrapCode::user(Trap::code() + 1)`, or with Cranelift's reserved codes where Cranelift
//! itself emits the check (division, conversions, stack limit). Loads and stores of linear
//! memory carry the `MemoryOutOfBounds` trap code, so that their guard-page faults are in
//! the trap table. Every function checks the stack limit in its prologue against
//! [`VMStoreContext::stack_limit`], reached as `*(vmctx + VMShape::STORE_CONTEXT)`.
//!
//! # Linear memory
//!
//! A 32-bit memory is a reservation of [`MEMORY_RESERVATION`] bytes: every address
//! `base + u32 + u32 offset` lies inside it and every page past the current size is
//! inaccessible, so generated code does no bounds checks.

use core::mem::offset_of;
use core::sync::atomic::AtomicU64;

use crate::wasm::vm::vmcontext::{VMContext, VMFunctionBody};

/// Bytes per value in the arrays of array shims and host calls.
pub const VALUE_SLOT_SIZE: u32 = 16;

/// Bytes reserved per 32-bit linear memory: 4 GiB of addressable space and a 4 GiB guard
/// region, so that any 32-bit address plus any 32-bit static offset stays inside.
pub const MEMORY_RESERVATION: u64 = 8 << 30;

/// The size of a WebAssembly page.
pub const WASM_PAGE_SIZE: u64 = 1 << 16;

/// Per-store state generated code reads; the VMContext header's `store_context` points at
/// it.
#[repr(C)]
#[derive(Debug)]
pub struct VMStoreContext {
    /// The lowest stack address WebAssembly may use; function prologues trap with
    /// `call stack exhausted` below it. A backstop behind the count of frame costs
    /// ([`counted_stack_budget`]), reached only by frames over twice their cost.
    pub stack_limit: usize,
    /// The epoch at which generated code calls [`Builtin::EpochInterrupt`]: it compares the
    /// counter behind the VMContext's `epoch_ptr` with this at every function entry and
    /// loop header. `u64::MAX` (the default) never interrupts.
    pub epoch_deadline: AtomicU64,
}

impl Default for VMStoreContext {
    fn default() -> Self {
        Self {
            stack_limit: 0,
            epoch_deadline: AtomicU64::new(u64::MAX),
        }
    }
}

/// Offset of [`VMStoreContext::stack_limit`].
pub const STORE_CONTEXT_STACK_LIMIT: u32 = offset_of!(VMStoreContext, stack_limit) as u32;
/// Offset of [`VMStoreContext::epoch_deadline`].
pub const STORE_CONTEXT_EPOCH_DEADLINE: u32 = offset_of!(VMStoreContext, epoch_deadline) as u32;
/// The part of a call's stack budget (bytes of machine stack below the call) that
/// generated code counts in frame costs (`compile::stack_cost`): half. The other half is
/// room for machine frames larger than their cost (up to twice it: a value on the operand
/// stack spilled along with what Cranelift computed from it) and for the small leaves the
/// count leaves out, so that the count, the same on every ISA, is what ends a call chain.
#[must_use]
pub const fn counted_stack_budget(budget: usize) -> u64 {
    (budget / 2) as u64
}

/// What the entry trampoline records when it enters WebAssembly: where a trap resumes.
#[repr(C)]
#[derive(Debug, Default)]
pub struct VMActivation {
    /// The entry trampoline's frame pointer.
    pub entry_fp: usize,
    /// The entry trampoline's stack pointer at its `try_call_indirect`.
    pub entry_sp: usize,
    /// The address of the entry trampoline's exception handler block.
    pub handler_pc: usize,
}

/// Offset of [`VMActivation::entry_fp`].
pub const ACTIVATION_ENTRY_FP: u32 = offset_of!(VMActivation, entry_fp) as u32;
/// Offset of [`VMActivation::entry_sp`].
pub const ACTIVATION_ENTRY_SP: u32 = offset_of!(VMActivation, entry_sp) as u32;
/// Offset of [`VMActivation::handler_pc`].
pub const ACTIVATION_HANDLER_PC: u32 = offset_of!(VMActivation, handler_pc) as u32;

/// The host side of an imported host function: what its `callee_vmctx` points at.
#[repr(C)]
pub struct VMHostFuncContext {
    /// [`HOST_FUNC_MAGIC`].
    pub magic: u32,
    /// The function's engine-wide type id.
    pub type_index: u32,
    /// The host function: `(host_context, caller_vmctx, values, capacity) -> status`.
    pub host_call: HostCall,
    /// Data for the host function.
    pub data: *mut u8,
}

/// The C signature of a host function.
pub type HostCall = unsafe extern "C" fn(
    host_context: *mut VMHostFuncContext,
    caller_vmctx: *mut VMContext,
    values: *mut u8,
    capacity: u32,
) -> u32;

/// The value of [`VMHostFuncContext::magic`]: `"k23h"` little-endian.
pub const HOST_FUNC_MAGIC: u32 = u32::from_le_bytes(*b"k23h");

/// Offset of [`VMHostFuncContext::host_call`].
pub const HOST_FUNC_HOST_CALL: u32 = offset_of!(VMHostFuncContext, host_call) as u32;

/// Functions of the runtime that generated code calls, through the array of function
/// pointers the VMContext header's `builtin_functions` points at (entry `id` at byte
/// `8 * id`).
///
/// Each uses the platform's C convention and takes the caller's VMContext first. Every
/// other integer crosses as a 64-bit value (indices, addresses, lengths, table elements),
/// so no argument-extension rule of the C convention matters: riscv64's psABI, for one,
/// wants 32-bit arguments sign-extended, which Cranelift would not do unasked. Generated
/// code zero-extends its `i32` operands.
///
/// The bulk operations return a *status*: 0 when they did their work, non-zero when an
/// access would be out of bounds, in which case nothing was written. Generated code traps
/// with `trapnz` on the status (`out of bounds memory access` for the memory operations,
/// `out of bounds table access` for the table ones). Builtins never panic and never touch
/// memory outside the bounds they checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Builtin {
    /// `memory.grow`: [`MemoryGrowFn`], `(vmctx, memory_index, delta_pages) -> u64`, the
    /// previous size in pages or `u64::MAX` when the memory cannot grow.
    MemoryGrow = 0,
    /// `memory.copy`: [`MemoryCopyFn`],
    /// `(vmctx, dst_memory, dst, src_memory, src, len) -> status`; the ranges may overlap.
    MemoryCopy = 1,
    /// `memory.fill`: [`MemoryFillFn`], `(vmctx, memory_index, dst, byte, len) -> status`;
    /// only the low 8 bits of `byte` count.
    MemoryFill = 2,
    /// `memory.init`: [`MemoryInitFn`],
    /// `(vmctx, memory_index, data_index, dst, src, len) -> status`; a dropped data
    /// segment has length 0.
    MemoryInit = 3,
    /// `data.drop`: [`DataDropFn`], `(vmctx, data_index) -> ()`.
    DataDrop = 4,
    /// `table.grow`: [`TableGrowFn`], `(vmctx, table_index, init, delta) -> u64`, the
    /// previous size in elements or `u64::MAX` when the table cannot grow.
    TableGrow = 5,
    /// `table.copy`: [`TableCopyFn`],
    /// `(vmctx, dst_table, dst, src_table, src, len) -> status`; the ranges may overlap.
    TableCopy = 6,
    /// `table.fill`: [`TableFillFn`], `(vmctx, table_index, dst, value, len) -> status`.
    TableFill = 7,
    /// `table.init`: [`TableInitFn`],
    /// `(vmctx, table_index, elem_index, dst, src, len) -> status`; a dropped element
    /// segment has length 0.
    TableInit = 8,
    /// `elem.drop`: [`ElemDropFn`], `(vmctx, elem_index) -> ()`.
    ElemDrop = 9,
    /// The epoch deadline passed: [`EpochInterruptFn`], `(vmctx) -> status`. Returns 0 when
    /// the code may go on (the store's deadline has moved past the epoch, perhaps after
    /// other work ran), non-zero when it must trap with `interrupted`.
    EpochInterrupt = 10,
}

impl Builtin {
    /// How many builtins there are: the length of the builtin array.
    pub const COUNT: usize = 11;

    /// Every builtin, in array order.
    pub const ALL: [Self; Self::COUNT] = [
        Self::MemoryGrow,
        Self::MemoryCopy,
        Self::MemoryFill,
        Self::MemoryInit,
        Self::DataDrop,
        Self::TableGrow,
        Self::TableCopy,
        Self::TableFill,
        Self::TableInit,
        Self::ElemDrop,
        Self::EpochInterrupt,
    ];

    /// The byte offset of this builtin's pointer in the builtin array.
    #[must_use]
    pub const fn offset(self) -> u32 {
        self as u32 * 8
    }

    /// How many 64-bit parameters the builtin takes after the VMContext.
    #[must_use]
    pub const fn params(self) -> usize {
        match self {
            Self::EpochInterrupt => 0,
            Self::DataDrop | Self::ElemDrop => 1,
            Self::MemoryGrow => 2,
            Self::TableGrow => 3,
            Self::MemoryFill | Self::TableFill => 4,
            Self::MemoryCopy | Self::MemoryInit | Self::TableCopy | Self::TableInit => 5,
        }
    }

    /// Whether the builtin returns a 64-bit value (a size or a status).
    #[must_use]
    pub const fn returns_value(self) -> bool {
        !matches!(self, Self::DataDrop | Self::ElemDrop)
    }
}

// `Builtin::ALL` lists every builtin at its own index, so the array can be filled from it.
const _: () = {
    let mut index = 0;
    while index < Builtin::COUNT {
        assert!(Builtin::ALL[index] as usize == index);
        index += 1;
    }
};

/// Signature of [`Builtin::MemoryGrow`].
pub type MemoryGrowFn =
    unsafe extern "C" fn(vmctx: *mut VMContext, memory_index: u64, delta_pages: u64) -> u64;

/// Signature of [`Builtin::MemoryCopy`].
pub type MemoryCopyFn = unsafe extern "C" fn(
    vmctx: *mut VMContext,
    dst_memory: u64,
    dst: u64,
    src_memory: u64,
    src: u64,
    len: u64,
) -> u64;

/// Signature of [`Builtin::MemoryFill`].
pub type MemoryFillFn = unsafe extern "C" fn(
    vmctx: *mut VMContext,
    memory_index: u64,
    dst: u64,
    byte: u64,
    len: u64,
) -> u64;

/// Signature of [`Builtin::MemoryInit`].
pub type MemoryInitFn = unsafe extern "C" fn(
    vmctx: *mut VMContext,
    memory_index: u64,
    data_index: u64,
    dst: u64,
    src: u64,
    len: u64,
) -> u64;

/// Signature of [`Builtin::DataDrop`].
pub type DataDropFn = unsafe extern "C" fn(vmctx: *mut VMContext, data_index: u64);

/// Signature of [`Builtin::TableGrow`]; `init` is a table element: a `*const VMFuncRef`
/// for `funcref` tables, the host value plus one for `externref` tables, 0 for null.
pub type TableGrowFn =
    unsafe extern "C" fn(vmctx: *mut VMContext, table_index: u64, init: u64, delta: u64) -> u64;

/// Signature of [`Builtin::TableCopy`].
pub type TableCopyFn = unsafe extern "C" fn(
    vmctx: *mut VMContext,
    dst_table: u64,
    dst: u64,
    src_table: u64,
    src: u64,
    len: u64,
) -> u64;

/// Signature of [`Builtin::TableFill`]; `value` is a table element.
pub type TableFillFn = unsafe extern "C" fn(
    vmctx: *mut VMContext,
    table_index: u64,
    dst: u64,
    value: u64,
    len: u64,
) -> u64;

/// Signature of [`Builtin::TableInit`].
pub type TableInitFn = unsafe extern "C" fn(
    vmctx: *mut VMContext,
    table_index: u64,
    elem_index: u64,
    dst: u64,
    src: u64,
    len: u64,
) -> u64;

/// Signature of [`Builtin::EpochInterrupt`].
pub type EpochInterruptFn = unsafe extern "C" fn(vmctx: *mut VMContext) -> u64;

/// Signature of [`Builtin::ElemDrop`].
pub type ElemDropFn = unsafe extern "C" fn(vmctx: *mut VMContext, elem_index: u64);

/// The status a bulk builtin returns when it did its work.
pub const BUILTIN_OK: u64 = 0;

/// The status a bulk builtin returns when an access would be out of bounds.
pub const BUILTIN_OUT_OF_BOUNDS: u64 = 1;

/// Signature of the entry trampoline.
pub type EntryTrampoline = unsafe extern "C" fn(
    activation: *mut VMActivation,
    array_shim: *const VMFunctionBody,
    wasm_call: *const VMFunctionBody,
    callee_vmctx: *mut VMContext,
    caller_vmctx: *mut VMContext,
    values: *mut u8,
    stack_left: u64,
) -> i32;
