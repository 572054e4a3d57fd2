//! Module translation and the VMContext layout, shared by the compiler and the runtime.

mod const_expr;
mod limits;
mod module;
mod translate;
mod types;
pub mod vmshape;

pub use const_expr::{ConstExpr, ConstOp};
pub use limits::{CompileLimits, compile_memory_estimate, function_cost};
pub use module::{
    DataKind, DataSegment, ElementItems, ElementKind, ElementSegment, EntityIndex, Export,
    GlobalType, Import, MemoryType, ModuleInfo, TableType, TagType,
};
pub use translate::{ModuleError, ModuleErrorKind, translate};
pub use types::{FuncType, RefType, ValType};
pub use vmshape::{LayoutError, VMCounts, VMShape};

/// The WebAssembly features a module is validated against (wasmparser's feature set).
pub use wasmparser::WasmFeatures;

/// The features of WebAssembly 1.0 (the `wasm-v1` spec scripts).
pub const WASM1_FEATURES: WasmFeatures = WasmFeatures::WASM1;

/// The features of WebAssembly 2.0, fixed-width SIMD included (the `wasm-v2` scripts).
pub const WASM2_FEATURES: WasmFeatures = WasmFeatures::WASM2;

/// Everything module translation understands: WebAssembly 2.0 plus the proposals whose
/// module-level shapes the VMContext layout already covers (multiple memories, shared
/// memories, exception tags, 64-bit memories, extended constant expressions). Used to
/// describe modules, for instance by `sim layout`; what the compiler accepts is narrower.
pub const DESCRIBE_FEATURES: WasmFeatures = WasmFeatures::WASM2
    .union(WasmFeatures::MULTI_MEMORY)
    .union(WasmFeatures::THREADS)
    .union(WasmFeatures::EXCEPTIONS)
    .union(WasmFeatures::MEMORY64)
    .union(WasmFeatures::EXTENDED_CONST);
