//! The WebAssembly environment: what the compiler and the runtime share.
//!
//! Dependencies point one way, as in Wasmtime's `environ` crate: [`env`] (module
//! translation, the VMContext layout) is used by the compiler and the runtime, and depends
//! on neither; [`vm`] holds the `#[repr(C)]` structures generated code reads and writes.

pub mod abi;
pub mod compile;
pub mod env;
pub mod indices;
pub mod runtime;
pub mod trap;
pub mod vm;
