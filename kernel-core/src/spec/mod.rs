//! The WebAssembly spec-script (`.wast`) runner, independent of the engine.
//!
//! A script is converted on the host (the `sim` crate's `wast_script`, with the `wast`
//! crate) into [`Command`]s: modules already encoded to binary, arguments already
//! decoded to [`SpecValue`]s, results to [`Expected`] patterns. [`run`] then executes
//! the commands against any [`SpecEngine`], here or inside the bare-metal kernel, and
//! counts every command exactly once in a [`Summary`].
//!
//! What passes:
//!
//! - `module`, `module definition`, `module instance`, `register` and bare actions pass
//!   when they succeed;
//! - `assert_return` when the results match the patterns, with the spec's NaN rules
//!   ([`Expected::matches`]);
//! - `assert_trap` and `assert_trap (module ...)` when the engine traps with a matching
//!   message ([`trap_message_matches`]); `assert_exhaustion` on stack exhaustion;
//! - `assert_invalid` and `assert_malformed` on any [`InstantiateError::Invalid`] (the
//!   messages differ between engines and are not compared), and `assert_malformed`
//!   whose text the host already failed to parse;
//! - `assert_unlinkable` on [`InstantiateError::Unlinkable`] only.
#![forbid(unsafe_code)]

mod command;
mod runner;
pub mod text;
mod value;

#[cfg(test)]
mod tests;

pub use command::{Action, Command, CommandKind};
pub use runner::{
    CallError, Failure, InstantiateError, SpecEngine, Summary, run, trap_message_matches,
};
pub use value::{Expected, FloatPattern, RefKind, SpecValue, V128Pattern};
