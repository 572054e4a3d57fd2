//! The JIT runtime on the hosted HAL: every trap kind with its spec message and backtrace,
//! traps deep in recursion and across instances, memory at its exact bounds before and
//! after growth, host functions, large modules, and that a store stays usable after any
//! trap.

use kernel_core::wasm::abi::counted_stack_budget;
use kernel_core::wasm::compile::stack_cost::frame_cost;
use kernel_core::wasm::env::{FuncType, ValType, WASM2_FEATURES};
use kernel_core::wasm::runtime::{CallError, Extern, Func, InstanceId, Module, Store, Val};
use kernel_core::wasm::trap::Trap;
use tests::hosted_engine;

type HostedStore = Store<'static, hal_hosted::HostedHal>;

fn instantiate(store: &mut HostedStore, text: &str, imports: &[Extern]) -> InstanceId {
    let bytes = wat::parse_str(text).expect("test module text");
    let module = Module::new(hosted_engine(), &bytes, WASM2_FEATURES).expect("module loads");
    store
        .instantiate(&module, imports)
        .expect("module instantiates")
}

fn func(store: &HostedStore, instance: InstanceId, name: &str) -> Func {
    match store.export(instance, name) {
        Some(Extern::Func(func)) => func,
        other => panic!("export {name}: {other:?}"),
    }
}

fn call(
    store: &mut HostedStore,
    instance: InstanceId,
    name: &str,
    args: &[Val],
) -> Result<Vec<Val>, CallError> {
    let func = func(store, instance, name);
    store.call(func, args)
}

#[track_caller]
fn expect_trap(result: Result<Vec<Val>, CallError>, expected: Trap) -> Vec<String> {
    match result {
        Err(CallError::Trap {
            trap, backtrace, ..
        }) => {
            assert_eq!(trap, expected);
            assert!(!backtrace.is_empty(), "a trap comes with a backtrace");
            backtrace.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected trap {expected:?}, got {other:?}"),
    }
}

const TRAPS: &str = r#"
(module $traps
  (type $ii (func (param i32) (result i32)))
  (type $v (func))
  (memory 1)
  (table 2 funcref)
  (elem (i32.const 0) $identity)
  (func $identity (type $ii) (local.get 0))
  (func (export "unreachable") (unreachable))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32) (i32.store (local.get 0) (i32.const 1)))
  (func (export "load_offset") (param i32) (result i32) (i32.load offset=4294967295 (local.get 0)))
  (func (export "call_indirect") (param i32) (result i32)
    (call_indirect (type $ii) (i32.const 7) (local.get 0)))
  (func (export "call_indirect_v") (param i32) (call_indirect (type $v) (local.get 0)))
  (func (export "div_s") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "rem_u64") (param i64 i64) (result i64) (i64.rem_u (local.get 0) (local.get 1)))
  (func (export "rem_s") (param i32 i32) (result i32) (i32.rem_s (local.get 0) (local.get 1)))
  (func (export "trunc") (param f64) (result i32) (i32.trunc_f64_s (local.get 0)))
  (func $recurse (export "recurse") (param i32) (result i32)
    (i32.add (i32.const 1) (call $recurse (local.get 0))))
  (func $down (param i32)
    (if (i32.eqz (local.get 0)) (then (unreachable)))
    (call $down (i32.sub (local.get 0) (i32.const 1))))
  (func (export "deep_unreachable") (param i32) (call $down (local.get 0)))
  (func (export "ok") (result i32) (i32.const 42))
)"#;

#[test]
fn every_trap_kind_has_its_spec_message() {
    let mut store = Store::new(hosted_engine());
    let traps = instantiate(&mut store, TRAPS, &[]);
    let cases: Vec<(&str, Vec<Val>, Trap)> = vec![
        ("unreachable", vec![], Trap::Unreachable),
        ("load", vec![Val::I32(65536)], Trap::MemoryOutOfBounds),
        ("load", vec![Val::I32(-1)], Trap::MemoryOutOfBounds),
        ("store", vec![Val::I32(65533)], Trap::MemoryOutOfBounds),
        ("load_offset", vec![Val::I32(-1)], Trap::MemoryOutOfBounds),
        ("call_indirect", vec![Val::I32(2)], Trap::UndefinedElement),
        ("call_indirect", vec![Val::I32(1)], Trap::IndirectCallToNull),
        ("call_indirect_v", vec![Val::I32(0)], Trap::BadSignature),
        (
            "div_s",
            vec![Val::I32(1), Val::I32(0)],
            Trap::IntegerDivisionByZero,
        ),
        (
            "div_s",
            vec![Val::I32(i32::MIN), Val::I32(-1)],
            Trap::IntegerOverflow,
        ),
        (
            "rem_u64",
            vec![Val::I64(1), Val::I64(0)],
            Trap::IntegerDivisionByZero,
        ),
        (
            "trunc",
            vec![Val::F64(f64::NAN.to_bits())],
            Trap::BadConversionToInteger,
        ),
        (
            "trunc",
            vec![Val::F64(3e9f64.to_bits())],
            Trap::IntegerOverflow,
        ),
        ("recurse", vec![Val::I32(0)], Trap::StackOverflow),
    ];
    for (name, args, expected) in cases {
        let frames = expect_trap(call(&mut store, traps, name, &args), expected);
        assert!(frames[0].starts_with("traps!"), "{name}: {frames:?}");
        // The store stays usable after every trap.
        assert_eq!(call(&mut store, traps, "ok", &[]).unwrap(), [Val::I32(42)]);
    }
    assert_eq!(Trap::StackOverflow.message(), "call stack exhausted");
    // Not a trap: the spec defines i32.rem_s(MIN, -1) = 0.
    assert_eq!(
        call(
            &mut store,
            traps,
            "rem_s",
            &[Val::I32(i32::MIN), Val::I32(-1)]
        )
        .unwrap(),
        [Val::I32(0)]
    );
    assert_eq!(
        call(&mut store, traps, "call_indirect", &[Val::I32(0)]).unwrap(),
        [Val::I32(7)]
    );
}

#[test]
fn traps_deep_in_recursion_unwind_to_the_caller() {
    let mut store = Store::new(hosted_engine());
    let traps = instantiate(&mut store, TRAPS, &[]);
    for depth in [0, 10, 1000, 5000] {
        let frames = expect_trap(
            call(&mut store, traps, "deep_unreachable", &[Val::I32(depth)]),
            Trap::Unreachable,
        );
        assert!(frames[0].contains("down"), "{frames:?}");
        assert!(
            frames.len() >= (depth as usize + 1).min(64),
            "{} frames for depth {depth}",
            frames.len()
        );
    }
    // Runaway recursion many times in a row never brings the process down.
    for _ in 0..50 {
        expect_trap(
            call(&mut store, traps, "recurse", &[Val::I32(0)]),
            Trap::StackOverflow,
        );
    }
    assert_eq!(call(&mut store, traps, "ok", &[]).unwrap(), [Val::I32(42)]);
}

#[test]
fn traps_cross_instances_with_both_in_the_backtrace() {
    let mut store = Store::new(hosted_engine());
    let callee = instantiate(
        &mut store,
        r#"(module $callee (func (export "fail") (param i32) (result i32) (i32.div_u (i32.const 1) (local.get 0))))"#,
        &[],
    );
    let fail = func(&store, callee, "fail");
    let caller = instantiate(
        &mut store,
        r#"(module $caller
            (import "callee" "fail" (func $fail (param i32) (result i32)))
            (func $middle (param i32) (result i32) (call $fail (local.get 0)))
            (func (export "run") (param i32) (result i32) (call $middle (local.get 0))))"#,
        &[Extern::Func(fail)],
    );
    assert_eq!(
        call(&mut store, caller, "run", &[Val::I32(1)]).unwrap(),
        [Val::I32(1)]
    );
    let frames = expect_trap(
        call(&mut store, caller, "run", &[Val::I32(0)]),
        Trap::IntegerDivisionByZero,
    );
    assert!(frames[0].starts_with("callee!"), "{frames:?}");
    assert!(
        frames
            .iter()
            .any(|frame| frame.starts_with("caller!middle")),
        "{frames:?}"
    );
}

#[test]
fn memory_bounds_are_exact_before_and_after_growth() {
    let mut store = Store::new(hosted_engine());
    let memory = instantiate(
        &mut store,
        r#"(module
            (memory (export "memory") 1 3)
            (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
            (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
            (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
            (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
            (func (export "size") (result i32) (memory.size)))"#,
        &[],
    );
    let page = 65536;
    assert_eq!(
        call(&mut store, memory, "load", &[Val::I32(page - 4)]).unwrap(),
        [Val::I32(0)]
    );
    assert_eq!(
        call(&mut store, memory, "load8", &[Val::I32(page - 1)]).unwrap(),
        [Val::I32(0)]
    );
    expect_trap(
        call(&mut store, memory, "load", &[Val::I32(page - 3)]),
        Trap::MemoryOutOfBounds,
    );
    expect_trap(
        call(&mut store, memory, "load8", &[Val::I32(page)]),
        Trap::MemoryOutOfBounds,
    );
    call(
        &mut store,
        memory,
        "store",
        &[Val::I32(page - 4), Val::I32(0x1234_5678)],
    )
    .unwrap();

    assert_eq!(
        call(&mut store, memory, "grow", &[Val::I32(1)]).unwrap(),
        [Val::I32(1)]
    );
    assert_eq!(
        call(&mut store, memory, "size", &[]).unwrap(),
        [Val::I32(2)]
    );
    assert_eq!(
        call(&mut store, memory, "load", &[Val::I32(page - 4)]).unwrap(),
        [Val::I32(0x1234_5678)]
    );
    // Bytes 56 34 12 of the stored word, then the first byte of the new page.
    assert_eq!(
        call(&mut store, memory, "load", &[Val::I32(page - 3)]).unwrap(),
        [Val::I32(0x0012_3456)]
    );
    assert_eq!(
        call(&mut store, memory, "load", &[Val::I32(2 * page - 4)]).unwrap(),
        [Val::I32(0)]
    );
    expect_trap(
        call(&mut store, memory, "load", &[Val::I32(2 * page - 3)]),
        Trap::MemoryOutOfBounds,
    );

    // Past the declared maximum of 3 pages, growth fails with -1 and changes nothing.
    assert_eq!(
        call(&mut store, memory, "grow", &[Val::I32(2)]).unwrap(),
        [Val::I32(-1)]
    );
    assert_eq!(
        call(&mut store, memory, "grow", &[Val::I32(1)]).unwrap(),
        [Val::I32(2)]
    );
    assert_eq!(
        call(&mut store, memory, "grow", &[Val::I32(0)]).unwrap(),
        [Val::I32(3)]
    );
    expect_trap(
        call(&mut store, memory, "load", &[Val::I32(3 * page)]),
        Trap::MemoryOutOfBounds,
    );

    let Some(Extern::Memory(id)) = store.export(memory, "memory") else {
        panic!("memory export")
    };
    let data = store.memory_data(id).unwrap();
    assert_eq!(data.len(), 3 * page as usize);
    assert_eq!(
        &data[page as usize - 4..page as usize],
        &0x1234_5678u32.to_le_bytes()
    );
}

#[test]
fn host_functions_are_called_and_their_failures_are_traps() {
    let mut store = Store::new(hosted_engine());
    let ty = FuncType {
        params: Box::new([ValType::I32, ValType::I64]),
        results: Box::new([ValType::I64]),
    };
    let host = store.new_host_func(
        ty,
        Box::new(|_, args, results| match args {
            [Val::I32(a), Val::I64(b)] if *a >= 0 => {
                results[0] = Val::I64(i64::from(*a) * b);
                Ok(())
            }
            _ => Err(String::from("negative factor")),
        }),
    );
    let user = instantiate(
        &mut store,
        r#"(module $user
            (import "host" "mul" (func $mul (param i32 i64) (result i64)))
            (func (export "twice") (param i32 i64) (result i64)
              (i64.add (call $mul (local.get 0) (local.get 1)) (call $mul (local.get 0) (local.get 1)))))"#,
        &[Extern::Func(host)],
    );
    assert_eq!(
        call(&mut store, user, "twice", &[Val::I32(3), Val::I64(7)]).unwrap(),
        [Val::I64(42)]
    );
    match call(&mut store, user, "twice", &[Val::I32(-1), Val::I64(7)]) {
        Err(CallError::Trap {
            trap: Trap::HostError,
            detail,
            ..
        }) => {
            assert_eq!(detail.as_deref(), Some("negative factor"));
        }
        other => panic!("expected a host error, got {other:?}"),
    }
    assert_eq!(
        store.call(host, &[Val::I32(2), Val::I64(5)]).unwrap(),
        [Val::I64(10)]
    );
    assert!(matches!(
        store.call(host, &[Val::I32(2)]),
        Err(CallError::BadArguments(_))
    ));
}

#[test]
fn thousands_of_functions_compile_and_call_each_other() {
    let count = 3000;
    let mut text = String::from("(module\n(func $f0 (param i32) (result i32) (local.get 0))\n");
    for index in 1..count {
        text.push_str(&format!(
            "(func $f{index} (param i32) (result i32) (call $f{} (i32.add (local.get 0) (i32.const 1))))\n",
            index - 1
        ));
    }
    text.push_str(&format!("(export \"last\" (func $f{}))\n)", count - 1));
    let mut store = Store::new(hosted_engine());
    let module = instantiate(&mut store, &text, &[]);
    assert_eq!(
        call(&mut store, module, "last", &[Val::I32(0)]).unwrap(),
        [Val::I32(count - 1)]
    );
}

#[test]
fn unlinkable_and_failing_instantiations_are_errors() {
    let mut store = Store::new(hosted_engine());
    let bytes = wat::parse_str(r#"(module (import "m" "f" (func (param i32))))"#).unwrap();
    let module = Module::new(hosted_engine(), &bytes, WASM2_FEATURES).unwrap();
    assert!(store.instantiate(&module, &[]).is_err());
    let wrong = store.new_host_func(
        FuncType {
            params: Box::new([]),
            results: Box::new([]),
        },
        Box::new(|_, _, _| Ok(())),
    );
    assert!(store.instantiate(&module, &[Extern::Func(wrong)]).is_err());

    let bytes = wat::parse_str(r#"(module (memory 1) (data (i32.const 65535) "ab"))"#).unwrap();
    let module = Module::new(hosted_engine(), &bytes, WASM2_FEATURES).unwrap();
    assert!(store.instantiate(&module, &[]).is_err());

    let bytes = wat::parse_str(r#"(module (func $start unreachable) (start $start))"#).unwrap();
    let module = Module::new(hosted_engine(), &bytes, WASM2_FEATURES).unwrap();
    assert!(store.instantiate(&module, &[]).is_err());
}

/// Runs `run` (a runaway recursion counting its depth in `depth`) from under `frames`
/// Rust frames of 4 KiB each, on a store with `Store::set_stack_budget(floor, budget)`,
/// `floor` given as the bytes below this function's frame; returns the depth reached.
fn depth_at_exhaustion(frames: usize, floor_below: Option<usize>, budget: usize) -> i32 {
    if frames > 0 {
        let padding = std::hint::black_box([0u8; 4096]);
        let depth = depth_at_exhaustion(frames - 1, floor_below, budget);
        std::hint::black_box(&padding);
        return depth;
    }
    let here = std::ptr::from_ref(&frames) as usize;
    let floor = floor_below.map_or(0, |below| here - below);
    let mut store = Store::new(hosted_engine());
    store.set_stack_budget(floor, budget);
    let instance = instantiate(
        &mut store,
        r#"(module (global $d (mut i32) (i32.const 0))
             (func $f (export "run") (global.set $d (i32.add (global.get $d) (i32.const 1))) (call $f))
             (func (export "depth") (result i32) (global.get $d)))"#,
        &[],
    );
    expect_trap(call(&mut store, instance, "run", &[]), Trap::StackOverflow);
    match call(&mut store, instance, "depth", &[])
        .expect("depth")
        .as_slice()
    {
        [Val::I32(depth)] => *depth,
        other => panic!("depth: {other:?}"),
    }
}

/// `Store::set_stack_budget`: WebAssembly gets the budget below the frame of the call into
/// it however deep the host's frames are there (the same depth from under 64 KiB more of
/// them), and never goes below the floor.
#[test]
fn the_stack_budget_counts_from_the_call_and_stops_at_the_floor() {
    let budget = 256 * 1024;
    let shallow = depth_at_exhaustion(0, None, budget);
    let deep = depth_at_exhaustion(16, None, budget);
    assert_eq!(shallow, deep, "the budget moved with the host's frames");
    // The count ends it: half the budget over the cost of `$f` (no locals, two values on
    // its operand stack), exactly.
    let cost = frame_cost([], 2).unwrap();
    assert_eq!(
        u64::try_from(shallow).unwrap(),
        counted_stack_budget(budget) / cost,
        "{shallow} frames in {budget} bytes"
    );
    // A floor a sixteenth of the budget down stops the machine frames (32 bytes each)
    // first.
    let floored = depth_at_exhaustion(0, Some(budget / 16), budget);
    assert!(
        floored < shallow / 2 && floored > 0,
        "the floor a sixteenth of the budget down: {floored} frames, {shallow} without"
    );
}

/// `Store::typed_func`: the type is checked once, calls carry Rust values, traps come back
/// as from `Store::call`, and a typed function refuses another store.
#[test]
fn typed_functions_call_with_rust_values() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(
        &mut store,
        r#"(module
             (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
             (func (export "mix") (param i64 f32 f64) (result f64 i64)
               (f64.add (f64.promote_f32 (local.get 1)) (local.get 2)) (local.get 0))
             (func (export "nothing"))
             (func (export "trap") (param i32) (result i32) unreachable))"#,
        &[],
    );
    let add = store
        .typed_func::<(i32, i32), i32>(func(&store, instance, "add"))
        .unwrap();
    assert_eq!(add.call(&mut store, (2, -5)).unwrap(), -3);
    assert_eq!(add.call(&mut store, (i32::MAX, 1)).unwrap(), i32::MIN);
    let mix = store
        .typed_func::<(i64, f32, f64), (f64, i64)>(func(&store, instance, "mix"))
        .unwrap();
    assert_eq!(mix.call(&mut store, (7, 1.5, 0.25)).unwrap(), (1.75, 7));
    let nothing = store
        .typed_func::<(), ()>(func(&store, instance, "nothing"))
        .unwrap();
    nothing.call(&mut store, ()).unwrap();
    let trap = store
        .typed_func::<i32, i32>(func(&store, instance, "trap"))
        .unwrap();
    assert!(matches!(
        trap.call(&mut store, 1),
        Err(CallError::Trap {
            trap: Trap::Unreachable,
            ..
        })
    ));
    // The store is still usable after the trap.
    assert_eq!(add.call(&mut store, (1, 1)).unwrap(), 2);
    // Wrong types are refused when the typed function is made.
    assert!(matches!(
        store.typed_func::<(i32, i64), i32>(func(&store, instance, "add")),
        Err(CallError::BadArguments(_))
    ));
    assert!(matches!(
        store.typed_func::<(i32, i32), ()>(func(&store, instance, "add")),
        Err(CallError::BadArguments(_))
    ));
    // Another store's typed function is refused, not called.
    let mut other = Store::new(hosted_engine());
    instantiate(&mut other, "(module)", &[]);
    assert!(matches!(
        add.call(&mut other, (1, 2)),
        Err(CallError::BadArguments(_))
    ));
}
