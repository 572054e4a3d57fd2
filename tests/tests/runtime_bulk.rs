//! Bulk memory and table operations on the hosted runtime, at their bounds: overlapping
//! copies in both directions, fills and copies that end exactly at the end of a memory or
//! table and one past it (which must trap and write nothing), bounds that follow growth,
//! dropped passive, active and declared segments, `table.grow` up to the maximum and past
//! it, tables shared between instances, and references crossing the host boundary.

use kernel_core::wasm::env::{RefType, TableType, WASM2_FEATURES};
use kernel_core::wasm::runtime::{
    CallError, Extern, Func, InstanceId, MemoryId, Module, Store, Val,
};
use kernel_core::wasm::trap::Trap;
use tests::hosted_engine;

type HostedStore = Store<'static, hal_hosted::HostedHal>;

const PAGE: i32 = 65536;

fn instantiate(store: &mut HostedStore, text: &str, imports: &[Extern]) -> InstanceId {
    let bytes = wat::parse_str(text).expect("test module text");
    let module = Module::new(hosted_engine(), &bytes, WASM2_FEATURES).expect("module loads");
    store
        .instantiate(&module, imports)
        .expect("module instantiates")
}

fn call(
    store: &mut HostedStore,
    instance: InstanceId,
    name: &str,
    args: &[Val],
) -> Result<Vec<Val>, CallError> {
    let Some(Extern::Func(func)) = store.export(instance, name) else {
        panic!("no exported function {name}");
    };
    store.call(func, args)
}

#[track_caller]
fn ok(result: Result<Vec<Val>, CallError>) -> Vec<Val> {
    result.unwrap_or_else(|error| panic!("unexpected error: {error}"))
}

#[track_caller]
fn i32_result(result: Result<Vec<Val>, CallError>) -> i32 {
    match ok(result).as_slice() {
        [Val::I32(value)] => *value,
        other => panic!("expected one i32, got {other:?}"),
    }
}

#[track_caller]
fn expect_trap(result: Result<Vec<Val>, CallError>, expected: Trap) {
    match result {
        Err(CallError::Trap {
            trap, backtrace, ..
        }) => {
            assert_eq!(trap, expected);
            assert!(
                !backtrace.is_empty(),
                "a builtin's trap has the calling function in its backtrace"
            );
        }
        other => panic!("expected trap {expected:?}, got {other:?}"),
    }
}

fn memory(store: &HostedStore, instance: InstanceId) -> MemoryId {
    match store.export(instance, "memory") {
        Some(Extern::Memory(memory)) => memory,
        other => panic!("no exported memory: {other:?}"),
    }
}

fn bytes(store: &mut HostedStore, memory: MemoryId, at: usize, len: usize) -> Vec<u8> {
    store.memory_data(memory).expect("memory")[at..at + len].to_vec()
}

const MEMORY: &str = r#"
(module
  (memory (export "memory") 1 2)
  (data $passive "\01\02\03\04\05")
  (data $active (i32.const 100) "active")
  (func (export "copy") (param i32 i32 i32)
    (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i32 i32 i32)
    (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32)
    (memory.init $passive (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init_active") (param i32 i32 i32)
    (memory.init $active (local.get 0) (local.get 1) (local.get 2)))
  (func (export "drop") (data.drop $passive))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
)"#;

fn memory_instance(store: &mut HostedStore) -> (InstanceId, MemoryId) {
    let instance = instantiate(store, MEMORY, &[]);
    let memory = memory(store, instance);
    (instance, memory)
}

#[test]
fn overlapping_memory_copies_move_like_memmove() {
    let mut store = Store::new(hosted_engine());
    let (instance, memory) = memory_instance(&mut store);
    store.memory_data(memory).expect("memory")[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);

    // Forwards (destination above the source): a naive front-to-back copy would smear.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(2), Val::I32(0), Val::I32(6)],
    ));
    assert_eq!(bytes(&mut store, memory, 0, 8), [1, 2, 1, 2, 3, 4, 5, 6]);

    // Backwards (destination below the source).
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(0), Val::I32(3), Val::I32(5)],
    ));
    assert_eq!(bytes(&mut store, memory, 0, 8), [2, 3, 4, 5, 6, 4, 5, 6]);

    // Onto itself, and of length zero: nothing changes.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(1), Val::I32(1), Val::I32(7)],
    ));
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(0), Val::I32(7), Val::I32(0)],
    ));
    assert_eq!(bytes(&mut store, memory, 0, 8), [2, 3, 4, 5, 6, 4, 5, 6]);
}

#[test]
fn memory_copies_end_exactly_at_the_bound_and_trap_one_past_it() {
    let mut store = Store::new(hosted_engine());
    let (instance, memory) = memory_instance(&mut store);
    store.memory_data(memory).expect("memory")[..4].copy_from_slice(&[9, 8, 7, 6]);

    // Destination range ending exactly at the end of the memory.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(PAGE - 4), Val::I32(0), Val::I32(4)],
    ));
    assert_eq!(
        bytes(&mut store, memory, PAGE as usize - 4, 4),
        [9, 8, 7, 6]
    );
    // Source range ending exactly there.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(10), Val::I32(PAGE - 4), Val::I32(4)],
    ));
    assert_eq!(bytes(&mut store, memory, 10, 4), [9, 8, 7, 6]);
    // Length zero at the very end is fine; past it traps.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(PAGE), Val::I32(PAGE), Val::I32(0)],
    ));
    expect_trap(
        call(
            &mut store,
            instance,
            "copy",
            &[Val::I32(PAGE + 1), Val::I32(0), Val::I32(0)],
        ),
        Trap::MemoryOutOfBounds,
    );

    // One byte past the end, either side: a trap, and nothing written (no partial copy).
    let before = bytes(&mut store, memory, 0, PAGE as usize);
    for (dst, src) in [(PAGE - 3, 0), (0, PAGE - 3)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "copy",
                &[Val::I32(dst), Val::I32(src), Val::I32(4)],
            ),
            Trap::MemoryOutOfBounds,
        );
    }
    // Lengths that wrap around 32 bits.
    expect_trap(
        call(
            &mut store,
            instance,
            "copy",
            &[Val::I32(1), Val::I32(0), Val::I32(-1)],
        ),
        Trap::MemoryOutOfBounds,
    );
    assert_eq!(bytes(&mut store, memory, 0, PAGE as usize), before);
}

#[test]
fn memory_fills_follow_the_current_size() {
    let mut store = Store::new(hosted_engine());
    let (instance, memory) = memory_instance(&mut store);

    ok(call(
        &mut store,
        instance,
        "fill",
        &[Val::I32(PAGE - 3), Val::I32(0x1AB), Val::I32(3)],
    ));
    // Only the low byte of the value counts.
    assert_eq!(
        bytes(&mut store, memory, PAGE as usize - 4, 4),
        [0, 0xAB, 0xAB, 0xAB]
    );
    ok(call(
        &mut store,
        instance,
        "fill",
        &[Val::I32(PAGE), Val::I32(1), Val::I32(0)],
    ));
    expect_trap(
        call(
            &mut store,
            instance,
            "fill",
            &[Val::I32(PAGE + 1), Val::I32(1), Val::I32(0)],
        ),
        Trap::MemoryOutOfBounds,
    );
    // Straddling the end: a trap and no partial write.
    expect_trap(
        call(
            &mut store,
            instance,
            "fill",
            &[Val::I32(PAGE - 1), Val::I32(7), Val::I32(2)],
        ),
        Trap::MemoryOutOfBounds,
    );
    assert_eq!(bytes(&mut store, memory, PAGE as usize - 1, 1), [0xAB]);

    // After growing, the same fill is in bounds, up to the new end exactly.
    assert_eq!(
        i32_result(call(&mut store, instance, "grow", &[Val::I32(1)])),
        1
    );
    ok(call(
        &mut store,
        instance,
        "fill",
        &[Val::I32(PAGE - 1), Val::I32(7), Val::I32(PAGE + 1)],
    ));
    assert_eq!(bytes(&mut store, memory, PAGE as usize - 1, 2), [7, 7]);
    assert_eq!(bytes(&mut store, memory, 2 * PAGE as usize - 1, 1), [7]);
    expect_trap(
        call(
            &mut store,
            instance,
            "fill",
            &[Val::I32(2 * PAGE - 1), Val::I32(7), Val::I32(2)],
        ),
        Trap::MemoryOutOfBounds,
    );
}

#[test]
fn memory_init_reads_passive_segments_until_dropped() {
    let mut store = Store::new(hosted_engine());
    let (instance, memory) = memory_instance(&mut store);
    assert_eq!(bytes(&mut store, memory, 100, 6), *b"active");

    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(PAGE - 3), Val::I32(2), Val::I32(3)],
    ));
    assert_eq!(bytes(&mut store, memory, PAGE as usize - 3, 3), [3, 4, 5]);
    // Past the end of the segment, or of the memory: a trap and nothing written.
    for (dst, src, len) in [(0, 3, 3), (0, 6, 0), (PAGE - 2, 0, 3)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "init",
                &[Val::I32(dst), Val::I32(src), Val::I32(len)],
            ),
            Trap::MemoryOutOfBounds,
        );
    }
    assert_eq!(bytes(&mut store, memory, 0, 3), [0, 0, 0]);
    // Exactly the whole segment, and length zero at its end.
    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(0), Val::I32(0), Val::I32(5)],
    ));
    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(0), Val::I32(5), Val::I32(0)],
    ));
    assert_eq!(bytes(&mut store, memory, 0, 5), [1, 2, 3, 4, 5]);

    // Dropped (twice: the second drop does nothing): the segment is empty, so only
    // length zero at offset zero works, at any destination up to the end of memory.
    ok(call(&mut store, instance, "drop", &[]));
    ok(call(&mut store, instance, "drop", &[]));
    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(PAGE), Val::I32(0), Val::I32(0)],
    ));
    for (dst, src, len) in [(0, 0, 1), (0, 1, 0), (PAGE + 1, 0, 0)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "init",
                &[Val::I32(dst), Val::I32(src), Val::I32(len)],
            ),
            Trap::MemoryOutOfBounds,
        );
    }

    // An active segment is dropped once instantiation has written it.
    ok(call(
        &mut store,
        instance,
        "init_active",
        &[Val::I32(0), Val::I32(0), Val::I32(0)],
    ));
    expect_trap(
        call(
            &mut store,
            instance,
            "init_active",
            &[Val::I32(0), Val::I32(0), Val::I32(1)],
        ),
        Trap::MemoryOutOfBounds,
    );
}

#[test]
fn dropped_segments_are_per_instance() {
    let mut store = Store::new(hosted_engine());
    let bytes_text = wat::parse_str(MEMORY).expect("text");
    let module = Module::new(hosted_engine(), &bytes_text, WASM2_FEATURES).expect("loads");
    let first = store.instantiate(&module, &[]).expect("first");
    let second = store.instantiate(&module, &[]).expect("second");
    ok(call(&mut store, first, "drop", &[]));
    expect_trap(
        call(
            &mut store,
            first,
            "init",
            &[Val::I32(0), Val::I32(0), Val::I32(1)],
        ),
        Trap::MemoryOutOfBounds,
    );
    ok(call(
        &mut store,
        second,
        "init",
        &[Val::I32(0), Val::I32(0), Val::I32(5)],
    ));
    let memory = memory(&store, second);
    assert_eq!(bytes(&mut store, memory, 0, 5), [1, 2, 3, 4, 5]);
}

const TABLES: &str = r#"
(module
  (type $get (func (result i32)))
  (table $e (export "externs") 4 6 externref)
  (table $f (export "funcs") 3 funcref)
  (table $g 2 funcref)
  (func $one (type $get) (i32.const 1))
  (func $two (type $get) (i32.const 2))
  (func $three (type $get) (i32.const 3))
  (elem $passive func $one $two $three)
  (elem $declared declare func $three)
  (elem $active (table $g) (i32.const 0) func $two)
  (func (export "get") (param i32) (result externref) (table.get $e (local.get 0)))
  (func (export "set") (param i32 externref) (table.set $e (local.get 0) (local.get 1)))
  (func (export "size") (result i32) (table.size $e))
  (func (export "grow") (param externref i32) (result i32)
    (table.grow $e (local.get 0) (local.get 1)))
  (func (export "fill") (param i32 externref i32)
    (table.fill $e (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy") (param i32 i32 i32)
    (table.copy $e $e (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy_g_to_f") (param i32 i32 i32)
    (table.copy $f $g (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32)
    (table.init $f $passive (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init_declared") (param i32 i32 i32)
    (table.init $f $declared (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init_active") (param i32 i32 i32)
    (table.init $f $active (local.get 0) (local.get 1) (local.get 2)))
  (func (export "drop") (elem.drop $passive))
  (func (export "call") (param i32) (result i32) (call_indirect $f (type $get) (local.get 0)))
  (func (export "func") (param i32) (result funcref) (table.get $f (local.get 0)))
  (func (export "put") (param i32 funcref) (table.set $f (local.get 0) (local.get 1)))
)"#;

fn externs(store: &mut HostedStore, instance: InstanceId) -> Vec<Option<u32>> {
    let size = i32_result(call(store, instance, "size", &[]));
    (0..size)
        .map(
            |index| match ok(call(store, instance, "get", &[Val::I32(index)])).as_slice() {
                [Val::ExternRef(value)] => *value,
                other => panic!("expected an externref, got {other:?}"),
            },
        )
        .collect()
}

fn set_externs(store: &mut HostedStore, instance: InstanceId, values: &[u32]) {
    for (index, value) in values.iter().enumerate() {
        let index = i32::try_from(index).expect("small");
        ok(call(
            store,
            instance,
            "set",
            &[Val::I32(index), Val::ExternRef(Some(*value))],
        ));
    }
}

#[test]
fn overlapping_table_copies_move_like_memmove() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(&mut store, TABLES, &[]);
    set_externs(&mut store, instance, &[10, 11, 12, 13]);
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(1), Val::I32(0), Val::I32(3)],
    ));
    assert_eq!(
        externs(&mut store, instance),
        [Some(10), Some(10), Some(11), Some(12)]
    );
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(0), Val::I32(1), Val::I32(3)],
    ));
    assert_eq!(
        externs(&mut store, instance),
        [Some(10), Some(11), Some(12), Some(12)]
    );
    // Exactly to the end, zero at the end, then one past it: traps, nothing written.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(2), Val::I32(0), Val::I32(2)],
    ));
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(4), Val::I32(4), Val::I32(0)],
    ));
    let before = externs(&mut store, instance);
    for (dst, src, len) in [(3, 0, 2), (0, 3, 2), (5, 0, 0), (0, 5, 0), (0, 0, -1)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "copy",
                &[Val::I32(dst), Val::I32(src), Val::I32(len)],
            ),
            Trap::TableOutOfBounds,
        );
    }
    assert_eq!(externs(&mut store, instance), before);
}

#[test]
fn table_fills_end_exactly_at_the_bound() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(&mut store, TABLES, &[]);
    ok(call(
        &mut store,
        instance,
        "fill",
        &[Val::I32(1), Val::ExternRef(Some(7)), Val::I32(3)],
    ));
    assert_eq!(
        externs(&mut store, instance),
        [None, Some(7), Some(7), Some(7)]
    );
    ok(call(
        &mut store,
        instance,
        "fill",
        &[Val::I32(4), Val::ExternRef(Some(8)), Val::I32(0)],
    ));
    for (dst, len) in [(3, 2), (5, 0)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "fill",
                &[Val::I32(dst), Val::ExternRef(Some(9)), Val::I32(len)],
            ),
            Trap::TableOutOfBounds,
        );
    }
    // Filling with null clears.
    ok(call(
        &mut store,
        instance,
        "fill",
        &[Val::I32(0), Val::ExternRef(None), Val::I32(4)],
    ));
    assert_eq!(externs(&mut store, instance), [None; 4]);
}

#[test]
fn table_grow_stops_at_the_maximum() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(&mut store, TABLES, &[]);
    let grow = |store: &mut HostedStore, init: Option<u32>, delta: i32| {
        i32_result(call(
            store,
            instance,
            "grow",
            &[Val::ExternRef(init), Val::I32(delta)],
        ))
    };
    assert_eq!(grow(&mut store, Some(5), 1), 4);
    assert_eq!(grow(&mut store, None, 0), 5);
    // Past the maximum (6), by a little or by a delta that wraps: -1, size unchanged.
    assert_eq!(grow(&mut store, Some(5), 2), -1);
    assert_eq!(grow(&mut store, Some(5), -1), -1);
    assert_eq!(i32_result(call(&mut store, instance, "size", &[])), 5);
    // Exactly to the maximum, where growing by zero still works.
    assert_eq!(grow(&mut store, Some(6), 1), 5);
    assert_eq!(grow(&mut store, None, 0), 6);
    assert_eq!(grow(&mut store, None, 1), -1);
    assert_eq!(
        externs(&mut store, instance),
        [None, None, None, None, Some(5), Some(6)]
    );
    // The new elements are in bounds for every table operation.
    ok(call(
        &mut store,
        instance,
        "copy",
        &[Val::I32(0), Val::I32(4), Val::I32(2)],
    ));
    assert_eq!(externs(&mut store, instance)[..2], [Some(5), Some(6)]);
}

#[test]
fn unbounded_tables_stop_at_ten_million_elements() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(
        &mut store,
        r#"(module
          (table $t 1 funcref)
          (func (export "grow") (param i32) (result i32)
            (table.grow $t (ref.null func) (local.get 0)))
          (func (export "size") (result i32) (table.size $t)))"#,
        &[],
    );
    for delta in [10_000_000, i32::MAX, -1] {
        assert_eq!(
            i32_result(call(&mut store, instance, "grow", &[Val::I32(delta)])),
            -1
        );
    }
    assert_eq!(i32_result(call(&mut store, instance, "size", &[])), 1);
    assert_eq!(
        i32_result(call(&mut store, instance, "grow", &[Val::I32(9_999_999)])),
        1
    );
    assert_eq!(
        i32_result(call(&mut store, instance, "grow", &[Val::I32(1)])),
        -1
    );
    assert_eq!(
        i32_result(call(&mut store, instance, "size", &[])),
        10_000_000
    );
}

#[test]
fn table_init_reads_passive_segments_until_dropped() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(&mut store, TABLES, &[]);
    let call_at =
        |store: &mut HostedStore, index: i32| call(store, instance, "call", &[Val::I32(index)]);

    // The whole segment, exactly filling the table.
    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(0), Val::I32(0), Val::I32(3)],
    ));
    for index in 0..3 {
        assert_eq!(i32_result(call_at(&mut store, index)), index + 1);
    }
    // Past the segment's end or the table's: a trap and nothing written.
    ok(call(
        &mut store,
        instance,
        "put",
        &[Val::I32(0), Val::FuncRef(None)],
    ));
    for (dst, src, len) in [(0, 2, 2), (0, 4, 0), (2, 0, 2), (4, 0, 0)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "init",
                &[Val::I32(dst), Val::I32(src), Val::I32(len)],
            ),
            Trap::TableOutOfBounds,
        );
    }
    expect_trap(call_at(&mut store, 0), Trap::IndirectCallToNull);
    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(0), Val::I32(2), Val::I32(1)],
    ));
    assert_eq!(i32_result(call_at(&mut store, 0)), 3);

    // Dropped: empty, so only length zero at offset zero works.
    ok(call(&mut store, instance, "drop", &[]));
    ok(call(&mut store, instance, "drop", &[]));
    ok(call(
        &mut store,
        instance,
        "init",
        &[Val::I32(3), Val::I32(0), Val::I32(0)],
    ));
    for (dst, src, len) in [(0, 0, 1), (0, 1, 0), (4, 0, 0)] {
        expect_trap(
            call(
                &mut store,
                instance,
                "init",
                &[Val::I32(dst), Val::I32(src), Val::I32(len)],
            ),
            Trap::TableOutOfBounds,
        );
    }

    // Declared and active segments are dropped by instantiation.
    for name in ["init_declared", "init_active"] {
        ok(call(
            &mut store,
            instance,
            name,
            &[Val::I32(0), Val::I32(0), Val::I32(0)],
        ));
        expect_trap(
            call(
                &mut store,
                instance,
                name,
                &[Val::I32(0), Val::I32(0), Val::I32(1)],
            ),
            Trap::TableOutOfBounds,
        );
    }
}

#[test]
fn table_copy_between_tables_and_function_references_round_trip() {
    let mut store = Store::new(hosted_engine());
    let instance = instantiate(&mut store, TABLES, &[]);
    // $g[0] is $two, written by the active segment.
    ok(call(
        &mut store,
        instance,
        "copy_g_to_f",
        &[Val::I32(1), Val::I32(0), Val::I32(2)],
    ));
    assert_eq!(
        i32_result(call(&mut store, instance, "call", &[Val::I32(1)])),
        2
    );
    expect_trap(
        call(&mut store, instance, "call", &[Val::I32(2)]),
        Trap::IndirectCallToNull,
    );
    expect_trap(
        call(
            &mut store,
            instance,
            "copy_g_to_f",
            &[Val::I32(2), Val::I32(1), Val::I32(2)],
        ),
        Trap::TableOutOfBounds,
    );

    // A funcref taken out to the host and put back is the same function.
    let reference = match ok(call(&mut store, instance, "func", &[Val::I32(1)])).as_slice() {
        [Val::FuncRef(Some(reference))] => *reference,
        other => panic!("expected a function reference, got {other:?}"),
    };
    assert_eq!(ok(store.call(Func::Wasm(reference), &[])), [Val::I32(2)]);
    ok(call(
        &mut store,
        instance,
        "put",
        &[Val::I32(0), Val::FuncRef(Some(reference))],
    ));
    assert_eq!(
        i32_result(call(&mut store, instance, "call", &[Val::I32(0)])),
        2
    );
}

#[test]
fn tables_grown_by_one_instance_are_seen_by_another() {
    let mut store = Store::new(hosted_engine());
    let table = store
        .new_table(&TableType {
            element: RefType::Func,
            minimum: 1,
            maximum: Some(4),
            table64: false,
        })
        .expect("table");
    let grower = instantiate(
        &mut store,
        r#"(module
          (import "host" "table" (table $t 1 funcref))
          (func $seven (result i32) (i32.const 7))
          (elem declare func $seven)
          (func (export "grow") (param i32) (result i32)
            (table.grow $t (ref.func $seven) (local.get 0))))"#,
        &[Extern::Table(table)],
    );
    let caller = instantiate(
        &mut store,
        r#"(module
          (import "host" "table" (table $t 1 funcref))
          (func (export "size") (result i32) (table.size $t))
          (func (export "call") (param i32) (result i32)
            (call_indirect $t (result i32) (local.get 0))))"#,
        &[Extern::Table(table)],
    );
    expect_trap(
        call(&mut store, caller, "call", &[Val::I32(2)]),
        Trap::UndefinedElement,
    );
    assert_eq!(
        i32_result(call(&mut store, grower, "grow", &[Val::I32(3)])),
        1
    );
    assert_eq!(i32_result(call(&mut store, caller, "size", &[])), 4);
    assert_eq!(
        i32_result(call(&mut store, caller, "call", &[Val::I32(3)])),
        7
    );
    assert_eq!(
        i32_result(call(&mut store, grower, "grow", &[Val::I32(1)])),
        -1
    );
}
