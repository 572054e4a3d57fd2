//! Parallel compilation: a module large enough to be compiled on every CPU gives the same
//! results whatever the number of CPUs, hosted and in the RISC-V kernel under QEMU.
//!
//! (That the code bytes themselves are identical to a sequential compile is checked in
//! kernel-core, `parallel_compile_is_identical_to_sequential`; here every function runs,
//! wherever it was compiled.)

mod programs;

use std::process::Output;

use programs::{scratch, sim, write};

/// A module of `count` functions, each different, and an export `check` that calls every
/// one and folds their results into one number: a function compiled wrongly on any CPU
/// changes it.
fn many_functions(count: u32) -> String {
    let mut wat = String::from("(module (memory 1)\n");
    for index in 0..count {
        let body = match index % 3 {
            0 => format!("(i64.add (i64.mul (local.get 0) (i64.const {})) (i64.const {index}))", index * 2 + 1),
            1 => format!(
                "(local $i i32) (local $s i64) (local.set $s (local.get 0))
                 (loop $l (local.set $s (i64.xor (i64.rotl (local.get $s) (i64.const 7)) (i64.const {index})))
                   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const {}))))
                 (local.get $s)",
                index % 7 + 1
            ),
            _ => format!(
                "(i64.store (i32.const {}) (local.get 0)) (i64.sub (i64.load (i32.const {})) (i64.const {index}))",
                (index % 64) * 8,
                (index % 64) * 8
            ),
        };
        wat.push_str(&format!(
            "(func $f{index} (param i64) (result i64) {body})\n"
        ));
    }
    wat.push_str("(func (export \"check\") (result i64) (local $acc i64)\n");
    for index in 0..count {
        wat.push_str(&format!(
            "(local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) (call $f{index} (local.get $acc))))\n"
        ));
    }
    wat.push_str("(local.get $acc)))\n");
    wat
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn checked(output: &Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Hosted: one CPU and two give the same result.
#[test]
fn a_large_module_runs_the_same_on_one_and_two_cpus() {
    let dir = scratch("compile-hosted");
    let module = write(&dir, "many", &many_functions(1200));
    let path = module.to_str().unwrap();
    let one = checked(
        &sim(&["run", "--cpus", "1", "--invoke", "check", path]),
        "1 CPU",
    );
    let two = checked(
        &sim(&["run", "--cpus", "2", "--invoke", "check", path]),
        "2 CPUs",
    );
    assert!(!one.trim().is_empty());
    assert_eq!(one, two);
}

/// The kernel image.
fn kernel() -> String {
    programs::riscv_kernel().to_owned()
}

/// Under QEMU: one hart and four give the hosted result, and a very large function
/// computes what it should.
#[test]
fn a_large_module_runs_the_same_on_one_and_four_harts() {
    let dir = scratch("compile-qemu");
    let module = write(&dir, "many", &many_functions(600));
    let path = module.to_str().unwrap();
    let hosted = checked(
        &sim(&["run", "--cpus", "1", "--invoke", "check", path]),
        "hosted",
    );
    let kernel = kernel();
    for cpus in ["1", "4"] {
        let output = sim(&[
            "qemu",
            "--kernel",
            &kernel,
            "--timeout",
            "900",
            "run",
            "--cpus",
            cpus,
            "--invoke",
            "check",
            path,
        ]);
        assert_eq!(
            checked(&output, &format!("{cpus} harts")),
            hosted,
            "{cpus} harts"
        );
    }
    // A very large function, compiled with the single-pass register allocator.
    let (locals, stack) = (20_000, 2_000);
    let module = write(&dir, "spilled", &spilled(locals, stack));
    let output = sim(&[
        "qemu",
        "--kernel",
        &kernel,
        "--timeout",
        "900",
        "run",
        "--invoke",
        "f",
        module.to_str().unwrap(),
        "10",
    ]);
    assert_eq!(
        checked(&output, "spilled").trim(),
        spilled_sum(locals, stack, 10).to_string()
    );
}

/// A function keeping `locals` locals and `stack` operand-stack values live across its
/// recursive call, then returning their sum: with its body over 64 KiB it is compiled
/// with the single-pass register allocator.
fn spilled(locals: u32, stack: u32) -> String {
    let mut wat = format!(
        "(module (func $f (export \"f\") (param $d i32) (result i32) (local {})\n",
        "i32 ".repeat(locals as usize)
    );
    for index in 0..locals {
        wat.push_str(&format!(
            "(local.set {} (i32.add (local.get 0) (i32.const {index})))\n",
            index + 1
        ));
    }
    for index in 0..stack {
        wat.push_str(&format!(
            "(i32.mul (local.get 0) (i32.const {}))\n",
            index * 3
        ));
    }
    wat.push_str(
        "(if (i32.gt_s (local.get 0) (i32.const 0))
           (then (drop (call $f (i32.sub (local.get 0) (i32.const 1))))))\n",
    );
    wat.push_str(&"i32.add\n".repeat(stack as usize - 1));
    for index in 0..locals {
        wat.push_str(&format!("(local.get {}) i32.add\n", index + 1));
    }
    wat.push_str("))\n");
    wat
}

/// The sum `spilled(locals, stack)` returns for `d`.
fn spilled_sum(locals: u32, stack: u32, d: u32) -> i32 {
    let mut sum = 0u32;
    for index in 0..locals {
        sum = sum.wrapping_add(d.wrapping_add(index));
    }
    for index in 0..stack {
        sum = sum.wrapping_add(d.wrapping_mul(index * 3));
    }
    sum as i32
}

/// A very large function (compiled with the single-pass register allocator) computes
/// what it should, hosted.
#[test]
fn a_very_large_function_keeps_its_values_across_calls() {
    let dir = scratch("compile-large");
    let (locals, stack) = (20_000, 2_000);
    let module = write(&dir, "spilled", &spilled(locals, stack));
    let output = sim(&["run", "--invoke", "f", module.to_str().unwrap(), "10"]);
    assert_eq!(
        checked(&output, "spilled").trim(),
        spilled_sum(locals, stack, 10).to_string()
    );
}
