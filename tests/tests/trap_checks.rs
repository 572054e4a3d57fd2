//! The trap handler checks what the HAL reports before it believes a fault is a
//! WebAssembly trap: the cause must fit the trap site, and a memory fault's address must
//! lie in a live linear memory's guard region. These tests hand the installed handler
//! ([`handle_trap`]) deliberately inconsistent trap information, with a call context of
//! fake code and the memories of a real hosted store; the unit tests of
//! `kernel_core::wasm::runtime::trap_handler` check the pure decision (`classify`) case by
//! case.
//!
//! The last test is about the faults that must never happen at all: on CPUs without a
//! vector unit, a module using `v128` is refused when it loads instead of faulting on a
//! vector instruction outside any trap site.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::Arc;

use kernel_core::hal::{
    Access, CpuError, CpuId, Cpus, Isa, IsaFeatures, MemoryError, Protection, TrapCause,
    TrapHandler, TrapInfo, TrapResponse, Traps, VectorFeatures, VirtualMemory,
};
use kernel_core::wasm::abi::VMActivation;
use kernel_core::wasm::compile::CompileError;
use kernel_core::wasm::env::WASM2_FEATURES;
use kernel_core::wasm::runtime::trap_handler::{CallContext, handle_trap};
use kernel_core::wasm::runtime::{
    CodeInfo, Engine, EngineConfig, Extern, Func, LoadError, Module, Store, Val,
};
use kernel_core::wasm::trap::Trap;
use tests::hosted_engine;

/// Where the fake module's code claims to be (never touched: only compared with pcs).
const CODE_START: usize = 0x1000_0000;
/// A memory access site.
const LOAD_SITE: usize = CODE_START + 0x10;
/// An integer overflow check (a trap instruction).
const OVERFLOW_SITE: usize = CODE_START + 0x20;
/// A division (x86-64 `idiv`).
const DIVISION_SITE: usize = CODE_START + 0x30;
/// No page below 64 KiB is ever a linear memory.
const STRAY_ADDRESS: usize = 0x10;

fn fake_code() -> Arc<CodeInfo> {
    Arc::new(CodeInfo {
        start: CODE_START,
        len: 0x100,
        module_name: None,
        functions: Box::new([]),
        num_imported_functions: 0,
        traps: Box::new([
            (0x10, Trap::MemoryOutOfBounds),
            (0x20, Trap::IntegerOverflow),
            (0x30, Trap::IntegerDivisionByZero),
        ]),
        function_names: BTreeMap::new(),
    })
}

fn fault(pc: usize, cause: TrapCause, fault_address: Option<usize>) -> TrapInfo {
    TrapInfo {
        pc,
        fp: 0,
        sp: 0,
        fault_address,
        cause,
        context: 0,
    }
}

const LANDING_PAD: usize = 0xdead_0000;

/// Runs the installed handler on `info` with a call context whose code is the fake
/// module.
fn handle(mut info: TrapInfo) -> TrapResponse {
    let code = [fake_code()];
    let mut context = CallContext {
        activation: VMActivation {
            entry_fp: 0,
            entry_sp: 0,
            handler_pc: LANDING_PAD,
        },
        code: std::ptr::from_ref::<[Arc<CodeInfo>]>(&code),
        trap: None,
    };
    info.context = std::ptr::from_mut(&mut context) as usize;
    handle_trap(&info)
}

#[track_caller]
fn assert_redirected(response: TrapResponse) {
    match response {
        TrapResponse::Redirect(redirect) => assert_eq!(redirect.pc, LANDING_PAD),
        other => panic!("expected a redirect to the landing pad, got {other:?}"),
    }
}

/// A live memory of one page in a hosted store; returns its base address.
fn live_memory(store: &mut Store<'static, hal_hosted::HostedHal>) -> (usize, Func) {
    let wasm = wat::parse_str(
        r#"(module (memory (export "m") 1)
             (func (export "grow") (result i32) (memory.grow (i32.const 1))))"#,
    )
    .unwrap();
    let module = Module::new(hosted_engine(), &wasm, WASM2_FEATURES).unwrap();
    let instance = store.instantiate(&module, &[]).unwrap();
    let Some(Extern::Memory(memory)) = store.export(instance, "m") else {
        panic!("memory export");
    };
    let Some(Extern::Func(grow)) = store.export(instance, "grow") else {
        panic!("grow export");
    };
    let base = store.memory_data(memory).unwrap().as_ptr() as usize;
    (base, grow)
}

#[test]
fn a_memory_fault_at_an_integer_overflow_site_is_a_kernel_bug() {
    let info = fault(
        OVERFLOW_SITE,
        TrapCause::MemoryFault(Access::Read),
        Some(STRAY_ADDRESS),
    );
    assert_eq!(handle(info), TrapResponse::Fatal);
    // The same site with the cause it can produce is a trap.
    assert_redirected(handle(fault(
        OVERFLOW_SITE,
        TrapCause::IllegalInstruction,
        None,
    )));
}

#[test]
fn an_arithmetic_fault_at_a_memory_access_and_a_breakpoint_are_kernel_bugs() {
    assert_eq!(
        handle(fault(LOAD_SITE, TrapCause::ArithmeticFault, None)),
        TrapResponse::Fatal
    );
    assert_eq!(
        handle(fault(DIVISION_SITE, TrapCause::Breakpoint, None)),
        TrapResponse::Fatal
    );
    assert_redirected(handle(fault(
        DIVISION_SITE,
        TrapCause::ArithmeticFault,
        None,
    )));
}

#[test]
fn a_memory_fault_outside_every_guard_region_is_a_kernel_bug() {
    let mut store = Store::new(hosted_engine());
    let (base, grow) = live_memory(&mut store);
    let page = 64 * 1024;
    // Stray, missing or inside the accessible page: not a guard hit.
    for address in [Some(STRAY_ADDRESS), None, Some(base), Some(base + page - 1)] {
        let info = fault(LOAD_SITE, TrapCause::MemoryFault(Access::Read), address);
        assert_eq!(handle(info), TrapResponse::Fatal, "{address:x?}");
    }
    // Just past the accessible page and at the end of the 8 GiB reservation: guard hits.
    for address in [base + page, base + (8 << 30) - 1] {
        let info = fault(
            LOAD_SITE,
            TrapCause::MemoryFault(Access::Write),
            Some(address),
        );
        assert_redirected(handle(info));
    }
    // After a growth the next page is accessible, no longer a guard.
    assert_eq!(store.call(grow, &[]).unwrap(), vec![Val::I32(1)]);
    let info = fault(
        LOAD_SITE,
        TrapCause::MemoryFault(Access::Read),
        Some(base + page),
    );
    assert_eq!(handle(info), TrapResponse::Fatal);
    assert_redirected(handle(fault(
        LOAD_SITE,
        TrapCause::MemoryFault(Access::Read),
        Some(base + 2 * page),
    )));
    // Once the store is gone, its reservation is no guard region either.
    drop(store);
    let info = fault(
        LOAD_SITE,
        TrapCause::MemoryFault(Access::Read),
        Some(base + 2 * page),
    );
    assert_eq!(handle(info), TrapResponse::Fatal);
}

#[test]
fn real_out_of_bounds_accesses_still_trap() {
    let mut store = Store::new(hosted_engine());
    let wasm = wat::parse_str(
        r#"(module (memory 1)
             (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
             (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let module = Module::new(hosted_engine(), &wasm, WASM2_FEATURES).unwrap();
    let instance = store.instantiate(&module, &[]).unwrap();
    let Some(Extern::Func(load)) = store.export(instance, "load") else {
        panic!("load export");
    };
    let Some(Extern::Func(div)) = store.export(instance, "div") else {
        panic!("div export");
    };
    for (func, args, trap) in [
        (load, vec![Val::I32(65536)], Trap::MemoryOutOfBounds),
        (load, vec![Val::I32(-1)], Trap::MemoryOutOfBounds),
        (
            div,
            vec![Val::I32(1), Val::I32(0)],
            Trap::IntegerDivisionByZero,
        ),
        (
            div,
            vec![Val::I32(i32::MIN), Val::I32(-1)],
            Trap::IntegerOverflow,
        ),
    ] {
        match store.call(func, &args) {
            Err(kernel_core::wasm::runtime::CallError::Trap { trap: got, .. }) => {
                assert_eq!(got, trap);
            }
            other => panic!("expected {trap:?}, got {other:?}"),
        }
    }
}

/// The hosted HAL, claiming CPUs without a vector unit.
struct NoVectorUnit(&'static hal_hosted::HostedHal);

impl std::fmt::Debug for NoVectorUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NoVectorUnit")
    }
}

impl VirtualMemory for NoVectorUnit {
    fn page_size(&self) -> usize {
        self.0.page_size()
    }

    fn reserve(&self, len: usize) -> Result<NonNull<u8>, MemoryError> {
        self.0.reserve(len)
    }

    unsafe fn commit(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError> {
        // Safety: the caller keeps the contract, which is the hosted HAL's.
        unsafe { self.0.commit(addr, len, protection) }
    }

    unsafe fn protect(
        &self,
        addr: NonNull<u8>,
        len: usize,
        protection: Protection,
    ) -> Result<(), MemoryError> {
        // Safety: as for `commit`.
        unsafe { self.0.protect(addr, len, protection) }
    }

    unsafe fn decommit(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        // Safety: as for `commit`.
        unsafe { self.0.decommit(addr, len) }
    }

    unsafe fn release(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        // Safety: as for `commit`.
        unsafe { self.0.release(addr, len) }
    }

    unsafe fn publish_code(&self, addr: NonNull<u8>, len: usize) -> Result<(), MemoryError> {
        // Safety: as for `commit`.
        unsafe { self.0.publish_code(addr, len) }
    }
}

impl Traps for NoVectorUnit {
    fn install_trap_handler(&self, handler: TrapHandler) {
        self.0.install_trap_handler(handler);
    }

    fn set_trap_context(&self, context: usize) -> usize {
        self.0.set_trap_context(context)
    }
}

impl Cpus for NoVectorUnit {
    fn isa(&self) -> Isa {
        self.0.isa()
    }

    fn isa_features(&self) -> IsaFeatures {
        IsaFeatures::BASE
    }

    fn cpu_count(&self) -> usize {
        self.0.cpu_count()
    }

    fn current_cpu(&self) -> CpuId {
        self.0.current_cpu()
    }

    fn start_cpu(
        &self,
        cpu: CpuId,
        entry: fn(CpuId, usize) -> !,
        arg: usize,
    ) -> Result<(), CpuError> {
        self.0.start_cpu(cpu, entry, arg)
    }

    fn wake_cpu(&self, cpu: CpuId) {
        self.0.wake_cpu(cpu);
    }
}

#[test]
fn simd_modules_are_refused_without_a_vector_unit() {
    assert_eq!(
        hosted_engine().hal().isa_features().vector,
        Some(VectorFeatures { vlen_bits: 128 })
    );
    let engine = Engine::new(NoVectorUnit(hosted_engine().hal()), EngineConfig::default());
    let uses_v128 = [
        r#"(module (func (export "f") (result i32)
             (i32x4.extract_lane 0 (v128.const i32x4 7 0 0 0))))"#,
        r#"(module (func (param v128)))"#,
        r#"(module (global v128 (v128.const i64x2 0 0)))"#,
        r#"(module (func (local v128)))"#,
    ];
    for text in uses_v128 {
        let wasm = wat::parse_str(text).unwrap();
        match Module::new(&engine, &wasm, WASM2_FEATURES) {
            Err(error @ LoadError::Compile(CompileError::Unsupported(_))) => {
                let message = error.to_string();
                assert!(message.contains("uses v128"), "{message}");
                assert!(message.contains("no 128-bit vector unit"), "{message}");
            }
            other => panic!("{text}: expected an unsupported-module error, got {other:?}"),
        }
        // The hosted CPUs, with their vector unit, load it.
        Module::new(hosted_engine(), &wasm, WASM2_FEATURES).expect(text);
    }
    // Scalar modules still load and run.
    let wasm = wat::parse_str(
        r#"(module (func (export "f") (result i32) (i32.mul (i32.const 6) (i32.const 7))))"#,
    )
    .unwrap();
    let module = Module::new(&engine, &wasm, WASM2_FEATURES).unwrap();
    let mut store = Store::new(&engine);
    let instance = store.instantiate(&module, &[]).unwrap();
    let Some(Extern::Func(f)) = store.export(instance, "f") else {
        panic!("f export");
    };
    assert_eq!(store.call(f, &[]).unwrap(), vec![Val::I32(42)]);
}
