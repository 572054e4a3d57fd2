//! Compiles modules covering every operator family for both ISAs and checks the tables
//! that come with the code. (Executing the code is the runtime's tests' job: kernel-core has
//! no executable memory of its own.)

use alloc::string::String;
use alloc::vec::Vec;

use super::*;
use crate::wasm::env::{WASM2_FEATURES, WasmFeatures, translate};

const ISAS: [Isa; 2] = [Isa::X86_64, Isa::Riscv64];

fn compile_with(
    wat: &str,
    isa: Isa,
    features: WasmFeatures,
) -> Result<CompiledModule, CompileError> {
    let wasm = wat::parse_str(wat).expect("valid text");
    let module = translate(&wasm, features).expect("valid module");
    let shape = VMShape::for_module(&module).expect("layout");
    compile_module(isa, CompileOptions::default(), &module, &wasm, &shape)
}

/// Compiles `wat` for both ISAs, checking the invariants every compiled module keeps.
fn compile_both(wat: &str) -> [CompiledModule; 2] {
    ISAS.map(|isa| {
        let compiled =
            compile_with(wat, isa, WASM2_FEATURES).unwrap_or_else(|error| panic!("{isa}: {error}"));
        check_invariants(&compiled, isa);
        compiled
    })
}

fn check_invariants(compiled: &CompiledModule, isa: Isa) {
    let size = u32::try_from(compiled.code.len()).expect("small");
    let mut previous_end = 0;
    for function in &compiled.functions {
        assert_eq!(function.offset % 16, 0, "{isa}: function alignment");
        assert!(function.offset >= previous_end, "{isa}: functions overlap");
        previous_end = function.offset + function.len;
        assert!(previous_end <= size);
        assert!(
            function.srclocs.windows(2).all(|w| w[0].0 < w[1].0),
            "{isa}: srclocs sorted"
        );
        for &(at, _) in &function.srclocs {
            assert!(at >= function.offset && at < function.offset + function.len);
        }
    }
    assert!(
        compiled.traps.windows(2).all(|w| w[0].0 <= w[1].0),
        "{isa}: traps sorted"
    );
    assert!(compiled.traps.iter().all(|&(at, _)| at < size));
    for &offset in compiled
        .array_shims
        .iter()
        .chain(&compiled.wasm_to_host)
        .chain([&compiled.entry_trampoline])
    {
        assert_eq!(offset % 16, 0, "{isa}: trampoline alignment");
        assert!(
            offset >= previous_end && offset < size,
            "{isa}: trampolines after functions"
        );
    }
}

fn traps_of(compiled: &CompiledModule) -> Vec<Trap> {
    compiled.traps.iter().map(|&(_, trap)| trap).collect()
}

fn has_trap(compiled: &CompiledModule, trap: Trap) -> bool {
    compiled.traps.iter().any(|&(_, t)| t == trap)
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn empty_module_has_only_the_entry_trampoline() {
    for compiled in compile_both("(module)") {
        assert!(compiled.functions.is_empty());
        assert!(compiled.array_shims.is_empty());
        assert_eq!(compiled.entry_trampoline, 0);
        assert!(!compiled.code.is_empty());
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn control_flow() {
    let wat = r#"
    (module
      (type $pair (func (param i32) (result i32 i32)))
      (func $blocks (param i32) (result i32)
        (block $outer (result i32)
          (block $inner
            (br_if $inner (local.get 0))
            (br $outer (i32.const 1)))
          (i32.const 2)))
      (func $loops (param i32) (result i32) (local i32)
        (loop $again
          (local.set 1 (i32.add (local.get 1) (local.get 0)))
          (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
          (br_if $again (local.get 0)))
        (local.get 1))
      (func $ifs (param i32) (result i32)
        (if (result i32) (local.get 0)
          (then (i32.const 10))
          (else (i32.const 20))))
      (func $if_no_else (param i32) (result i32)
        (local.get 0)
        (if (param i32) (result i32) (local.get 0) (then (i32.const 1) (i32.add))))
      (func $multi (param i32) (result i32 i32)
        (local.get 0)
        (block (type $pair) (i32.const 5)))
      (func $loop_params (param i32) (result i32)
        (local.get 0)
        (loop (param i32) (result i32)
          (i32.const 1) (i32.sub)
          (local.tee 0)
          (br_if 0 (local.get 0))))
      (func $table (param i32) (result i32)
        (block $a (result i32)
          (block $b (result i32)
            (block $c (result i32)
              (br_table $a $b $c $b (i32.const 7) (local.get 0)))
            (return (i32.const 3)))
          (return (i32.const 4))))
      (func $table_empty (param i32)
        (block $a (block $b (br_table $a $b $a (local.get 0)))))
      (func $dead (param i32) (result i32)
        (block $out (result i32)
          (br $out (i32.const 1))
          (block (loop (if (i32.const 0) (then (nop)) (else (unreachable)))))
          (i32.add)
          (drop)
          (i32.const 9)))
      (func $dead_if_arms (param i32) (result i32)
        (if (result i32) (local.get 0)
          (then (return (i32.const 1)))
          (else (unreachable))))
      (func $returns (param i32) (result i32)
        (if (local.get 0) (then (return (i32.const 1))))
        (i32.const 0))
      (func $never_returns (result i32) (unreachable))
      (func $nop (nop) (nop)))
    "#;
    for compiled in compile_both(wat) {
        assert_eq!(compiled.functions.len(), 13);
        assert!(has_trap(&compiled, Trap::Unreachable));
        for function in &compiled.functions {
            assert!(!function.srclocs.is_empty() || function.len < 16);
        }
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn integer_operators() {
    let mut body = String::new();
    for ty in ["i32", "i64"] {
        for op in [
            "add", "sub", "mul", "div_s", "div_u", "rem_s", "rem_u", "and", "or", "xor", "shl",
            "shr_s", "shr_u", "rotl", "rotr",
        ] {
            body.push_str(&alloc::format!(
                "(func (param {ty} {ty}) (result {ty}) ({ty}.{op} (local.get 0) (local.get 1)))\n"
            ));
        }
        for op in [
            "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u",
        ] {
            body.push_str(&alloc::format!(
                "(func (param {ty} {ty}) (result i32) ({ty}.{op} (local.get 0) (local.get 1)))\n"
            ));
        }
        for op in ["clz", "ctz", "popcnt", "extend8_s", "extend16_s"] {
            body.push_str(&alloc::format!(
                "(func (param {ty}) (result {ty}) ({ty}.{op} (local.get 0)))\n"
            ));
        }
        body.push_str(&alloc::format!(
            "(func (param {ty}) (result i32) ({ty}.eqz (local.get 0)))\n"
        ));
        body.push_str(&alloc::format!("(func (result {ty}) ({ty}.const -1))\n"));
    }
    body.push_str("(func (param i64) (result i64) (i64.extend32_s (local.get 0)))\n");
    body.push_str("(func (param i64) (result i32) (i32.wrap_i64 (local.get 0)))\n");
    body.push_str("(func (param i32) (result i64) (i64.extend_i32_s (local.get 0)))\n");
    body.push_str("(func (param i32) (result i64) (i64.extend_i32_u (local.get 0)))\n");
    // Constant divisors, including the ones Cranelift must not fold away.
    body.push_str("(func (param i32) (result i32) (i32.div_s (local.get 0) (i32.const 0)))\n");
    body.push_str("(func (param i32) (result i32) (i32.rem_s (local.get 0) (i32.const -1)))\n");
    body.push_str("(func (param i64) (result i64) (i64.div_u (local.get 0) (i64.const 7)))\n");
    let wat = alloc::format!("(module {body})");
    for compiled in compile_both(&wat) {
        assert!(has_trap(&compiled, Trap::IntegerDivisionByZero));
    }
    // Signed division also checks for overflow; on riscv64 with an explicit trap.
    let [_, riscv] = compile_both(
        "(module (func (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1))))",
    );
    assert!(has_trap(&riscv, Trap::IntegerOverflow));
    assert!(has_trap(&riscv, Trap::IntegerDivisionByZero));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn float_operators() {
    let mut body = String::new();
    for ty in ["f32", "f64"] {
        for op in ["add", "sub", "mul", "div", "min", "max", "copysign"] {
            body.push_str(&alloc::format!(
                "(func (param {ty} {ty}) (result {ty}) ({ty}.{op} (local.get 0) (local.get 1)))\n"
            ));
        }
        for op in ["eq", "ne", "lt", "gt", "le", "ge"] {
            body.push_str(&alloc::format!(
                "(func (param {ty} {ty}) (result i32) ({ty}.{op} (local.get 0) (local.get 1)))\n"
            ));
        }
        for op in ["abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"] {
            body.push_str(&alloc::format!(
                "(func (param {ty}) (result {ty}) ({ty}.{op} (local.get 0)))\n"
            ));
        }
        body.push_str(&alloc::format!(
            "(func (result {ty}) ({ty}.const -0x1.8p-3))\n(func (result {ty}) ({ty}.const nan:0x200))\n"
        ));
    }
    let wat = alloc::format!("(module {body})");
    compile_both(&wat);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn conversions() {
    let mut body = String::new();
    for int in ["i32", "i64"] {
        for float in ["f32", "f64"] {
            for sign in ["s", "u"] {
                for op in ["trunc", "trunc_sat"] {
                    body.push_str(&alloc::format!(
                        "(func (param {float}) (result {int}) ({int}.{op}_{float}_{sign} (local.get 0)))\n"
                    ));
                }
                body.push_str(&alloc::format!(
                    "(func (param {int}) (result {float}) ({float}.convert_{int}_{sign} (local.get 0)))\n"
                ));
            }
        }
    }
    body.push_str("(func (param f64) (result f32) (f32.demote_f64 (local.get 0)))\n");
    body.push_str("(func (param f32) (result f64) (f64.promote_f32 (local.get 0)))\n");
    body.push_str("(func (param f32) (result i32) (i32.reinterpret_f32 (local.get 0)))\n");
    body.push_str("(func (param f64) (result i64) (i64.reinterpret_f64 (local.get 0)))\n");
    body.push_str("(func (param i32) (result f32) (f32.reinterpret_i32 (local.get 0)))\n");
    body.push_str("(func (param i64) (result f64) (f64.reinterpret_i64 (local.get 0)))\n");
    let wat = alloc::format!("(module {body})");
    for compiled in compile_both(&wat) {
        assert!(has_trap(&compiled, Trap::BadConversionToInteger));
        assert!(has_trap(&compiled, Trap::IntegerOverflow));
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn memory_operators() {
    let wat = r#"
    (module
      (memory 1 10)
      (func (param i32) (result i32)
        (i32.add (i32.load (local.get 0)) (i32.load offset=0xffffffff (local.get 0))))
      (func (param i32) (result i64) (i64.load offset=8 align=1 (local.get 0)))
      (func (param i32) (result f32) (f32.load (local.get 0)))
      (func (param i32) (result f64) (f64.load offset=0x7fffffff (local.get 0)))
      (func (param i32) (result i32) (i32.load8_s (local.get 0)))
      (func (param i32) (result i32) (i32.load8_u (local.get 0)))
      (func (param i32) (result i32) (i32.load16_s (local.get 0)))
      (func (param i32) (result i32) (i32.load16_u (local.get 0)))
      (func (param i32) (result i64) (i64.load8_s (local.get 0)))
      (func (param i32) (result i64) (i64.load8_u (local.get 0)))
      (func (param i32) (result i64) (i64.load16_s (local.get 0)))
      (func (param i32) (result i64) (i64.load16_u (local.get 0)))
      (func (param i32) (result i64) (i64.load32_s (local.get 0)))
      (func (param i32) (result i64) (i64.load32_u (local.get 0)))
      (func (param i32 i32 i64 f32 f64)
        (i32.store (local.get 0) (local.get 1))
        (i64.store offset=0x80000000 (local.get 0) (local.get 2))
        (f32.store (local.get 0) (local.get 3))
        (f64.store (local.get 0) (local.get 4))
        (i32.store8 (local.get 0) (local.get 1))
        (i32.store16 (local.get 0) (local.get 1))
        (i64.store8 (local.get 0) (local.get 2))
        (i64.store16 (local.get 0) (local.get 2))
        (i64.store32 (local.get 0) (local.get 2)))
      (func (result i32) (memory.size))
      (func (param i32) (result i32) (memory.grow (local.get 0))))
    "#;
    for compiled in compile_both(wat) {
        let oob = traps_of(&compiled)
            .iter()
            .filter(|&&t| t == Trap::MemoryOutOfBounds)
            .count();
        // Every access (14 load functions, 15 loads, 9 stores) is in the trap table.
        assert!(oob >= 24, "{oob} memory traps");
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn imported_and_shared_memories() {
    let wat = r#"
    (module
      (import "env" "memory" (memory 1))
      (func (param i32) (result i32) (i32.load (local.get 0)))
      (func (result i32) (memory.size))
      (func (param i32) (result i32) (memory.grow (local.get 0))))
    "#;
    compile_both(wat);
    let shared = r#"
    (module
      (memory 1 1 shared)
      (func (param i32) (result i32) (i32.load (local.get 0)))
      (func (result i32) (memory.size)))
    "#;
    let features = WASM2_FEATURES.union(WasmFeatures::THREADS);
    for isa in ISAS {
        let compiled = compile_with(shared, isa, features).expect("shared memory");
        check_invariants(&compiled, isa);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn globals_and_locals() {
    let wat = r#"
    (module
      (import "env" "g" (global $imported (mut i64)))
      (import "env" "c" (global $constant f32))
      (global $counter (mut i32) (i32.const 0))
      (global $pi f64 (f64.const 3.14))
      (global $ref (mut funcref) (ref.null func))
      (func (result i32) (local i32 i64 f32 f64 funcref externref)
        (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
        (global.set $imported (i64.add (global.get $imported) (local.get 1)))
        (drop (f32.add (global.get $constant) (local.get 2)))
        (drop (f64.add (global.get $pi) (local.get 3)))
        (global.set $ref (local.get 4))
        (drop (local.get 5))
        (local.tee 0 (i32.const 4))
        (select (i32.const 1) (i32.const 2))
        (select (result f64) (f64.const 1) (f64.const 2) (i32.const 0))
        (drop)))
    "#;
    compile_both(wat);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn calls() {
    let wat = r#"
    (module
      (type $binary (func (param i32 i32) (result i32)))
      (import "env" "host" (func $host (param i32) (result i32)))
      (table 4 funcref)
      (elem (i32.const 0) $add $sub)
      (func $add (type $binary) (i32.add (local.get 0) (local.get 1)))
      (func $sub (type $binary) (i32.sub (local.get 0) (local.get 1)))
      (func $direct (param i32) (result i32)
        (call $add (local.get 0) (call $host (local.get 0))))
      (func $indirect (param i32) (result i32)
        (call_indirect (type $binary) (i32.const 1) (i32.const 2) (local.get 0)))
      (func $recursive (param i32) (result i32)
        (if (result i32) (local.get 0)
          (then (call $recursive (i32.sub (local.get 0) (i32.const 1))))
          (else (i32.const 0))))
      (func $many (param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64)
                  (result i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 f64)
        (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)
        (local.get 5) (local.get 6) (local.get 7) (local.get 8) (local.get 9) (local.get 19))
      (func $call_many (result i64)
        (call $many (i64.const 0) (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4)
                    (i64.const 5) (i64.const 6) (i64.const 7) (i64.const 8) (i64.const 9)
                    (f64.const 0) (f64.const 1) (f64.const 2) (f64.const 3) (f64.const 4)
                    (f64.const 5) (f64.const 6) (f64.const 7) (f64.const 8) (f64.const 9))
        (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)))
    "#;
    for compiled in compile_both(wat) {
        assert_eq!(compiled.functions.len(), 7);
        for trap in [
            Trap::UndefinedElement,
            Trap::IndirectCallToNull,
            Trap::BadSignature,
            Trap::StackOverflow,
        ] {
            assert!(has_trap(&compiled, trap), "{trap:?} missing");
        }
        // Types: $binary, $host's, $direct's/$indirect's/$recursive's (i32)->i32 shared
        // with $host, $many's, $call_many's.
        assert_eq!(compiled.array_shims.len(), compiled.wasm_to_host.len());
        let host_trap = compiled
            .traps
            .iter()
            .any(|&(at, trap)| trap == Trap::HostError && at > compiled.functions[6].offset);
        assert!(host_trap, "wasm-to-host trampolines check the status");
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn references_and_table_access() {
    let wat = r#"
    (module
      (import "env" "t" (table $imported 1 funcref))
      (table $t 2 funcref)
      (table $e 2 externref)
      (func $f (result i32) (i32.const 1))
      (elem declare func $f)
      (func (result funcref) (ref.func $f))
      (func (result funcref) (ref.null func))
      (func (result externref) (ref.null extern))
      (func (param funcref) (result i32) (ref.is_null (local.get 0)))
      (func (param externref) (result i32) (ref.is_null (local.get 0)))
      (func (param i32) (result funcref) (table.get $t (local.get 0)))
      (func (param i32) (result funcref) (table.get $imported (local.get 0)))
      (func (param i32 funcref) (table.set $t (local.get 0) (local.get 1)))
      (func (param i32 externref) (result externref)
        (table.set $e (local.get 0) (local.get 1))
        (table.get $e (local.get 0)))
      (func (result i32 i32 i32) (table.size $t) (table.size $imported) (table.size $e))
      (func (param funcref funcref i32) (result funcref)
        (select (result funcref) (local.get 0) (local.get 1) (local.get 2))))
    "#;
    for compiled in compile_both(wat) {
        assert!(has_trap(&compiled, Trap::TableOutOfBounds));
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn identical_types_share_trampolines() {
    let wat = r#"
    (module
      (type $a (func (param i32) (result i32)))
      (type $b (func (param i32) (result i32)))
      (type $c (func (param f32)))
      (func (type $a) (local.get 0))
      (func (type $b) (local.get 0))
      (func (type $c)))
    "#;
    for compiled in compile_both(wat) {
        assert_eq!(compiled.array_shims.len(), 3);
        assert_eq!(compiled.array_shims[0], compiled.array_shims[1]);
        assert_ne!(compiled.array_shims[0], compiled.array_shims[2]);
        assert_eq!(compiled.wasm_to_host[0], compiled.wasm_to_host[1]);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn srclocs_point_into_the_function_bodies() {
    let wat = r#"
    (module
      (func (param i32) (result i32)
        (i32.add (local.get 0) (i32.const 1)))
      (func (param i32) (result i32)
        (i32.div_s (local.get 0) (local.get 0))))
    "#;
    let wasm = wat::parse_str(wat).expect("valid text");
    let module = translate(&wasm, WASM2_FEATURES).expect("valid");
    let shape = VMShape::for_module(&module).expect("layout");
    for isa in ISAS {
        let compiled = compile_module(isa, CompileOptions::default(), &module, &wasm, &shape)
            .expect("compiles");
        for (function, body) in compiled.functions.iter().zip(&module.function_bodies) {
            assert!(!function.srclocs.is_empty(), "{isa}: no srclocs");
            for &(_, wasm_offset) in &function.srclocs {
                assert!(
                    body.contains(&(wasm_offset as usize)),
                    "{isa}: {wasm_offset} outside {body:?}"
                );
            }
        }
        // The division's trap maps back to the `i32.div_s` byte.
        let div = module.function_bodies[1]
            .clone()
            .rfind(|&at| wasm[at] == 0x6d)
            .expect("an i32.div_s opcode");
        let (trap_at, _) = compiled
            .traps
            .iter()
            .find(|&&(_, trap)| trap == Trap::IntegerDivisionByZero)
            .expect("division trap");
        assert_eq!(
            compiled.wasm_offset_at(*trap_at),
            Some(u32::try_from(div).expect("small"))
        );
        assert_eq!(
            compiled.function_at(*trap_at).map(|(index, _)| index),
            Some(1)
        );
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn bulk_operators_call_builtins_and_trap_on_their_status() {
    let wat = r#"
(module
  (memory 1)
  (table $f 2 funcref)
  (table $e 2 externref)
  (func $g)
  (elem $passive func $g)
  (elem declare func $g)
  (data $bytes "abc")
  (func (export "bulk") (param i32 externref) (result i32)
    (memory.copy (local.get 0) (i32.const 1) (i32.const 2))
    (memory.fill (local.get 0) (i32.const 255) (i32.const 2))
    (memory.init $bytes (local.get 0) (i32.const 0) (i32.const 3))
    (data.drop $bytes)
    (table.copy $f $f (i32.const 0) (i32.const 1) (i32.const 1))
    (table.fill $e (i32.const 0) (local.get 1) (i32.const 2))
    (table.init $f $passive (i32.const 0) (i32.const 0) (i32.const 1))
    (elem.drop $passive)
    (drop (table.grow $e (local.get 1) (i32.const 1)))
    (table.grow $f (ref.func $g) (local.get 0))))
"#;
    for compiled in compile_both(wat) {
        let bulk = &compiled.functions[1];
        let count = |trap| {
            compiled
                .traps
                .iter()
                .filter(|&&(at, recorded)| {
                    recorded == trap && at >= bulk.offset && at < bulk.offset + bulk.len
                })
                .count()
        };
        // One status check per bulk operation that can fail.
        assert!(count(Trap::MemoryOutOfBounds) >= 3);
        assert!(count(Trap::TableOutOfBounds) >= 3);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn unsupported_operators_are_reported() {
    // Fixed-width SIMD is supported (`simd`); its relaxed successor and tail calls are not.
    let cases = [
        (
            "(module (func (result v128)
               (i8x16.relaxed_swizzle (v128.const i64x2 0 0) (v128.const i64x2 0 0))))",
            WASM2_FEATURES.union(WasmFeatures::RELAXED_SIMD),
            "I8x16RelaxedSwizzle",
        ),
        (
            "(module (func (return_call 0)))",
            WASM2_FEATURES.union(WasmFeatures::TAIL_CALL),
            "ReturnCall",
        ),
    ];
    for (wat, features, what) in cases {
        for isa in ISAS {
            match compile_with(wat, isa, features) {
                Err(CompileError::Unsupported(message)) => {
                    assert!(
                        message.contains(what),
                        "{isa}: `{message}` does not name {what}"
                    );
                }
                other => panic!("{isa}: {wat}: expected Unsupported, got {other:?}"),
            }
        }
    }
}

#[test]
fn unsupported_blocks_in_dead_code_are_reported() {
    let wat = "(module (func (block (br 0) (try_table (nop)) (drop (i32.const 0)))))";
    let features = WASM2_FEATURES.union(WasmFeatures::EXCEPTIONS);
    for isa in ISAS {
        match compile_with(wat, isa, features) {
            Err(CompileError::Unsupported(message)) => assert!(message.contains("TryTable")),
            other => panic!("{isa}: expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn errors_display_their_cause() {
    let error = CompileError::Unsupported("operator V128Load".into());
    assert_eq!(
        alloc::format!("{error}"),
        "unsupported by the compiler: operator V128Load"
    );
}

#[test]
fn a_mismatched_layout_is_refused() {
    let wasm = wat::parse_str("(module (global (mut i32) (i32.const 0)))").expect("text");
    let module = translate(&wasm, WASM2_FEATURES).expect("valid");
    let other = VMShape::for_module(&ModuleInfo::default()).expect("layout");
    assert!(matches!(
        compile_module(
            Isa::X86_64,
            CompileOptions::default(),
            &module,
            &wasm,
            &other
        ),
        Err(CompileError::Invalid(_))
    ));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn deep_nesting_and_many_locals() {
    let mut body = String::new();
    for _ in 0..200 {
        body.push_str(
            "(block (result i32) (loop (result i32) (if (result i32) (local.get 0) (then ",
        );
    }
    body.push_str("(local.get 1)");
    for _ in 0..200 {
        body.push_str(") (else (i32.const 0)))))");
    }
    let wat = alloc::format!(
        "(module (func (param i32) (result i32) (local i32) (local {}) {body}))",
        "i64 ".repeat(1000)
    );
    compile_both(&wat);
}

/// A module of `count` functions of several shapes that call each other; those at
/// `failing` use tail calls, which the compiler does not implement.
fn many_functions(count: usize, failing: &[usize]) -> String {
    let mut wat = String::from("(module (memory 1) (table 4 funcref)");
    for index in 0..count {
        let body = match index % 4 {
            _ if failing.contains(&index) => "(return_call 0 (local.get 0))".into(),
            0 => alloc::format!("(i32.add (local.get 0) (i32.const {index}))"),
            1 => alloc::format!(
                "(loop $l (br_if $l (i32.lt_u (local.tee 0 (i32.add (local.get 0) (i32.const 1))) (i32.const {index})))) (i32.load (local.get 0))"
            ),
            2 => String::from(
                "(call_indirect (param i32) (result i32) (local.get 0) (i32.rem_u (local.get 0) (i32.const 4)))",
            ),
            _ => alloc::format!(
                "(call {}  (i32.div_s (local.get 0) (i32.const 3)))",
                index / 2
            ),
        };
        wat.push_str(&alloc::format!("(func (param i32) (result i32) {body})"));
    }
    wat.push(')');
    wat
}

/// The same module compiled by one CPU and by several threads at once (each taking
/// functions as they come, so which thread compiles which function varies from run to
/// run) gives identical code, byte for byte, and identical tables.
#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn parallel_compile_is_identical_to_sequential() {
    let wasm = wat::parse_str(many_functions(400, &[])).expect("valid text");
    let module = translate(&wasm, WASM2_FEATURES).expect("valid module");
    let shape = VMShape::for_module(&module).expect("layout");
    for isa in ISAS {
        let sequential = compile_module(isa, CompileOptions::default(), &module, &wasm, &shape)
            .expect("sequential compile");
        for threads in [2, 4] {
            let job = std::sync::Arc::new(
                CompileJob::new(
                    isa,
                    IsaFeatures::WITH_128_BIT_VECTORS,
                    CompileOptions::default(),
                    CompileInputs {
                        module: module.clone(),
                        shape: shape.clone(),
                        wasm: wasm.clone().into(),
                    },
                )
                .expect("job"),
            );
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let job = std::sync::Arc::clone(&job);
                    std::thread::spawn(move || job.work())
                })
                .collect();
            for handle in handles {
                handle.join().expect("worker");
            }
            let job = std::sync::Arc::try_unwrap(job).ok().expect("workers done");
            let (parallel, _) = job.finish(None).expect("parallel compile");
            assert_eq!(parallel.code, sequential.code, "{isa}, {threads} threads");
            assert_eq!(parallel, sequential, "{isa}, {threads} threads");
        }
    }
}

/// A failing function stops a parallel compile with the error a sequential one gives:
/// that of the lowest-numbered failing function.
#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn parallel_compile_reports_the_first_failure() {
    let wasm = wat::parse_str(many_functions(300, &[150, 151, 290])).expect("valid text");
    let module =
        translate(&wasm, WASM2_FEATURES.union(WasmFeatures::TAIL_CALL)).expect("valid module");
    let shape = VMShape::for_module(&module).expect("layout");
    let features = IsaFeatures::BASE;
    let sequential = compile_module_for(
        Isa::Riscv64,
        features,
        CompileOptions::default(),
        &module,
        &wasm,
        &shape,
    );
    let job = std::sync::Arc::new(
        CompileJob::new(
            Isa::Riscv64,
            features,
            CompileOptions::default(),
            CompileInputs {
                module: module.clone(),
                shape: shape.clone(),
                wasm: wasm.clone().into(),
            },
        )
        .expect("job"),
    );
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let job = std::sync::Arc::clone(&job);
            std::thread::spawn(move || job.work())
        })
        .collect();
    for handle in handles {
        handle.join().expect("worker");
    }
    let job = std::sync::Arc::try_unwrap(job).ok().expect("workers done");
    let parallel = job.finish(None).map(|(compiled, _)| compiled);
    assert!(
        matches!(&sequential, Err(CompileError::Unsupported(message)) if message.contains("ReturnCall")),
        "{sequential:?}"
    );
    assert_eq!(parallel, sequential);
}

/// Compiles `wasm` for `isa` on one CPU, with `cache` for the trampolines.
fn compile_cached(wasm: &[u8], isa: Isa, cache: Option<&TrampolineCache>) -> CompiledModule {
    let module = translate(wasm, WASM2_FEATURES).expect("valid module");
    let shape = VMShape::for_module(&module).expect("layout");
    let job = CompileJob::new(
        isa,
        IsaFeatures::WITH_128_BIT_VECTORS,
        CompileOptions::default(),
        CompileInputs {
            module,
            shape,
            wasm: wasm.into(),
        },
    )
    .expect("job");
    job.finish(cache).expect("compile").0
}

/// Trampolines taken from an engine's cache (compiled for an earlier module) give the
/// blob a compile without the cache gives, byte for byte; the cache keeps one pair per
/// distinct type; and a cache made for one ISA is not used for another.
#[test]
#[cfg_attr(
    miri,
    ignore = "compiles with Cranelift: 20 s to minutes a test under Miri"
)]
fn cached_trampolines_are_identical_to_fresh_ones() {
    let first = wat::parse_str(
        "(module (func (param i32) (result i32) local.get 0)
                 (func (param f64 i64) (result i32 f32) i32.const 1 f32.const 2))",
    )
    .expect("valid text");
    let second = wat::parse_str(
        "(module (type (func (param f64 i64) (result i32 f32)))
                 (import \"m\" \"f\" (func (param i64)))
                 (func (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))",
    )
    .expect("valid text");
    for isa in ISAS {
        let cache = TrampolineCache::new();
        compile_cached(&first, isa, Some(&cache));
        assert_eq!(cache.types(), 2, "{isa}");
        let cached = compile_cached(&second, isa, Some(&cache));
        assert_eq!(cache.types(), 3, "{isa}: one new type");
        let fresh = compile_cached(&second, isa, None);
        assert_eq!(cached, fresh, "{isa}");
        check_invariants(&cached, isa);
    }
    let cache = TrampolineCache::new();
    compile_cached(&first, Isa::X86_64, Some(&cache));
    let riscv = compile_cached(&second, Isa::Riscv64, Some(&cache));
    assert_eq!(riscv, compile_cached(&second, Isa::Riscv64, None));
    assert_eq!(
        cache.types(),
        2,
        "the riscv64 compile did not use the x86-64 cache"
    );
}
