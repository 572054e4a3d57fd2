//! A large generated module for the compile rows: `count` functions shaped like compiled C
//! (locals, a counting loop with loads and stores, integer and float arithmetic, a branch
//! table, calls to earlier functions and through a table), about 211 bytes each: 3 000
//! functions make a module of about 634 KB.

use std::fmt::Write as _;

/// The module's WebAssembly binary. With `start`, it also imports `k23.print` and exports
/// a `_start` that prints `!` at once (for timing a boot to the first instruction).
///
/// # Panics
/// Never for the text it writes (a bug otherwise).
#[must_use]
pub fn large_module(count: usize, start: bool) -> Vec<u8> {
    let mut text = String::from("(module\n  (type $t (func (param i32 i32) (result i32)))\n");
    if start {
        text.push_str(
            "  (import \"k23\" \"print\" (func $print (param i32 i32) (result i32)))\n  (func (export \"_start\") (drop (call $print (i32.const 0x10000) (i32.const 1))))\n  (data (i32.const 0x10000) \"!\")\n",
        );
    }
    text.push_str("  (memory 16)\n  (table 64 funcref)\n  (global $g (mut i32) (i32.const 0))\n");
    for index in 0..count {
        let k = index as u32;
        let callee = if index == 0 { 0 } else { (k * 7919) % k };
        let callee_call = if index == 0 {
            "(local.get $a)".to_string()
        } else {
            format!("(call $f{callee} (local.get $a) (i32.const {}))", k % 13)
        };
        writeln!(
            text,
            r#"  (func $f{index} (export "f{index}") (type $t) (param $a i32) (param $b i32) (result i32) (local $i i32) (local $acc i32) (local $x f64)
    (local.set $acc (i32.const {c0}))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $b)))
        (local.set $acc (i32.add (local.get $acc)
          (i32.mul (i32.load offset={off} (i32.and (i32.shl (local.get $i) (i32.const 2)) (i32.const 0xfffc))) (i32.const {c1}))))
        (i32.store offset={off2} (i32.and (i32.add (local.get $i) (i32.const {c2})) (i32.const 0xfffc)) (local.get $acc))
        (local.set $x (f64.add (local.get $x) (f64.convert_i32_s (local.get $acc))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 (i32.and (local.get $a) (i32.const 3))))
      (local.set $acc (i32.xor (local.get $acc) (i32.const {c3}))))
      (local.set $acc (i32.rotl (local.get $acc) (i32.const {c4}))))
    (if (i32.gt_s (local.get $acc) (i32.const {c5}))
      (then (global.set $g (i32.add (global.get $g) {callee_call}))))
    (if (i32.eqz (i32.and (local.get $a) (i32.const 255)))
      (then (local.set $acc (i32.add (local.get $acc)
        (call_indirect (type $t) (local.get $acc) (i32.const 1) (i32.and (local.get $a) (i32.const 63)))))))
    (local.set $acc (i32.xor (local.get $acc) (i32.const {c7})))
    (global.set $g (i32.wrap_i64 (i64.mul (i64.extend_i32_u (local.get $acc)) (i64.const {c6}))))
    (i32.add (local.get $acc) (i32.trunc_f64_s (f64.min (local.get $x) (f64.const 1e9)))))"#,
            c0 = k.wrapping_mul(2654435761) >> 8,
            c1 = k % 97 + 3,
            off = (k % 64) * 4,
            off2 = (k % 32) * 8,
            c2 = k % 251,
            c3 = k.wrapping_mul(40503),
            c6 = k.wrapping_mul(2246822519) >> 4,
            c7 = k % 64,
            c4 = k % 31 + 1,
            c5 = k.wrapping_mul(977) & 0xfffff,
        )
        .expect("writing to a string");
    }
    text.push_str("  (elem (i32.const 0)");
    for index in 0..64.min(count) {
        write!(text, " $f{index}").expect("writing to a string");
    }
    text.push_str("))\n");
    let wasm = wat::parse_str(&text).expect("the generated module parses");
    without_names(&wasm)
}

/// `wasm` without its `name` custom section (the text's `$` names), as compilers emit
/// release builds.
fn without_names(wasm: &[u8]) -> Vec<u8> {
    let mut out = wasm[..8].to_vec();
    let mut at = 8;
    while at < wasm.len() {
        let start = at;
        let id = wasm[at];
        at += 1;
        let (size, width) = leb_u32(&wasm[at..]);
        at += width;
        let end = at + size as usize;
        let (name_len, name_width) = leb_u32(&wasm[at..]);
        let is_names =
            id == 0 && &wasm[at + name_width..at + name_width + name_len as usize] == b"name";
        if !is_names {
            out.extend_from_slice(&wasm[start..end]);
        }
        at = end;
    }
    out
}

/// An unsigned LEB128 number and its width in bytes.
fn leb_u32(bytes: &[u8]) -> (u32, usize) {
    let mut value = 0u32;
    for (index, byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return (value, index + 1);
        }
    }
    (value, 5)
}
