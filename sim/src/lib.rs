//! The host side of the simulator that other crates and the `sim` binary share: the
//! conversion of spec scripts (`.wast`) into [`kernel_core::spec`] commands, and error
//! messages that quote input safely.

pub mod diagnostic;
pub mod wast_script;
