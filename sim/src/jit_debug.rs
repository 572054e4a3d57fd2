//! Naming JIT-compiled WebAssembly for profilers and debuggers, hosted: the perf map
//! (`/tmp/perf-<pid>.map`, read by `perf report`) and GDB's JIT interface (an in-memory
//! ELF object per module, with a symbol for each function, so `gdb --args sim run ...` can
//! `break` on a WebAssembly function by name).
//!
//! Both are fed by kernel-core's HAL-neutral code observer
//! ([`kernel_core::wasm::runtime::observer`]), which the engine calls when it publishes a
//! module's code and before it releases it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::sync::Mutex;

use kernel_core::wasm::runtime::observer::{CodeObserver, PublishedFunction, set_code_observer};
use kernel_core::wasm::runtime::{CodeInfo, escape_name};

/// The name a profiler or debugger shows for a function: its escaped name from the name
/// section, else `wasm-function[N]`.
pub fn function_symbol(function: &PublishedFunction<'_>) -> String {
    match function.name {
        Some(name) => escape_name(name),
        None => format!("wasm-function[{}]", function.index),
    }
}

/// The module part of a perf map name: the escaped module name, else `wasm`.
fn module_label(code: &CodeInfo) -> String {
    code.module_name
        .as_deref()
        .map_or_else(|| "wasm".to_owned(), escape_name)
}

/// The name of the code after a module's functions: its trampolines (array shims,
/// wasm-to-host trampolines, the entry trampoline).
pub const TRAMPOLINES: &str = "<trampolines>";

/// Where a module's trampolines lie: from the end of its last function to the end of its
/// code, `(address, len)`; `None` when that is empty.
fn trampolines(code: &CodeInfo) -> Option<(usize, usize)> {
    // Every piece of the blob starts 16-byte aligned (`wasm::compile`'s linker), and the
    // code starts on a page.
    let first = code
        .published_functions()
        .last()
        .map_or(code.start, |function| function.address + function.len)
        .next_multiple_of(16);
    let end = code.start + code.len;
    (end > first).then(|| (first, end - first))
}

/// The perf map lines of a module's code: `START SIZE module!function` for each function,
/// then `module!<trampolines>`; addresses and sizes in hex without `0x`, as `perf` reads
/// them.
pub fn perf_map_lines(code: &CodeInfo) -> String {
    let module = module_label(code);
    let mut text = String::new();
    for function in code.published_functions() {
        let _ = writeln!(
            text,
            "{:x} {:x} {module}!{}",
            function.address,
            function.len,
            function_symbol(&function)
        );
    }
    if let Some((address, len)) = trampolines(code) {
        let _ = writeln!(text, "{address:x} {len:x} {module}!{TRAMPOLINES}");
    }
    text
}

/// The hosted observer: appends to the perf map when asked to, and registers every module
/// with GDB.
struct HostedObserver {
    perf_map: Option<Mutex<File>>,
}

impl CodeObserver for HostedObserver {
    fn published(&self, code: &CodeInfo) {
        if let Some(file) = &self.perf_map {
            let lines = perf_map_lines(code);
            let mut file = file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A profiler's map is best effort: a full disk must not stop the kernel.
            let _ = file.write_all(lines.as_bytes());
        }
        gdb::register(code);
    }

    fn released(&self, code: &CodeInfo) {
        gdb::unregister(code);
    }
}

/// Installs the observer before the kernel boots: the GDB JIT interface always (it costs
/// one small ELF image per loaded module), the perf map `/tmp/perf-<pid>.map` when
/// `perf_map` is set.
///
/// # Errors
/// The perf map cannot be created.
pub fn install(perf_map: bool) -> std::io::Result<()> {
    let perf_map = if perf_map {
        let path = format!("/tmp/perf-{}.map", std::process::id());
        Some(Mutex::new(File::create(path)?))
    } else {
        None
    };
    let observer: &'static HostedObserver = Box::leak(Box::new(HostedObserver { perf_map }));
    // Only `main` installs, once.
    let _ = set_code_observer(observer);
    Ok(())
}

/// GDB's JIT compilation interface (GDB manual, "JIT Compilation Interface"): GDB puts a
/// breakpoint in `__jit_debug_register_code` and, when it is hit, reads the entry named by
/// `__jit_debug_descriptor.relevant_entry` as an in-memory object file.
pub mod gdb {
    use super::{CodeInfo, HashMap, Mutex, function_symbol};

    /// `jit_actions_t`.
    const JIT_REGISTER: u32 = 1;
    const JIT_UNREGISTER: u32 = 2;

    /// `struct jit_code_entry`.
    #[repr(C)]
    struct JitCodeEntry {
        next: *mut JitCodeEntry,
        prev: *mut JitCodeEntry,
        symfile_addr: *const u8,
        symfile_size: u64,
    }

    /// `struct jit_descriptor`.
    #[repr(C)]
    pub struct JitDescriptor {
        version: u32,
        action_flag: u32,
        relevant_entry: *mut JitCodeEntry,
        first_entry: *mut JitCodeEntry,
    }

    /// The descriptor GDB reads, by this exact name.
    #[unsafe(no_mangle)]
    pub static mut __jit_debug_descriptor: JitDescriptor = JitDescriptor {
        version: 1,
        action_flag: 0,
        relevant_entry: std::ptr::null_mut(),
        first_entry: std::ptr::null_mut(),
    };

    /// The function GDB breaks on, by this exact name; it must stay a real call.
    #[unsafe(no_mangle)]
    #[inline(never)]
    pub extern "C" fn __jit_debug_register_code() {
        // Safety: an empty asm statement touches nothing; it only keeps the function and
        // the calls to it from being optimized away (asm counts as a side effect).
        unsafe { std::arch::asm!("", options(nostack, preserves_flags)) };
    }

    /// An entry handed to GDB and the ELF image it points at, kept alive until
    /// unregistered.
    struct Registered {
        entry: *mut JitCodeEntry,
        _image: Box<[u8]>,
    }

    // Safety: the entry pointer is only used under `REGISTERED`'s lock.
    unsafe impl Send for Registered {}

    /// The registered modules by code start address. The lock also serializes every
    /// change of the descriptor.
    static REGISTERED: Mutex<Option<HashMap<usize, Registered>>> = Mutex::new(None);

    /// Registers `code` with GDB.
    pub fn register(code: &CodeInfo) {
        let image = super::elf::image(code, function_symbol).into_boxed_slice();
        let entry = Box::into_raw(Box::new(JitCodeEntry {
            next: std::ptr::null_mut(),
            prev: std::ptr::null_mut(),
            symfile_addr: image.as_ptr(),
            symfile_size: image.len() as u64,
        }));
        let mut registered = REGISTERED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let descriptor = &raw mut __jit_debug_descriptor;
        // Safety: the descriptor and the entries are only changed under the lock held
        // here; `entry` is a fresh allocation, and `first_entry` is null or an entry of
        // `REGISTERED`, still alive.
        unsafe {
            let first = (*descriptor).first_entry;
            (*entry).next = first;
            if !first.is_null() {
                (*first).prev = entry;
            }
            (*descriptor).first_entry = entry;
            (*descriptor).relevant_entry = entry;
            (*descriptor).action_flag = JIT_REGISTER;
        }
        __jit_debug_register_code();
        if let Some(old) = registered.get_or_insert_with(HashMap::new).insert(
            code.start,
            Registered {
                entry,
                _image: image,
            },
        ) {
            // A module released without being unregistered: drop the stale entry.
            // Safety: as above; `old.entry` was linked by an earlier `register`.
            unsafe { unlink(old.entry) };
        }
    }

    /// Unregisters `code` from GDB, if it was registered.
    pub fn unregister(code: &CodeInfo) {
        let mut registered = REGISTERED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = registered.as_mut().and_then(|map| map.remove(&code.start)) {
            // Safety: under the lock; `old.entry` is linked and alive.
            unsafe { unlink(old.entry) };
        }
    }

    /// Unlinks `entry` from the descriptor's list, tells GDB, and frees it.
    ///
    /// # Safety
    /// `REGISTERED`'s lock is held and `entry` is a linked entry made by [`register`].
    unsafe fn unlink(entry: *mut JitCodeEntry) {
        let descriptor = &raw mut __jit_debug_descriptor;
        // Safety: the caller holds the lock and `entry` is linked, so its neighbours are
        // live entries too.
        unsafe {
            let (prev, next) = ((*entry).prev, (*entry).next);
            if prev.is_null() {
                (*descriptor).first_entry = next;
            } else {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*descriptor).relevant_entry = entry;
            (*descriptor).action_flag = JIT_UNREGISTER;
        }
        __jit_debug_register_code();
        // Safety: as above; GDB is done with the entry once the call returned.
        unsafe {
            (*descriptor).relevant_entry = std::ptr::null_mut();
            drop(Box::from_raw(entry));
        }
    }
}

/// The in-memory ELF object GDB reads for one module: a relocatable ELF64 with a `.text`
/// section (`SHT_NOBITS`, at the code's real address) and a symbol per function.
pub mod elf {
    use super::{CodeInfo, PublishedFunction};

    const SECTION_HEADER_SIZE: usize = 64;
    const SYMBOL_SIZE: usize = 24;

    /// The ELF machine of this host.
    const MACHINE: u16 = if cfg!(target_arch = "riscv64") {
        243
    } else {
        62
    };

    /// Builds the object for `code`, naming each function with `name`.
    pub fn image(code: &CodeInfo, name: impl Fn(&PublishedFunction<'_>) -> String) -> Vec<u8> {
        // String tables: index 0 is the empty name.
        let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0";
        let (text_name, symtab_name, strtab_name, shstrtab_name) = (1u32, 7u32, 15u32, 23u32);
        let mut strtab = vec![0u8];
        let mut symtab = vec![0u8; SYMBOL_SIZE];
        let symbols = code
            .published_functions()
            .map(|function| (name(&function), function.address, function.len))
            .chain(
                super::trampolines(code)
                    .map(|(address, len)| (super::TRAMPOLINES.to_owned(), address, len)),
            );
        for (symbol, address, len) in symbols {
            let name_offset = u32::try_from(strtab.len()).unwrap_or(0);
            strtab.extend_from_slice(symbol.as_bytes());
            strtab.push(0);
            let value = address - code.start;
            symtab.extend_from_slice(&name_offset.to_le_bytes());
            symtab.push(0x12); // STB_GLOBAL << 4 | STT_FUNC
            symtab.push(0); // st_other: default visibility
            symtab.extend_from_slice(&1u16.to_le_bytes()); // st_shndx: .text
            symtab.extend_from_slice(&(value as u64).to_le_bytes());
            symtab.extend_from_slice(&(len as u64).to_le_bytes());
        }
        let symtab_offset = 64usize;
        let strtab_offset = symtab_offset + symtab.len();
        let shstrtab_offset = strtab_offset + strtab.len();
        let headers_offset = (shstrtab_offset + shstrtab.len()).next_multiple_of(8);

        let mut out = Vec::with_capacity(headers_offset + 5 * SECTION_HEADER_SIZE);
        out.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
        out.extend_from_slice(&MACHINE.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
        out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
        out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
        out.extend_from_slice(&(headers_offset as u64).to_le_bytes()); // e_shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        out.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        out.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
        out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
        out.extend_from_slice(&(SECTION_HEADER_SIZE as u16).to_le_bytes());
        out.extend_from_slice(&5u16.to_le_bytes()); // e_shnum
        out.extend_from_slice(&4u16.to_le_bytes()); // e_shstrndx
        out.extend_from_slice(&symtab);
        out.extend_from_slice(&strtab);
        out.extend_from_slice(shstrtab);
        out.resize(headers_offset, 0);

        let mut section = |name: u32,
                           kind: u32,
                           flags: u64,
                           addr: u64,
                           offset: usize,
                           size: usize,
                           link: u32,
                           info: u32,
                           align: u64,
                           entsize: u64| {
            out.extend_from_slice(&name.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&addr.to_le_bytes());
            out.extend_from_slice(&(offset as u64).to_le_bytes());
            out.extend_from_slice(&(size as u64).to_le_bytes());
            out.extend_from_slice(&link.to_le_bytes());
            out.extend_from_slice(&info.to_le_bytes());
            out.extend_from_slice(&align.to_le_bytes());
            out.extend_from_slice(&entsize.to_le_bytes());
        };
        section(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        // .text: SHT_NOBITS, SHF_ALLOC | SHF_EXECINSTR, at the published code.
        section(
            text_name,
            8,
            0x6,
            code.start as u64,
            0,
            code.len,
            0,
            0,
            16,
            0,
        );
        // .symtab: SHT_SYMTAB, linked to .strtab; every symbol after the null one is global.
        section(
            symtab_name,
            2,
            0,
            0,
            symtab_offset,
            symtab.len(),
            3,
            1,
            8,
            SYMBOL_SIZE as u64,
        );
        section(
            strtab_name,
            3,
            0,
            0,
            strtab_offset,
            strtab.len(),
            0,
            0,
            1,
            0,
        );
        section(
            shstrtab_name,
            3,
            0,
            0,
            shstrtab_offset,
            shstrtab.len(),
            0,
            0,
            1,
            0,
        );
        out
    }
}
