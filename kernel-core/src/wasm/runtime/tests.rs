//! Unit tests of the store's aliasing-sensitive paths on the heap-backed test platform,
//! written so that Miri can run them: no generated code is ever executed. Host functions
//! are called through `Store::call` and through their C entry, builtins directly, the way
//! generated code would call them (from inside a call that lent the store out).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::cell::Cell;
use core::sync::atomic::Ordering;

use super::builtins::{epoch_interrupt, memory_fill, memory_grow, table_grow};
use super::epoch::EpochAction;
use super::test_hal::TestHal;
use super::{CallError, Engine, EngineConfig, Extern, Func, InstanceId, Module, Store, Val};
use crate::wasm::abi::VALUE_SLOT_SIZE;
use crate::wasm::env::{
    FuncType, GlobalType, MemoryType, RefType, TableType, ValType, WasmFeatures,
};
use crate::wasm::trap::Trap;
use crate::wasm::vm::vmcontext::VMContext;

fn engine() -> Engine<TestHal> {
    Engine::new(TestHal::new(), EngineConfig::default())
}

fn func_type(params: &[ValType], results: &[ValType]) -> FuncType {
    FuncType {
        params: params.into(),
        results: results.into(),
    }
}

fn memory_type(minimum: u64, maximum: Option<u64>) -> MemoryType {
    MemoryType {
        minimum,
        maximum,
        shared: false,
        memory64: false,
        page_size_log2: 16,
    }
}

/// The module most tests instantiate: a memory with a data segment, a table with an
/// element segment, globals, and a host function import; no start function.
const MODULE: &str = r#"
    (module
      (import "host" "log" (func $log (param i32)))
      (memory (export "memory") 1 3)
      (table (export "table") 2 10 funcref)
      (global (export "answer") i32 (i32.const 42))
      (global (export "counter") (mut i64) (i64.const 7))
      (func $get (export "get") (result i32) global.get 0)
      (elem (i32.const 1) $get)
      (data (i32.const 8) "hello"))
"#;

/// Compiles `text` for the test platform; under Miri only translates and lays it out
/// (nothing runs its code, and Cranelift would take most of a minute a module there).
fn module<'e>(
    engine: &'e Engine<TestHal>,
    text: &str,
    features: WasmFeatures,
) -> Module<'e, TestHal> {
    let wasm = wat::parse_str(text).expect("valid text");
    let module = if cfg!(miri) {
        Module::without_code(engine, &wasm, features)
    } else {
        Module::new(engine, &wasm, features)
    };
    module.expect("module loads")
}

/// Instantiates [`MODULE`] with a host `log` that does nothing.
fn instantiate_module<'e>(
    store: &mut Store<'e, TestHal>,
    module: &Module<'e, TestHal>,
) -> InstanceId {
    let log = store.new_host_func(
        func_type(&[ValType::I32], &[]),
        Box::new(|_caller, _args, _results| Ok(())),
    );
    store
        .instantiate(module, &[Extern::Func(log)])
        .expect("instantiates")
}

/// The VMContext of `instance`, what generated code would pass to builtins.
fn vmctx(store: &Store<'_, TestHal>, instance: InstanceId) -> *mut VMContext {
    store.inner().instances[instance.0].vmctx()
}

#[test]
fn host_objects_live_and_die_with_their_store() {
    let engine = engine();
    {
        let mut store = Store::new(&engine);
        let memory = store.new_memory(&memory_type(1, Some(2))).expect("memory");
        let table = store
            .new_table(&TableType {
                element: RefType::Func,
                minimum: 3,
                maximum: None,
                table64: false,
            })
            .expect("table");
        let global_type = GlobalType {
            content: ValType::I64,
            mutable: true,
        };
        let global = store.new_global(global_type, Val::I64(-5)).expect("global");
        assert!(store.new_global(global_type, Val::I32(1)).is_err());
        let data = store.memory_data(memory).expect("memory data");
        assert_eq!(data.len(), 65536);
        data[..4].copy_from_slice(b"k23!");
        assert_eq!(
            &store.memory_data(memory).expect("memory data")[..4],
            b"k23!"
        );
        assert_eq!(store.global(global), Some((global_type, Val::I64(-5))));
        // The definitions the objects publish for generated code are up to date.
        let inner = store.inner();
        let definition = inner.memories[memory.0].definition;
        // Safety: the definition is a store-owned box, alive while the store is.
        let length = unsafe {
            (*definition.as_ptr())
                .current_length
                .load(Ordering::Relaxed)
        };
        assert_eq!(length, 65536);
        // Safety: as above.
        let elements = unsafe { (*inner.tables[table.0].definition.as_ptr()).current_elements };
        assert_eq!(elements, 3);
        assert_eq!(engine.hal().live_reservations(), 1);
    }
    assert_eq!(
        engine.hal().live_reservations(),
        0,
        "the store released its memory"
    );
}

#[test]
fn host_functions_run_through_store_call() {
    // Declared before the store, which borrows it (in a callback) until it drops.
    let calls = Cell::new(0);
    let engine = engine();
    let mut store = Store::new(&engine);
    let add = store.new_host_func(
        func_type(&[ValType::I32, ValType::I32], &[ValType::I32]),
        Box::new(|caller, args, results| {
            calls.set(calls.get() + 1);
            assert_eq!(caller.memory_len(), 0, "a call from the host has no memory");
            assert!(caller.read(0, 1).is_none());
            let (Val::I32(left), Val::I32(right)) = (args[0], args[1]) else {
                return Err(String::from("bad arguments"));
            };
            results[0] = Val::I32(left.wrapping_add(right));
            Ok(())
        }),
    );
    let fail = store.new_host_func(
        func_type(&[], &[]),
        Box::new(|_caller, _args, _results| Err(String::from("refused"))),
    );
    let wrong = store.new_host_func(
        func_type(&[], &[ValType::I64]),
        Box::new(|_caller, _args, results| {
            results[0] = Val::F32(0);
            Ok(())
        }),
    );
    assert_eq!(
        store.call(add, &[Val::I32(40), Val::I32(2)]),
        Ok(vec![Val::I32(42)])
    );
    assert!(matches!(
        store.call(add, &[Val::I32(40)]),
        Err(CallError::BadArguments(_))
    ));
    assert_eq!(calls.get(), 1);
    let Err(CallError::Trap { trap, detail, .. }) = store.call(fail, &[]) else {
        panic!("a failing host function traps");
    };
    assert_eq!(trap, Trap::HostError);
    assert_eq!(detail.as_deref(), Some("refused"));
    let Err(CallError::Trap { detail, .. }) = store.call(wrong, &[]) else {
        panic!("wrong result types trap");
    };
    assert_eq!(
        detail.as_deref(),
        Some("host function returned wrong types")
    );
    assert_eq!(store.func_type(add).map(|ty| ty.params.len()), Some(2));
}

#[test]
fn instantiation_fills_memories_tables_and_globals() {
    let engine = engine();
    let module = module(&engine, MODULE, WasmFeatures::WASM2);
    let mut store = Store::new(&engine);
    let instance = instantiate_module(&mut store, &module);
    let Some(Extern::Memory(memory)) = store.export(instance, "memory") else {
        panic!("memory export");
    };
    assert_eq!(&store.memory_data(memory).expect("memory")[8..13], b"hello");
    let Some(Extern::Global(answer)) = store.export(instance, "answer") else {
        panic!("global export");
    };
    assert_eq!(
        store.global(answer).map(|(_, value)| value),
        Some(Val::I32(42))
    );
    let Some(Extern::Func(get)) = store.export(instance, "get") else {
        panic!("function export");
    };
    assert_eq!(store.func_type(get).map(|ty| ty.results.len()), Some(1));
    let Some(Extern::Table(table)) = store.export(instance, "table") else {
        panic!("table export");
    };
    let Func::Wasm(get_ref) = get else {
        panic!("an instance's function is a funcref");
    };
    let inner = store.inner();
    assert_eq!(
        inner.tables[table.0].table.slice(0, 2),
        Some(&[0, get_ref.0.as_ptr() as usize][..]),
        "the element segment wrote the function's funcref"
    );
    assert_eq!(store.exports(instance).len(), 5);
}

#[test]
fn builtins_borrow_the_store_while_a_host_function_runs() {
    // Declared before the store, which borrows it (in its epoch handler) until it drops.
    let epochs = Cell::new(0);
    let epochs = &epochs;
    let engine = engine();
    let module = module(&engine, MODULE, WasmFeatures::WASM2);
    let mut store = Store::new(&engine);
    let instance = instantiate_module(&mut store, &module);
    let vmctx = vmctx(&store, instance);
    store.set_epoch_handler(Box::new(move || {
        epochs.set(epochs.get() + 1);
        // What the scheduler does here, other work, may use the store through its own
        // raw pointers too: the handler holds no borrow of the store.
        // Safety: `vmctx` belongs to a live instance, and no reference to the store is in
        // use while the handler runs.
        assert_eq!(unsafe { memory_fill::<TestHal>(vmctx, 0, 0, 0x5a, 4) }, 0);
        if epochs.get() < 2 {
            EpochAction::Continue { deadline: 1234 }
        } else {
            EpochAction::Interrupt
        }
    }));
    // A host function that does what generated code does between its instructions: call
    // builtins on its own store, while `Store::call` runs.
    let work = store.new_host_func(
        func_type(&[], &[ValType::I64, ValType::I64, ValType::I64]),
        Box::new(move |_caller, _args, results| {
            // Safety: `vmctx` belongs to a live instance of this store, whose owner lent
            // it out to the running call; each builtin borrows it only while it runs.
            unsafe {
                let grown = memory_grow::<TestHal>(vmctx, 0, 1);
                let table = table_grow::<TestHal>(vmctx, 0, 0, 3);
                let continued = epoch_interrupt::<TestHal>(vmctx);
                results[0] = Val::I64(grown.cast_signed());
                results[1] = Val::I64(table.cast_signed());
                results[2] = Val::I64(continued.cast_signed());
            }
            Ok(())
        }),
    );
    assert_eq!(
        store.call(work, &[]),
        Ok(vec![Val::I64(1), Val::I64(2), Val::I64(0)])
    );
    let inner = store.inner();
    assert_eq!(inner.context.epoch_deadline.load(Ordering::Relaxed), 1234);
    assert!(
        inner.epoch_handler.is_some(),
        "the handler is back in the store"
    );
    let Some(Extern::Memory(memory)) = store.export(instance, "memory") else {
        panic!("memory export");
    };
    let data = store.memory_data(memory).expect("memory");
    assert_eq!(data.len(), 2 * 65536);
    assert_eq!(&data[..4], &[0x5a; 4]);
    // The second interrupt asks to stop: the builtin says so.
    // Safety: as above; no reference to the store is in use.
    assert_eq!(unsafe { epoch_interrupt::<TestHal>(vmctx) }, 1);
    // Growing past the maximum (3 pages) fails, and so does a memory index the instance
    // does not have.
    // Safety: as above.
    unsafe {
        assert_eq!(memory_grow::<TestHal>(vmctx, 0, 2), u64::MAX);
        assert_eq!(memory_grow::<TestHal>(vmctx, 1, 1), u64::MAX);
    }
}

#[test]
fn host_calls_reach_the_callers_memory_0() {
    let engine = engine();
    let module = module(&engine, MODULE, WasmFeatures::WASM2);
    let mut store = Store::new(&engine);
    let instance = instantiate_module(&mut store, &module);
    let vmctx = vmctx(&store, instance);
    let Func::Host(greet) = store.new_host_func(
        func_type(&[ValType::I32], &[ValType::I32]),
        Box::new(|caller, args, results| {
            let Val::I32(pointer) = args[0] else {
                return Err(String::from("bad argument"));
            };
            let out_of_bounds = || String::from("out of bounds");
            let greeting = caller.read(pointer, 5).ok_or_else(out_of_bounds)?.to_vec();
            caller
                .write(pointer + 16, &greeting)
                .ok_or_else(out_of_bounds)?;
            results[0] = Val::I32(i32::try_from(caller.memory_len()).unwrap_or(-1));
            Ok(())
        }),
    ) else {
        panic!("a new host function");
    };
    // Call it as a wasm-to-host trampoline does: through its context, with the calling
    // instance's VMContext and the value slots.
    let context = super::host::HostFunc::context_pointer(&store.inner().host_funcs[greet.0]);
    let slot = VALUE_SLOT_SIZE as usize;
    let mut values = vec![0u8; slot];
    values[..4].copy_from_slice(&8i32.to_le_bytes());
    // Safety: the context belongs to a live host function of the store, `vmctx` to a
    // live instance of it, and `values` holds one slot (the argument, then the result).
    let status = unsafe { ((*context).host_call)(context, vmctx, values.as_mut_ptr(), 1) };
    assert_eq!(status, 0);
    assert_eq!(values[..4], 65536i32.to_le_bytes());
    // Out of bounds: the callback fails, and the message waits for the trap's report.
    values[..4].copy_from_slice(&65534i32.to_le_bytes());
    // Safety: as above.
    let status = unsafe { ((*context).host_call)(context, vmctx, values.as_mut_ptr(), 1) };
    assert_eq!(status, 1);
    assert_eq!(
        store.inner().host_funcs[greet.0].last_error.as_deref(),
        Some("out of bounds")
    );
    let Some(Extern::Memory(memory)) = store.export(instance, "memory") else {
        panic!("memory export");
    };
    assert_eq!(
        &store.memory_data(memory).expect("memory")[24..29],
        b"hello"
    );
}

#[test]
fn a_failed_instantiation_takes_back_its_objects_and_keeps_the_entry_code() {
    let engine = engine();
    let two_memories = module(
        &engine,
        r#"(module (memory 1) (memory 1) (global i32 (i32.const 1)))"#,
        WasmFeatures::WASM2 | WasmFeatures::MULTI_MEMORY,
    );
    let mut store = Store::new(&engine);
    // Room for the first memory only: the second fails the instantiation after the first
    // was made.
    store.set_memory_limit(65536);
    let error = store.instantiate(&two_memories, &[]);
    assert!(
        matches!(
            error,
            Err(super::InstantiationError::MemoryLimit { limit: 65536 })
        ),
        "{error:?}"
    );
    let inner = store.inner();
    assert_eq!(inner.memories.len(), 0, "the first memory was taken back");
    assert_eq!(inner.globals.len(), 0);
    assert!(inner.entry.is_some(), "the entry trampoline was recorded");
    // The store keeps the code its entry trampoline lies in, without the module.
    drop(two_memories);
    assert_eq!(
        engine.hal().live_reservations(),
        1,
        "only the module's code"
    );
    let entry = store.inner().entry.as_ref().map(|code| code.entry);
    let code = &store.inner().entry.as_ref().expect("entry").code;
    assert!(entry.is_some_and(|entry| code.start <= entry));
    // The store still works.
    store.set_memory_limit(u64::MAX);
    let module = module(&engine, MODULE, WasmFeatures::WASM2);
    let instance = instantiate_module(&mut store, &module);
    assert_eq!(instance, InstanceId(0));
    drop(store);
    drop(module);
    assert_eq!(engine.hal().live_reservations(), 0);
}

#[test]
fn stores_with_instances_drop_in_any_order_with_their_modules() {
    let engine = engine();
    let module = module(&engine, MODULE, WasmFeatures::WASM2);
    let mut first = Store::new(&engine);
    let mut second = Store::new(&engine);
    let a = instantiate_module(&mut first, &module);
    let b = instantiate_module(&mut second, &module);
    assert_eq!(
        format!("{:?}", first.export(a, "answer")),
        format!("{:?}", second.export(b, "answer"))
    );
    drop(module);
    drop(first);
    assert_eq!(
        engine.hal().live_reservations(),
        2,
        "the code and the second memory"
    );
    drop(second);
    assert_eq!(engine.hal().live_reservations(), 0);
}
