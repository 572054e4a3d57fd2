//! The WebAssembly runtime: modules compiled into executable memory, stores of instances,
//! calls from the host into WebAssembly and back, and traps.
//!
//! Everything here reaches the machine through the HAL: code is published with
//! [`crate::hal::VirtualMemory::publish_code`], linear memories are reservations with
//! guard pages, and faults come back through [`trap_handler::handle_trap`], which the
//! [`Engine`] installs.

mod builtins;
mod bulk;
mod code;
mod engine;
pub mod epoch;
mod host;
mod instance;
mod instantiate;
mod memory;
pub mod observer;
mod stable;
mod store;
mod table;
#[cfg(test)]
mod test_hal;
#[cfg(test)]
mod tests;
pub mod trap_handler;
mod typed;
mod values;

pub use code::{CodeInfo, FrameInfo, MAX_NAME_CHARS, escape_name};
pub use engine::{CompileWorkers, Engine, EngineConfig, LoadError, Module, RuntimeHal};
pub use host::{Caller, HostCallback};
pub use store::{
    BacktraceFrame, CallError, Extern, Func, GlobalId, HostFuncId, InstanceId, InstantiationError,
    MemoryId, Store, TableId,
};
pub use typed::{TypedFunc, WasmType, WasmValues};
pub use values::{FuncRef, Val};
