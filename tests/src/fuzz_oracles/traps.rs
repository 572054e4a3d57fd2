//! Modules built to trap at chosen points, with every outcome computed in advance.
//!
//! The input chooses a memory (0 to 3 pages, a maximum or none), a table of up to 6 slots
//! holding functions of three different types or null, and a script of up to 32
//! operations. Each operation becomes one exported function of a generated WebAssembly
//! text module; a model of the memory and table predicts each call's results or trap:
//!
//! - loads and stores of every width at addresses and offsets near the end of memory,
//!   far past it (up to the 8 GiB an offset can reach) and at the start, before and after
//!   `memory.grow` (a store that traps writes nothing);
//! - `memory.grow` within and past the maximum, and `memory.size`;
//! - integer division and remainder by zero and of the minimum by -1;
//! - float-to-integer truncation of NaNs, infinities and values at the edges of the
//!   range, trapping and saturating;
//! - `call_indirect` through null slots, with a mistyped signature, and past the table;
//! - `unreachable` at a chosen call depth, finite recursion, and runaway recursion with
//!   small and large frames until the stack is exhausted.
//!
//! After every trap the store must stay usable (a trivial export still returns 42), and at
//! the end the memory's bytes must equal the model's.

use std::fmt::Write as _;

use arbitrary::Unstructured;
use kernel_core::wasm::env::WASM2_FEATURES;
use kernel_core::wasm::runtime::{CallError, Extern, Module, Store, Val};
use kernel_core::wasm::trap::Trap;

use crate::hosted_engine;

/// Bytes in a WebAssembly page.
const PAGE: u64 = 65536;

/// Pages a 32-bit memory can have.
const MAX_PAGES: u64 = 65536;

/// Pages the model lets a memory without a maximum grow to (more would only cost time).
const GROWABLE_PAGES: u64 = 8;

/// Deepest finite recursion or call chain a script asks for.
const MAX_DEPTH: u32 = 1000;

/// The results of the three functions the table may hold, by type.
const TARGET_RESULTS: [i64; 3] = [100, 1000, 300];

/// A memory access instruction: its name, width in bytes, the type of the value moved,
/// and for loads narrower than the type whether they sign-extend.
#[derive(Debug, Clone, Copy)]
struct Access {
    name: &'static str,
    width: u64,
    ty: &'static str,
    signed: bool,
}

const fn access(name: &'static str, width: u64, ty: &'static str, signed: bool) -> Access {
    Access {
        name,
        width,
        ty,
        signed,
    }
}

const LOADS: [Access; 14] = [
    access("i32.load8_u", 1, "i32", false),
    access("i32.load8_s", 1, "i32", true),
    access("i32.load16_u", 2, "i32", false),
    access("i32.load16_s", 2, "i32", true),
    access("i32.load", 4, "i32", false),
    access("i64.load8_u", 1, "i64", false),
    access("i64.load8_s", 1, "i64", true),
    access("i64.load16_u", 2, "i64", false),
    access("i64.load16_s", 2, "i64", true),
    access("i64.load32_u", 4, "i64", false),
    access("i64.load32_s", 4, "i64", true),
    access("i64.load", 8, "i64", false),
    access("f32.load", 4, "f32", false),
    access("f64.load", 8, "f64", false),
];

const STORES: [Access; 9] = [
    access("i32.store8", 1, "i32", false),
    access("i32.store16", 2, "i32", false),
    access("i32.store", 4, "i32", false),
    access("i64.store8", 1, "i64", false),
    access("i64.store16", 2, "i64", false),
    access("i64.store32", 4, "i64", false),
    access("i64.store", 8, "i64", false),
    access("f32.store", 4, "f32", false),
    access("f64.store", 8, "f64", false),
];

/// Integer division and remainder: the instruction and whether it is 64-bit.
const DIVISIONS: [(&str, bool); 8] = [
    ("i32.div_s", false),
    ("i32.div_u", false),
    ("i32.rem_s", false),
    ("i32.rem_u", false),
    ("i64.div_s", true),
    ("i64.div_u", true),
    ("i64.rem_s", true),
    ("i64.rem_u", true),
];

/// Float-to-integer conversions: the instruction, whether the source is f64, whether the
/// result is i64, signed, saturating.
const TRUNCATIONS: [(&str, bool, bool, bool, bool); 16] = [
    ("i32.trunc_f32_s", false, false, true, false),
    ("i32.trunc_f32_u", false, false, false, false),
    ("i32.trunc_f64_s", true, false, true, false),
    ("i32.trunc_f64_u", true, false, false, false),
    ("i64.trunc_f32_s", false, true, true, false),
    ("i64.trunc_f32_u", false, true, false, false),
    ("i64.trunc_f64_s", true, true, true, false),
    ("i64.trunc_f64_u", true, true, false, false),
    ("i32.trunc_sat_f32_s", false, false, true, true),
    ("i32.trunc_sat_f32_u", false, false, false, true),
    ("i32.trunc_sat_f64_s", true, false, true, true),
    ("i32.trunc_sat_f64_u", true, false, false, true),
    ("i64.trunc_sat_f32_s", false, true, true, true),
    ("i64.trunc_sat_f32_u", false, true, false, true),
    ("i64.trunc_sat_f64_s", true, true, true, true),
    ("i64.trunc_sat_f64_u", true, true, false, true),
];

/// What a call must do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Values(Vec<Val>),
    Trap(Trap),
}

/// One operation of the script: the exported function's text, its arguments and what the
/// call must do.
struct Step {
    func: String,
    args: Vec<Val>,
    expected: Expected,
}

/// The model: memory bytes, its maximum, the table.
struct Model {
    memory: Vec<u8>,
    maximum: Option<u64>,
    table: Vec<Option<usize>>,
}

impl Model {
    fn pages(&self) -> u64 {
        self.memory.len() as u64 / PAGE
    }

    /// The effective address range of an access, or `None` when it is out of bounds.
    fn range(&self, address: u32, offset: u32, width: u64) -> Option<std::ops::Range<usize>> {
        let start = u64::from(address) + u64::from(offset);
        let end = start + width;
        (end <= self.memory.len() as u64).then(|| {
            let start = usize::try_from(start).unwrap_or(usize::MAX);
            start..start + usize::try_from(width).unwrap_or(0)
        })
    }
}

/// Draws from the input, zero once it is used up.
struct Draw<'a, 'b>(&'b mut Unstructured<'a>);

impl Draw<'_, '_> {
    fn below(&mut self, bound: u32) -> u32 {
        self.0
            .int_in_range(0..=bound.saturating_sub(1))
            .unwrap_or(0)
    }

    fn u32(&mut self) -> u32 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn u64(&mut self) -> u64 {
        self.0.arbitrary().unwrap_or(0)
    }

    fn small_delta(&mut self) -> i64 {
        i64::from(self.below(17)) - 8
    }

    /// An address for an access of `width` bytes with `offset`, given `memory_bytes`:
    /// mostly around the end of memory, sometimes anywhere.
    fn address(&mut self, memory_bytes: u64, offset: u32, width: u64) -> u32 {
        let near = |delta: i64| {
            let target = i128::from(memory_bytes) - i128::from(width) - i128::from(offset)
                + i128::from(delta);
            u32::try_from(target.rem_euclid(1 << 32)).unwrap_or(0)
        };
        match self.below(8) {
            0 => 0,
            1 => near(self.small_delta()),
            2 => near(self.small_delta() + i64::from(self.below(4)) * 65536),
            3 => u32::MAX - self.below(16),
            4 => 0x8000_0000 - 8 + self.below(16),
            5 => u32::try_from(memory_bytes.min(u64::from(u32::MAX))).unwrap_or(0) + self.below(16),
            _ => self.u32(),
        }
    }

    fn offset(&mut self) -> u32 {
        match self.below(6) {
            0 | 1 => 0,
            2 => self.below(64),
            3 => 65536 * self.below(5) + self.below(16),
            4 => u32::MAX - self.below(16),
            _ => self.u32(),
        }
    }

    fn integer(&mut self, wide: bool) -> u64 {
        let (min, all) = if wide {
            (1 << 63, u64::MAX)
        } else {
            (1 << 31, u64::from(u32::MAX))
        };
        match self.below(6) {
            0 => 0,
            1 => all,
            2 => min,
            3 => 1,
            _ => self.u64() & all,
        }
    }

    /// Bits of a float at the interesting edges of conversion to integers.
    fn float(&mut self, double: bool) -> u64 {
        let edges = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            -0.9,
            -1.0,
            2_147_483_647.0,
            2_147_483_648.0,
            -2_147_483_648.0,
            -2_147_483_649.0,
            4_294_967_295.0,
            4_294_967_296.0,
            9_223_372_036_854_775_807.0,
            -9_223_372_036_854_775_808.0,
            18_446_744_073_709_551_615.0,
        ];
        let choice = self.below(24) as usize;
        if let Some(&edge) = edges.get(choice) {
            // One ulp either way, sometimes.
            let nudge = i64::from(self.below(3)) - 1;
            if double {
                edge.to_bits().wrapping_add_signed(nudge)
            } else {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "rounding to the nearest f32 is the point"
                )]
                let single = edge as f32;
                u64::from(single.to_bits().wrapping_add_signed(nudge as i32))
            }
        } else if double {
            self.u64()
        } else {
            u64::from(self.u32())
        }
    }
}

/// A value of WebAssembly type `ty` (`i32`, `i64`, `f32` or `f64`) from low bits.
#[expect(
    clippy::cast_possible_truncation,
    reason = "32-bit types take the low half"
)]
fn value(ty: &str, bits: u64) -> Val {
    match ty {
        "i32" => Val::I32((bits as u32).cast_signed()),
        "i64" => Val::I64(bits.cast_signed()),
        "f32" => Val::F32(bits as u32),
        _ => Val::F64(bits),
    }
}

/// The bits a value of `ty` stores, as a little-endian `u64`.
fn bits_of(value: &Val) -> u64 {
    match *value {
        Val::I32(value) => u64::from(value.cast_unsigned()),
        Val::I64(value) => value.cast_unsigned(),
        Val::F32(bits) => u64::from(bits),
        Val::F64(bits) => bits,
        Val::V128(_) | Val::FuncRef(_) | Val::ExternRef(_) => 0,
    }
}

/// What an integer division or remainder gives.
#[expect(
    clippy::cast_possible_truncation,
    reason = "32-bit operations take the low half"
)]
fn divide(name: &str, wide: bool, a: u64, b: u64) -> Expected {
    let op = &name[4..];
    if b == 0 || (!wide && b as u32 == 0) {
        return Expected::Trap(Trap::IntegerDivisionByZero);
    }
    let result = if wide {
        let (sa, sb) = (a.cast_signed(), b.cast_signed());
        match op {
            "div_s" => match sa.checked_div(sb) {
                Some(quotient) => quotient.cast_unsigned(),
                None => return Expected::Trap(Trap::IntegerOverflow),
            },
            "div_u" => a / b,
            "rem_s" => sa.wrapping_rem(sb).cast_unsigned(),
            _ => a % b,
        }
    } else {
        let (a, b) = (a as u32, b as u32);
        let (sa, sb) = (a.cast_signed(), b.cast_signed());
        u64::from(match op {
            "div_s" => match sa.checked_div(sb) {
                Some(quotient) => quotient.cast_unsigned(),
                None => return Expected::Trap(Trap::IntegerOverflow),
            },
            "div_u" => a / b,
            "rem_s" => sa.wrapping_rem(sb).cast_unsigned(),
            _ => a % b,
        })
    };
    Expected::Values(vec![value(if wide { "i64" } else { "i32" }, result)])
}

/// What a float-to-integer conversion gives.
#[expect(
    clippy::cast_possible_truncation,
    reason = "in-range truncations and saturating `as` are the semantics"
)]
fn truncate(double: bool, wide: bool, signed: bool, saturating: bool, bits: u64) -> Expected {
    let x = if double {
        f64::from_bits(bits)
    } else {
        f64::from(f32::from_bits(bits as u32))
    };
    let ty = if wide { "i64" } else { "i32" };
    if saturating {
        // Rust's `as` saturates and takes NaN to zero: trunc_sat's semantics exactly.
        let result = match (wide, signed) {
            (false, true) => u64::from((x as i32).cast_unsigned()),
            (false, false) => u64::from(x as u32),
            (true, true) => (x as i64).cast_unsigned(),
            (true, false) => x as u64,
        };
        return Expected::Values(vec![value(ty, result)]);
    }
    if x.is_nan() {
        return Expected::Trap(Trap::BadConversionToInteger);
    }
    let t = x.trunc();
    let in_range = match (wide, signed) {
        (false, true) => (-2_147_483_648.0..=2_147_483_647.0).contains(&t),
        (false, false) => (0.0..=4_294_967_295.0).contains(&t),
        (true, true) => (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t),
        (true, false) => (0.0..18_446_744_073_709_551_616.0).contains(&t),
    };
    if !in_range {
        return Expected::Trap(Trap::IntegerOverflow);
    }
    truncate(double, wide, signed, true, bits)
}

/// The script of an input: the module text and the steps.
struct Script {
    text: String,
    steps: Vec<Step>,
    model: Model,
}

/// Builds the module and the expected outcome of each step from the input.
fn script(input: &mut Unstructured<'_>) -> Script {
    let mut draw = Draw(input);
    let minimum = u64::from(draw.below(4));
    let maximum = (draw.below(3) != 0).then(|| minimum + u64::from(draw.below(4)));
    let table_size = draw.below(7) as usize;
    let table: Vec<Option<usize>> = (0..table_size)
        .map(|_| {
            let slot = draw.below(4) as usize;
            (slot < TARGET_RESULTS.len()).then_some(slot)
        })
        .collect();
    let mut model = Model {
        memory: vec![0; usize::try_from(minimum * PAGE).unwrap_or(0)],
        maximum,
        table,
    };

    let mut text = String::from(
        "(module $traps\n\
         (type $t0 (func (result i32)))\n\
         (type $t1 (func (param i32) (result i32)))\n\
         (type $t2 (func (result i64)))\n\
         (func $f0 (type $t0) (i32.const 100))\n\
         (func $f1 (type $t1) (i32.add (local.get 0) (i32.const 995)))\n\
         (func $f2 (type $t2) (i64.const 300))\n\
         (func (export \"ok\") (result i32) (i32.const 42))\n\
         (func $down (param i32)\n\
           (if (i32.eqz (local.get 0)) (then (unreachable)))\n\
           (call $down (i32.sub (local.get 0) (i32.const 1))))\n\
         (func $count (param i32) (result i32)\n\
           (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))\n\
             (else (i32.add (i32.const 1) (call $count (i32.sub (local.get 0) (i32.const 1)))))))\n",
    );
    let _ = writeln!(
        text,
        "(memory (export \"memory\") {minimum}{})",
        maximum
            .map(|maximum| format!(" {maximum}"))
            .unwrap_or_default()
    );
    let _ = writeln!(text, "(table {} funcref)", model.table.len());
    for (index, slot) in model.table.iter().enumerate() {
        if let Some(target) = slot {
            let _ = writeln!(text, "(elem (i32.const {index}) $f{target})");
        }
    }

    let count = 1 + draw.below(32);
    let mut steps = Vec::new();
    for index in 0..count {
        let export = format!("(export \"op{index}\")");
        let step = match draw.below(10) {
            0 | 1 => {
                let load = LOADS[draw.below(LOADS.len() as u32) as usize];
                let offset = draw.offset();
                let address = draw.address(model.memory.len() as u64, offset, load.width);
                let expected = match model.range(address, offset, load.width) {
                    None => Expected::Trap(Trap::MemoryOutOfBounds),
                    Some(range) => {
                        let mut bytes = [0u8; 8];
                        bytes[..range.len()].copy_from_slice(&model.memory[range]);
                        let mut bits = u64::from_le_bytes(bytes);
                        if load.signed {
                            let shift = 64 - 8 * load.width;
                            bits = ((bits << shift).cast_signed() >> shift).cast_unsigned();
                        }
                        Expected::Values(vec![value(load.ty, bits)])
                    }
                };
                Step {
                    func: format!(
                        "(func {export} (param i32) (result {}) ({} offset={offset} (local.get 0)))",
                        load.ty, load.name
                    ),
                    args: vec![Val::I32(address.cast_signed())],
                    expected,
                }
            }
            2 | 3 => {
                let store = STORES[draw.below(STORES.len() as u32) as usize];
                let offset = draw.offset();
                let address = draw.address(model.memory.len() as u64, offset, store.width);
                let stored = value(store.ty, draw.u64());
                let expected = match model.range(address, offset, store.width) {
                    None => Expected::Trap(Trap::MemoryOutOfBounds),
                    Some(range) => {
                        let bytes = bits_of(&stored).to_le_bytes();
                        let len = range.len();
                        model.memory[range].copy_from_slice(&bytes[..len]);
                        Expected::Values(Vec::new())
                    }
                };
                Step {
                    func: format!(
                        "(func {export} (param i32 {}) ({} offset={offset} (local.get 0) (local.get 1)))",
                        store.ty, store.name
                    ),
                    args: vec![Val::I32(address.cast_signed()), stored],
                    expected,
                }
            }
            4 => {
                let pages = model.pages();
                let limit = model.maximum.unwrap_or(MAX_PAGES);
                let delta = match draw.below(5) {
                    0 => 0,
                    1 | 2 => draw.below(3),
                    3 => u32::try_from(limit - pages + 1).unwrap_or(u32::MAX),
                    _ => u32::MAX - draw.below(4),
                };
                let grown = pages + u64::from(delta);
                // A memory without a maximum may grow to 4 GiB: the model only follows
                // small growth, and asks for impossible growth otherwise.
                let delta = if model.maximum.is_none() && grown > GROWABLE_PAGES && grown <= limit {
                    0
                } else {
                    delta
                };
                let grown = pages + u64::from(delta);
                let result = if grown > limit {
                    -1
                } else {
                    model
                        .memory
                        .resize(usize::try_from(grown * PAGE).unwrap_or(0), 0);
                    i32::try_from(pages).unwrap_or(-1)
                };
                Step {
                    func: format!(
                        "(func {export} (param i32) (result i32) (memory.grow (local.get 0)))"
                    ),
                    args: vec![Val::I32(delta.cast_signed())],
                    expected: Expected::Values(vec![Val::I32(result)]),
                }
            }
            5 => {
                let (name, wide) = DIVISIONS[draw.below(DIVISIONS.len() as u32) as usize];
                let a = draw.integer(wide);
                let b = match draw.below(4) {
                    0 => 0,
                    1 => u64::MAX,
                    _ => draw.integer(wide),
                };
                let ty = if wide { "i64" } else { "i32" };
                Step {
                    func: format!(
                        "(func {export} (param {ty} {ty}) (result {ty}) ({name} (local.get 0) (local.get 1)))"
                    ),
                    args: vec![value(ty, a), value(ty, b)],
                    expected: divide(name, wide, a, b),
                }
            }
            6 => {
                let (name, double, wide, signed, saturating) =
                    TRUNCATIONS[draw.below(TRUNCATIONS.len() as u32) as usize];
                let bits = draw.float(double);
                let (from, to) = (
                    if double { "f64" } else { "f32" },
                    if wide { "i64" } else { "i32" },
                );
                Step {
                    func: format!(
                        "(func {export} (param {from}) (result {to}) ({name} (local.get 0)))"
                    ),
                    args: vec![value(from, bits)],
                    expected: truncate(double, wide, signed, saturating, bits),
                }
            }
            7 => {
                let ty = draw.below(3) as usize;
                let index = match draw.below(4) {
                    0 => u32::MAX - draw.below(4),
                    1 => u32::try_from(model.table.len()).unwrap_or(0) + draw.below(4),
                    _ => draw.below(u32::try_from(model.table.len()).unwrap_or(0).max(1)),
                };
                let expected = match model.table.get(index as usize) {
                    None => Expected::Trap(Trap::UndefinedElement),
                    Some(None) => Expected::Trap(Trap::IndirectCallToNull),
                    Some(Some(target)) if *target != ty => Expected::Trap(Trap::BadSignature),
                    Some(Some(_)) => Expected::Values(vec![match ty {
                        2 => Val::I64(TARGET_RESULTS[ty]),
                        _ => Val::I32(i32::try_from(TARGET_RESULTS[ty]).unwrap_or(0)),
                    }]),
                };
                let (result, argument) = match ty {
                    0 => ("i32", ""),
                    1 => ("i32", " (i32.const 5)"),
                    _ => ("i64", ""),
                };
                Step {
                    func: format!(
                        "(func {export} (param i32) (result {result}) (call_indirect (type $t{ty}){argument} (local.get 0)))"
                    ),
                    args: vec![Val::I32(index.cast_signed())],
                    expected,
                }
            }
            8 => {
                let depth = draw.below(MAX_DEPTH + 1);
                if draw.below(2) == 0 {
                    Step {
                        func: format!("(func {export} (param i32) (call $down (local.get 0)))"),
                        args: vec![Val::I32(depth.cast_signed())],
                        expected: Expected::Trap(Trap::Unreachable),
                    }
                } else {
                    Step {
                        func: format!(
                            "(func {export} (param i32) (result i32) (call $count (local.get 0)))"
                        ),
                        args: vec![Val::I32(depth.cast_signed())],
                        expected: Expected::Values(vec![Val::I32(depth.cast_signed())]),
                    }
                }
            }
            _ => {
                // Runaway recursion whose frames keep `locals` values alive across the
                // call: small and large frames both end in stack exhaustion.
                let locals = draw.below(64);
                let mut func = format!("(func $exhaust{index} (param i64) (result i64)");
                for _ in 0..locals {
                    func.push_str(" (local i64)");
                }
                for local in 1..=locals {
                    let _ = write!(
                        func,
                        " (local.set {local} (i64.add (local.get 0) (i64.const {local})))"
                    );
                }
                let _ = write!(
                    func,
                    " (call $exhaust{index} (i64.add (local.get 0) (i64.const 1)))"
                );
                for local in 1..=locals {
                    let _ = write!(func, " (i64.add (local.get {local}))");
                }
                let _ = write!(
                    func,
                    ")\n(func {export} (result i64) (call $exhaust{index} (i64.const 0)))"
                );
                Step {
                    func,
                    args: Vec::new(),
                    expected: Expected::Trap(Trap::StackOverflow),
                }
            }
        };
        text.push_str(&step.func);
        text.push('\n');
        steps.push(step);
    }
    text.push(')');
    Script { text, steps, model }
}

/// The oracle of the `traps` target.
///
/// # Panics
/// On a finding: a call whose results or trap differ from the model's, a store that is
/// unusable after a trap, or memory contents that differ from the model's.
pub fn check(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Script { text, steps, model } = script(&mut input);
    let wasm = wat::parse_str(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let module = Module::new(hosted_engine(), &wasm, WASM2_FEATURES)
        .unwrap_or_else(|error| panic!("the module does not load: {error}\n{text}"));
    let mut store = Store::new(hosted_engine());
    let instance = store
        .instantiate(&module, &[])
        .unwrap_or_else(|error| panic!("the module does not instantiate: {error}\n{text}"));
    let func = |store: &Store<'_, _>, name: &str| match store.export(instance, name) {
        Some(Extern::Func(func)) => func,
        other => panic!("export {name}: {other:?}"),
    };
    let ok = func(&store, "ok");
    for (index, step) in steps.iter().enumerate() {
        let op = func(&store, &format!("op{index}"));
        let result = store.call(op, &step.args);
        let got = match result {
            Ok(values) => Expected::Values(values),
            Err(CallError::Trap {
                trap, backtrace, ..
            }) => {
                assert!(
                    !backtrace.is_empty(),
                    "op{index}: a trap without a backtrace"
                );
                Expected::Trap(trap)
            }
            Err(error @ CallError::BadArguments(_)) => panic!("op{index}: {error}"),
        };
        assert_eq!(
            got, step.expected,
            "op{index}{:?}: {}\nmodule:\n{text}",
            step.args, step.func
        );
        if matches!(got, Expected::Trap(_)) {
            assert_eq!(
                store.call(ok, &[]),
                Ok(vec![Val::I32(42)]),
                "the store is unusable after op{index} trapped"
            );
        }
    }
    let Some(Extern::Memory(memory)) = store.export(instance, "memory") else {
        panic!("memory export");
    };
    let data = store.memory_data(memory).expect("the exported memory");
    assert_eq!(data.len(), model.memory.len(), "memory size");
    if let Some(at) = data.iter().zip(&model.memory).position(|(a, b)| a != b) {
        panic!(
            "memory byte {at:#x} is {:#04x}, the model says {:#04x}\nmodule:\n{text}",
            data[at], model.memory[at]
        );
    }
}
