//! The `#[repr(C)]` structures of the VMContext, as generated code sees them.
//!
//! Each structure is defined once here; [`crate::wasm::env::VMShape`] takes every stride
//! and header offset from these definitions with `size_of`, `align_of` and `offset_of!`,
//! and the compile-time assertions below pin the sizes the layout documentation promises
//! for 64-bit targets (the only ones kernel-core runs on).

use core::mem::{align_of, offset_of, size_of};
use core::sync::atomic::{AtomicU64, AtomicUsize};

/// The value of the `magic` field of every VMContext: `"k23c"` in little-endian order.
/// Checked when a raw VMContext pointer comes back from generated code.
pub const VMCONTEXT_MAGIC: u32 = u32::from_le_bytes(*b"k23c");

/// An opaque VMContext: the fixed [`VMContextHeader`] followed by the per-module arrays
/// whose offsets [`crate::wasm::env::VMShape`] computes. Only ever used behind a pointer.
#[repr(C)]
#[derive(Debug)]
pub struct VMContext {
    _opaque: [u8; 0],
}

/// The first instruction of a compiled function. Only ever used behind a pointer.
#[repr(C)]
#[derive(Debug)]
pub struct VMFunctionBody {
    _opaque: [u8; 0],
}

/// The per-store state generated code reaches through the VMContext (stack limit, fuel,
/// epoch deadline). Only ever used behind a pointer; defined by the runtime.
#[repr(C)]
pub struct VMStoreContext {
    _opaque: [u8; 0],
}

/// The table of builtin functions (memory.grow and the like) generated code calls. Only
/// ever used behind a pointer; defined by the runtime.
#[repr(C)]
pub struct VMBuiltinFunctionsArray {
    _opaque: [u8; 0],
}

/// An engine-wide function type id, comparable with a single integer compare (checked
/// indirect calls).
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VMSharedTypeIndex(pub u32);

/// The fixed-size start of every VMContext. Field order and types are the seed's.
#[repr(C)]
pub struct VMContextHeader {
    /// [`VMCONTEXT_MAGIC`].
    pub magic: u32,
    /// Padding to pointer alignment.
    pub _padding: u32,
    /// The store this instance belongs to.
    pub store_context: *mut VMStoreContext,
    /// The builtin functions.
    pub builtin_functions: *const VMBuiltinFunctionsArray,
    /// The function being called, for trampolines.
    pub callee: *const VMFunctionBody,
    /// The epoch counter generated code compares against its deadline.
    pub epoch_ptr: *const AtomicU64,
    /// The base of the GC heap.
    pub gc_heap_base: *mut u8,
    /// The size of the GC heap in bytes.
    pub gc_heap_bound: usize,
    /// Collector-specific data.
    pub gc_heap_data: *mut u8,
    /// The engine-wide ids of the module's types, by module type index.
    pub type_ids: *const VMSharedTypeIndex,
}

/// An imported function: how to call it and with which VMContext.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VMFunctionImport {
    /// Entry point with the WebAssembly calling convention.
    pub wasm_call: *const VMFunctionBody,
    /// Entry point with the array calling convention (arguments and results in memory).
    pub array_call: *const VMFunctionBody,
    /// The VMContext (or host context) to pass as the callee's context.
    pub vmctx: *mut VMContext,
}

/// A linear memory as generated code sees it.
#[repr(C)]
pub struct VMMemoryDefinition {
    /// The first byte of the memory.
    pub base: *mut u8,
    /// The current size in bytes; atomic because shared memories grow concurrently.
    pub current_length: AtomicUsize,
}

/// An imported linear memory.
#[repr(C)]
pub struct VMMemoryImport {
    /// The definition in the exporting instance.
    pub from: *mut VMMemoryDefinition,
    /// The exporting instance.
    pub vmctx: *mut VMContext,
}

/// A table as generated code sees it.
#[repr(C)]
pub struct VMTableDefinition {
    /// The first element.
    pub base: *mut u8,
    /// The current number of elements.
    pub current_elements: usize,
}

/// An imported table.
#[repr(C)]
pub struct VMTableImport {
    /// The definition in the exporting instance.
    pub from: *mut VMTableDefinition,
    /// The exporting instance.
    pub vmctx: *mut VMContext,
}

/// The storage of one global: 16 bytes, 16-aligned, enough for any value type (`v128`
/// included).
#[repr(C, align(16))]
pub struct VMGlobalDefinition {
    /// The value's bytes, little-endian, starting at offset 0.
    pub storage: [u8; 16],
}

/// An imported global.
#[repr(C)]
pub struct VMGlobalImport {
    /// The definition in the exporting instance.
    pub from: *mut VMGlobalDefinition,
}

/// An exception tag: the engine-wide id of its signature.
#[repr(C)]
pub struct VMTagDefinition {
    /// The tag's signature.
    pub type_index: VMSharedTypeIndex,
}

/// An imported exception tag.
#[repr(C)]
pub struct VMTagImport {
    /// The definition in the exporting instance.
    pub from: *mut VMTagDefinition,
}

/// A function reference: what `ref.func`, tables and `call_indirect` work with.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VMFuncRef {
    /// Entry point with the array calling convention.
    pub array_call: *const VMFunctionBody,
    /// Entry point with the WebAssembly calling convention.
    pub wasm_call: *const VMFunctionBody,
    /// The function's signature, compared by `call_indirect`.
    pub type_index: VMSharedTypeIndex,
    /// The callee's VMContext.
    pub vmctx: *mut VMContext,
}

// The sizes the layout contract (DESIGN.md, `sim layout`) documents for 64-bit targets.
const _: () = {
    assert!(
        size_of::<usize>() == 8,
        "kernel-core supports 64-bit targets only"
    );
    assert!(size_of::<VMContextHeader>() == 72);
    assert!(offset_of!(VMContextHeader, store_context) == 8);
    assert!(offset_of!(VMContextHeader, type_ids) == 64);
    assert!(size_of::<VMMemoryImport>() == 16);
    assert!(size_of::<VMMemoryDefinition>() == 16);
    assert!(size_of::<VMFunctionImport>() == 24);
    assert!(size_of::<VMTableImport>() == 16);
    assert!(size_of::<VMGlobalImport>() == 8);
    assert!(size_of::<VMTagImport>() == 8);
    assert!(size_of::<VMTableDefinition>() == 16);
    assert!(size_of::<VMGlobalDefinition>() == 16 && align_of::<VMGlobalDefinition>() == 16);
    assert!(size_of::<VMTagDefinition>() == 4);
    assert!(size_of::<VMFuncRef>() == 32);
    assert!(offset_of!(VMFuncRef, vmctx) == 24);
};
