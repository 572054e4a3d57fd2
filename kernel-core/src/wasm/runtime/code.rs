//! Published machine code of a module and the tables that explain it: which function a pc
//! is in, which trap a faulting pc stands for, which wasm offset it came from.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;

use crate::wasm::indices::{DefinedFuncIndex, FuncIndex};
use crate::wasm::trap::Trap;

/// Where one defined function's code lies, and its pc-to-wasm-offset map.
#[derive(Debug)]
pub struct FunctionCode {
    /// Offset of the function's first instruction from the start of the module's code.
    pub offset: u32,
    /// Length of the function's code in bytes.
    pub len: u32,
    /// `(code offset, wasm offset)` pairs, sorted by code offset.
    pub srclocs: Box<[(u32, u32)]>,
}

/// The read-only description of a module's published code, shared by the trap handler.
/// Nothing in it changes after publication, so the trap path reads it without locks.
#[derive(Debug)]
pub struct CodeInfo {
    /// Address of the first byte of code.
    pub start: usize,
    /// Length of the code in bytes.
    pub len: usize,
    /// The module's name from its name section, if any.
    pub module_name: Option<String>,
    /// Defined functions, by defined index, in address order.
    pub functions: Box<[FunctionCode]>,
    /// How many functions the module imports (to turn defined indices into function indices).
    pub num_imported_functions: u32,
    /// `(code offset, trap)`, sorted by code offset.
    pub traps: Box<[(u32, Trap)]>,
    /// Function names from the name section.
    pub function_names: BTreeMap<FuncIndex, String>,
}

/// One frame of a WebAssembly backtrace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The function index within its module.
    pub func: FuncIndex,
    /// The byte offset in the module binary of the instruction executing in this frame.
    pub wasm_offset: Option<u32>,
}

impl CodeInfo {
    /// Whether `pc` lies in this module's code.
    #[must_use]
    pub fn contains(&self, pc: usize) -> bool {
        pc.wrapping_sub(self.start) < self.len
    }

    /// The trap the instruction at `pc` stands for, if it is a recorded trap site.
    #[must_use]
    pub fn trap_at(&self, pc: usize) -> Option<Trap> {
        let offset = u32::try_from(pc.checked_sub(self.start)?).ok()?;
        let index = self
            .traps
            .binary_search_by_key(&offset, |(at, _)| *at)
            .ok()?;
        Some(self.traps[index].1)
    }

    /// The function `pc` lies in and the wasm offset it maps to.
    #[must_use]
    pub fn frame_at(&self, pc: usize) -> Option<FrameInfo> {
        let offset = u32::try_from(pc.checked_sub(self.start)?).ok()?;
        let position = self
            .functions
            .partition_point(|function| function.offset <= offset);
        let defined = position.checked_sub(1)?;
        let function = &self.functions[defined];
        if offset - function.offset >= function.len {
            return None;
        }
        let srcloc = function.srclocs.partition_point(|(at, _)| *at <= offset);
        // A pc before the first mapped instruction is in the prologue (the stack-limit
        // check): it belongs to the function's first instruction.
        let wasm_offset = function
            .srclocs
            .get(srcloc.saturating_sub(1))
            .map(|(_, wasm)| *wasm);
        let defined = u32::try_from(defined).ok()?;
        let func = FuncIndex::from_u32(self.num_imported_functions + defined);
        Some(FrameInfo { func, wasm_offset })
    }

    /// The name of `func`, if the name section gives one.
    #[must_use]
    pub fn function_name(&self, func: FuncIndex) -> Option<&str> {
        self.function_names.get(&func).map(String::as_str)
    }

    /// The address of defined function `index`.
    #[must_use]
    pub fn function_address(&self, index: DefinedFuncIndex) -> Option<usize> {
        let function = self.functions.get(index.index())?;
        Some(self.start + function.offset as usize)
    }
}

/// How many characters of a name from a name section [`escape_name`] keeps.
pub const MAX_NAME_CHARS: usize = 200;

/// A name from a module's name section made safe to print on one line: control
/// characters (newlines, escape sequences), backslashes and characters that are not
/// printable come out as Rust escapes (`\n`, `\u{1b}`, `\\`), so a name can neither start a
/// new line nor drive the terminal; past [`MAX_NAME_CHARS`] characters the rest is replaced
/// by `...[N more chars]`. Names are untrusted input: every place that prints one (trap
/// backtraces, the perf map, debuggers' symbols) goes through this.
#[must_use]
pub fn escape_name(name: &str) -> String {
    use core::fmt::Write as _;
    let mut text = String::with_capacity(name.len().min(MAX_NAME_CHARS + 32));
    let mut chars = name.chars();
    for c in chars.by_ref().take(MAX_NAME_CHARS) {
        match c {
            // `escape_debug` would escape quotes too, which are harmless here.
            '"' | '\'' => text.push(c),
            c => {
                let _ = write!(text, "{}", c.escape_debug());
            }
        }
    }
    let rest = chars.count();
    if rest > 0 {
        let _ = write!(text, "...[{rest} more chars]");
    }
    text
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn names_cannot_break_lines_or_reach_the_terminal() {
        assert_eq!(escape_name("plain_name"), "plain_name");
        assert_eq!(escape_name("a\nb"), "a\\nb");
        assert_eq!(escape_name("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escape_name("back\\slash \"q\""), "back\\\\slash \"q\"");
        assert_eq!(escape_name("bidi\u{202e}x"), "bidi\\u{202e}x");
        for name in ["\r", "\t", "\u{7f}", "\u{85}", "\u{2028}", "\0"] {
            let escaped = escape_name(name);
            assert!(escaped.chars().all(|c| !c.is_control()), "{escaped:?}");
        }
    }

    #[test]
    fn long_names_are_cut_with_a_marker() {
        let long = "x".repeat(MAX_NAME_CHARS + 50);
        let escaped = escape_name(&long);
        assert!(escaped.starts_with(&"x".repeat(MAX_NAME_CHARS)));
        assert!(escaped.ends_with("...[50 more chars]"), "{escaped}");
        assert_eq!(
            escape_name(&"y".repeat(MAX_NAME_CHARS)),
            "y".repeat(MAX_NAME_CHARS)
        );
    }
}
