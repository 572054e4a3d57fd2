//! The host side of the simulator that other crates and the `sim` binary share: today the
//! conversion of spec scripts (`.wast`) into [`kernel_core::spec`] commands.

pub mod wast_script;
