//! Compiles every SIMD operator for both ISAs. (Running them is the spec scripts' job:
//! `tests/tests/spec_simd.rs`.)

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::hal::Isa;
use crate::wasm::compile::{
    CompileError, CompileOptions, CompiledModule, compile_module, operator_name,
};
use crate::wasm::env::{VMShape, WASM2_FEATURES, translate};
use crate::wasm::trap::Trap;

/// `v128 → v128` operators.
const UNARY: &[&str] = &[
    "v128.not",
    "i8x16.abs",
    "i8x16.neg",
    "i8x16.popcnt",
    "i16x8.abs",
    "i16x8.neg",
    "i32x4.abs",
    "i32x4.neg",
    "i64x2.abs",
    "i64x2.neg",
    "i16x8.extend_low_i8x16_s",
    "i16x8.extend_high_i8x16_s",
    "i16x8.extend_low_i8x16_u",
    "i16x8.extend_high_i8x16_u",
    "i32x4.extend_low_i16x8_s",
    "i32x4.extend_high_i16x8_s",
    "i32x4.extend_low_i16x8_u",
    "i32x4.extend_high_i16x8_u",
    "i64x2.extend_low_i32x4_s",
    "i64x2.extend_high_i32x4_s",
    "i64x2.extend_low_i32x4_u",
    "i64x2.extend_high_i32x4_u",
    "i16x8.extadd_pairwise_i8x16_s",
    "i16x8.extadd_pairwise_i8x16_u",
    "i32x4.extadd_pairwise_i16x8_s",
    "i32x4.extadd_pairwise_i16x8_u",
    "f32x4.ceil",
    "f32x4.floor",
    "f32x4.trunc",
    "f32x4.nearest",
    "f32x4.abs",
    "f32x4.neg",
    "f32x4.sqrt",
    "f64x2.ceil",
    "f64x2.floor",
    "f64x2.trunc",
    "f64x2.nearest",
    "f64x2.abs",
    "f64x2.neg",
    "f64x2.sqrt",
    "i32x4.trunc_sat_f32x4_s",
    "i32x4.trunc_sat_f32x4_u",
    "f32x4.convert_i32x4_s",
    "f32x4.convert_i32x4_u",
    "i32x4.trunc_sat_f64x2_s_zero",
    "i32x4.trunc_sat_f64x2_u_zero",
    "f64x2.convert_low_i32x4_s",
    "f64x2.convert_low_i32x4_u",
    "f32x4.demote_f64x2_zero",
    "f64x2.promote_low_f32x4",
];

/// `v128 v128 → v128` operators.
const BINARY: &[&str] = &[
    "i8x16.swizzle",
    "i8x16.eq",
    "i8x16.ne",
    "i8x16.lt_s",
    "i8x16.lt_u",
    "i8x16.gt_s",
    "i8x16.gt_u",
    "i8x16.le_s",
    "i8x16.le_u",
    "i8x16.ge_s",
    "i8x16.ge_u",
    "i16x8.eq",
    "i16x8.ne",
    "i16x8.lt_s",
    "i16x8.lt_u",
    "i16x8.gt_s",
    "i16x8.gt_u",
    "i16x8.le_s",
    "i16x8.le_u",
    "i16x8.ge_s",
    "i16x8.ge_u",
    "i32x4.eq",
    "i32x4.ne",
    "i32x4.lt_s",
    "i32x4.lt_u",
    "i32x4.gt_s",
    "i32x4.gt_u",
    "i32x4.le_s",
    "i32x4.le_u",
    "i32x4.ge_s",
    "i32x4.ge_u",
    "i64x2.eq",
    "i64x2.ne",
    "i64x2.lt_s",
    "i64x2.gt_s",
    "i64x2.le_s",
    "i64x2.ge_s",
    "f32x4.eq",
    "f32x4.ne",
    "f32x4.lt",
    "f32x4.gt",
    "f32x4.le",
    "f32x4.ge",
    "f64x2.eq",
    "f64x2.ne",
    "f64x2.lt",
    "f64x2.gt",
    "f64x2.le",
    "f64x2.ge",
    "v128.and",
    "v128.andnot",
    "v128.or",
    "v128.xor",
    "i8x16.narrow_i16x8_s",
    "i8x16.narrow_i16x8_u",
    "i16x8.narrow_i32x4_s",
    "i16x8.narrow_i32x4_u",
    "i8x16.add",
    "i8x16.add_sat_s",
    "i8x16.add_sat_u",
    "i8x16.sub",
    "i8x16.sub_sat_s",
    "i8x16.sub_sat_u",
    "i8x16.min_s",
    "i8x16.min_u",
    "i8x16.max_s",
    "i8x16.max_u",
    "i8x16.avgr_u",
    "i16x8.q15mulr_sat_s",
    "i16x8.add",
    "i16x8.add_sat_s",
    "i16x8.add_sat_u",
    "i16x8.sub",
    "i16x8.sub_sat_s",
    "i16x8.sub_sat_u",
    "i16x8.mul",
    "i16x8.min_s",
    "i16x8.min_u",
    "i16x8.max_s",
    "i16x8.max_u",
    "i16x8.avgr_u",
    "i16x8.extmul_low_i8x16_s",
    "i16x8.extmul_high_i8x16_s",
    "i16x8.extmul_low_i8x16_u",
    "i16x8.extmul_high_i8x16_u",
    "i32x4.add",
    "i32x4.sub",
    "i32x4.mul",
    "i32x4.min_s",
    "i32x4.min_u",
    "i32x4.max_s",
    "i32x4.max_u",
    "i32x4.dot_i16x8_s",
    "i32x4.extmul_low_i16x8_s",
    "i32x4.extmul_high_i16x8_s",
    "i32x4.extmul_low_i16x8_u",
    "i32x4.extmul_high_i16x8_u",
    "i64x2.add",
    "i64x2.sub",
    "i64x2.mul",
    "i64x2.extmul_low_i32x4_s",
    "i64x2.extmul_high_i32x4_s",
    "i64x2.extmul_low_i32x4_u",
    "i64x2.extmul_high_i32x4_u",
    "f32x4.add",
    "f32x4.sub",
    "f32x4.mul",
    "f32x4.div",
    "f32x4.min",
    "f32x4.max",
    "f32x4.pmin",
    "f32x4.pmax",
    "f64x2.add",
    "f64x2.sub",
    "f64x2.mul",
    "f64x2.div",
    "f64x2.min",
    "f64x2.max",
    "f64x2.pmin",
    "f64x2.pmax",
];

/// `v128 → i32` operators.
const TESTS: &[&str] = &[
    "v128.any_true",
    "i8x16.all_true",
    "i16x8.all_true",
    "i32x4.all_true",
    "i64x2.all_true",
    "i8x16.bitmask",
    "i16x8.bitmask",
    "i32x4.bitmask",
    "i64x2.bitmask",
];

/// `v128 i32 → v128` operators.
const SHIFTS: &[&str] = &[
    "i8x16.shl",
    "i8x16.shr_s",
    "i8x16.shr_u",
    "i16x8.shl",
    "i16x8.shr_s",
    "i16x8.shr_u",
    "i32x4.shl",
    "i32x4.shr_s",
    "i32x4.shr_u",
    "i64x2.shl",
    "i64x2.shr_s",
    "i64x2.shr_u",
];

/// The lane shapes: prefix, scalar type, last lane.
const SHAPES: &[(&str, &str, u8)] = &[
    ("i8x16", "i32", 15),
    ("i16x8", "i32", 7),
    ("i32x4", "i32", 3),
    ("i64x2", "i64", 1),
    ("f32x4", "f32", 3),
    ("f64x2", "f64", 1),
];

/// `i32 → v128` loads.
const LOADS: &[&str] = &[
    "v128.load",
    "v128.load8x8_s",
    "v128.load8x8_u",
    "v128.load16x4_s",
    "v128.load16x4_u",
    "v128.load32x2_s",
    "v128.load32x2_u",
    "v128.load8_splat",
    "v128.load16_splat",
    "v128.load32_splat",
    "v128.load64_splat",
    "v128.load32_zero",
    "v128.load64_zero",
];

/// The lane loads and stores with their last lane.
const LANE_ACCESSES: &[(&str, u8)] = &[("8", 15), ("16", 7), ("32", 3), ("64", 1)];

/// A module with `functions`, a memory, a mutable `v128` global `$g` and a function
/// `$identity` on `v128`.
fn module_of(functions: &[String]) -> String {
    format!(
        "(module
  (memory 1)
  (global $g (mut v128) (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16))
  (func $identity (param v128) (result v128) (local.get 0))
{}
)",
        functions.join("\n")
    )
}

/// One exported function per SIMD operator, each returning the operator's result so that
/// none is dead code, and one using `v128` locals, globals, `select`, blocks and calls.
fn every_operator_function() -> Vec<String> {
    let mut functions = Vec::new();
    let mut add = |name: &str, signature: &str, body: String| {
        functions.push(format!(
            "  (func (export \"{name}\") {signature}\n    {body})"
        ));
    };
    for op in UNARY {
        add(
            op,
            "(param v128) (result v128)",
            format!("({op} (local.get 0))"),
        );
    }
    for op in BINARY {
        add(
            op,
            "(param v128 v128) (result v128)",
            format!("({op} (local.get 0) (local.get 1))"),
        );
    }
    for op in TESTS {
        add(
            op,
            "(param v128) (result i32)",
            format!("({op} (local.get 0))"),
        );
    }
    for op in SHIFTS {
        add(
            op,
            "(param v128 i32) (result v128)",
            format!("({op} (local.get 0) (local.get 1))"),
        );
    }
    for &(shape, scalar, last) in SHAPES {
        let extracts: &[&str] = if scalar == "i32" && shape != "i32x4" {
            &["extract_lane_s", "extract_lane_u"]
        } else {
            &["extract_lane"]
        };
        for extract in extracts {
            add(
                &format!("{shape}.{extract}"),
                &format!("(param v128) (result {scalar})"),
                format!("({shape}.{extract} {last} (local.get 0))"),
            );
        }
        add(
            &format!("{shape}.replace_lane"),
            &format!("(param v128 {scalar}) (result v128)"),
            format!("({shape}.replace_lane {last} (local.get 0) (local.get 1))"),
        );
        add(
            &format!("{shape}.splat"),
            &format!("(param {scalar}) (result v128)"),
            format!("({shape}.splat (local.get 0))"),
        );
    }
    for op in LOADS {
        add(
            op,
            "(param i32) (result v128)",
            format!("({op} offset=3 (local.get 0))"),
        );
    }
    for &(bits, last) in LANE_ACCESSES {
        add(
            &format!("v128.load{bits}_lane"),
            "(param i32 v128) (result v128)",
            format!("(v128.load{bits}_lane offset=5 {last} (local.get 0) (local.get 1))"),
        );
        add(
            &format!("v128.store{bits}_lane"),
            "(param i32 v128)",
            format!("(v128.store{bits}_lane {last} (local.get 0) (local.get 1))"),
        );
    }
    add(
        "v128.store",
        "(param i32 v128)",
        "(v128.store offset=7 (local.get 0) (local.get 1))".to_string(),
    );
    add(
        "v128.const",
        "(result v128)",
        "(v128.const i32x4 1 -2 0x7fffffff 0x80000000)".to_string(),
    );
    add(
        "v128.bitselect",
        "(param v128 v128 v128) (result v128)",
        "(v128.bitselect (local.get 0) (local.get 1) (local.get 2))".to_string(),
    );
    add(
        "i8x16.shuffle",
        "(param v128 v128) (result v128)",
        "(i8x16.shuffle 31 0 30 1 29 2 28 3 27 4 26 5 25 6 24 7 (local.get 0) (local.get 1))"
            .to_string(),
    );
    add(
        "variables",
        "(param v128 i32) (result v128 v128) (local v128)",
        "(local.set 2 (select (local.get 0) (global.get $g) (local.get 1)))
    (global.set $g (local.get 2))
    (local.get 0)
    (block (param v128) (result v128)
      (if (param v128) (result v128) (local.get 1)
        (then (call $identity))
        (else (call $identity (v128.const i64x2 0 0)) (drop))))
    (local.get 2)"
            .to_string(),
    );
    functions
}

/// Cranelift's listing of the machine code (VCode) of every defined function of `wasm`.
fn listings(wasm: &[u8], isa: Isa) -> Vec<String> {
    use cranelift_codegen::Context;
    use cranelift_codegen::control::ControlPlane;

    use crate::wasm::compile::environ::ModuleEnvironment;
    use crate::wasm::compile::func_translator::translate_function;
    use crate::wasm::compile::target_isa;
    use crate::wasm::indices::FuncIndex;

    let module = translate(wasm, WASM2_FEATURES).expect("valid module");
    let shape = VMShape::for_module(&module).expect("layout");
    let target = target_isa(isa).expect("target");
    let env = ModuleEnvironment::new(&module, &shape, &*target, CompileOptions::default())
        .expect("environment");
    let mut builder_context = cranelift_frontend::FunctionBuilderContext::new();
    let mut listings = Vec::new();
    for (defined, range) in module.function_bodies.iter().enumerate() {
        let index = FuncIndex::from_u32(
            module.num_imported_functions + u32::try_from(defined).expect("small"),
        );
        let func = translate_function(
            &env,
            index,
            &wasm[range.clone()],
            range.start,
            &mut builder_context,
        )
        .expect("translation");
        let mut context = Context::for_function(func);
        context.set_disasm(true);
        let compiled = context
            .compile(&*target, &mut ControlPlane::default())
            .expect("compilation");
        listings.push(compiled.vcode.clone().expect("listing"));
    }
    listings
}

fn compile(wasm: &[u8], isa: Isa) -> Result<CompiledModule, CompileError> {
    let module = translate(wasm, WASM2_FEATURES).expect("valid module");
    let shape = VMShape::for_module(&module).expect("layout");
    compile_module(isa, CompileOptions::default(), &module, wasm, &shape)
}

/// The distinct SIMD operators (by wasmparser's names) in the module's function bodies.
fn simd_operators(wasm: &[u8]) -> BTreeSet<String> {
    let prefixes = ["V128", "I8x16", "I16x8", "I32x4", "I64x2", "F32x4", "F64x2"];
    let mut seen = BTreeSet::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        if let wasmparser::Payload::CodeSectionEntry(body) = payload.expect("payload") {
            let mut reader = body.get_operators_reader().expect("operators");
            while !reader.eof() {
                let name = operator_name(&reader.read().expect("operator"));
                if prefixes.iter().any(|prefix| name.starts_with(prefix)) {
                    seen.insert(name);
                }
            }
        }
    }
    seen
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles every SIMD operator with Cranelift: far too slow under Miri"
)]
fn one_module_with_every_simd_operator_compiles_for_both_isas() {
    let functions = every_operator_function();
    let wasm = wat::parse_str(module_of(&functions)).expect("valid text");
    // wasmparser's `@simd` group (the fixed-width SIMD proposal) has 236 operators.
    assert_eq!(simd_operators(&wasm).len(), 236);
    for isa in [Isa::X86_64, Isa::Riscv64] {
        let compiled = compile(&wasm, isa).unwrap_or_else(|error| panic!("{isa}: {error}"));
        assert_eq!(compiled.functions.len(), functions.len() + 1, "{isa}");
        // Every access to linear memory is in the trap table.
        let out_of_bounds = compiled
            .traps
            .iter()
            .filter(|&&(_, trap)| trap == Trap::MemoryOutOfBounds)
            .count();
        let accesses = LOADS.len() + 2 * LANE_ACCESSES.len() + 1;
        assert!(out_of_bounds >= accesses, "{isa}: {out_of_bounds} traps");
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles every SIMD operator with Cranelift: far too slow under Miri"
)]
fn every_simd_operator_compiles_for_both_isas() {
    // One module per operator, so that a failure names it. An `Unsupported` operator, a
    // lowering Cranelift lacks (`Codegen`) and a libcall (`Link`: the linker resolves
    // nothing but calls between the blob's own functions) all fail here.
    let mut failures = Vec::new();
    for function in every_operator_function() {
        let wasm = wat::parse_str(module_of(core::slice::from_ref(&function))).expect("valid");
        for isa in [Isa::X86_64, Isa::Riscv64] {
            match compile(&wasm, isa) {
                Ok(compiled) => assert_eq!(compiled.functions.len(), 2),
                Err(error) => {
                    let head = function.lines().next().unwrap_or_default().trim();
                    failures.push(format!("{isa}: {head}: {error}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles every SIMD operator with Cranelift: far too slow under Miri"
)]
fn riscv64_reads_and_writes_linear_memory_in_bytes_or_scalars() {
    // A vector access with elements wider than a byte needs element-aligned addresses on
    // riscv64; WebAssembly addresses need not be aligned.
    let mut functions = Vec::new();
    for op in LOADS {
        functions.push(format!(
            "(func (param i32) (result v128) ({op} offset=1 (local.get 0)))"
        ));
    }
    for (bits, last) in LANE_ACCESSES {
        functions.push(format!(
            "(func (param i32 v128) (result v128) (v128.load{bits}_lane {last} (local.get 0) (local.get 1)))"
        ));
        functions.push(format!(
            "(func (param i32 v128) (v128.store{bits}_lane {last} (local.get 0) (local.get 1)))"
        ));
    }
    functions.push("(func (param i32 v128) (v128.store (local.get 0) (local.get 1)))".into());
    let wasm =
        wat::parse_str(format!("(module (memory 1) {})", functions.join(" "))).expect("valid text");
    for (function, listing) in functions.iter().zip(listings(&wasm, Isa::Riscv64)) {
        for wide in [
            "vle16", "vle32", "vle64", "vse16", "vse32", "vse64", "vlse", "vsse",
        ] {
            assert!(
                !listing.contains(wide),
                "{function} uses {wide}:\n{listing}"
            );
        }
    }
}
