//! `sim compile FILE [--func N] [--ir] [--asm] [--isa x86_64|riscv64]`: the Cranelift IR
//! and the machine code of a module's functions, for either ISA from any host.
//!
//! The code is kernel-core's own compilation of each function
//! ([`kernel_core::wasm::compile::inspect_function`]), disassembled with Capstone, which
//! decodes both x86-64 and riscv64 (with compressed instructions) from one library.
//! Instructions Capstone cannot decode (the riscv64 vector extension, which Capstone 5
//! does not know) are shown as `.word` lines rather than hidden. Each instruction is annotated with the
//! WebAssembly offset its operator starts at, the trap it may raise, and the function a
//! call goes to (calls are shown before linking patches them).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use capstone::prelude::*;
use kernel_core::hal::{Isa, IsaFeatures};
use kernel_core::wasm::compile::{
    CompileOptions, FunctionListing, inspect_function, target_isa_with,
};
use kernel_core::wasm::env::{ModuleInfo, VMShape, WASM2_FEATURES, translate};
use kernel_core::wasm::indices::FuncIndex;
use kernel_core::wasm::runtime::escape_name;

use crate::exit::Status;
use crate::module_file;

/// The ISA to compile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsaArg {
    /// x86-64 (what the hosted kernel runs).
    #[value(name = "x86_64")]
    X86_64,
    /// riscv64gc with the V extension (what the kernel runs under QEMU).
    #[value(name = "riscv64")]
    Riscv64,
}

/// The arguments of `sim compile`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompileArgs {
    /// The module file (`.wasm` or `.wat`).
    file: PathBuf,
    /// Only this function: its index in the module (imports count) or its name from the
    /// name section.
    #[arg(long, value_name = "N")]
    func: Option<String>,
    /// Print the Cranelift IR (as translated, before Cranelift optimizes it).
    #[arg(long)]
    ir: bool,
    /// Print the disassembled machine code.
    #[arg(long)]
    asm: bool,
    /// The ISA to compile for (default: x86_64).
    #[arg(long, value_enum, default_value = "x86_64")]
    isa: IsaArg,
}

/// Runs `sim compile`.
pub fn run(args: &CompileArgs) -> Status {
    let wasm = match module_file::read(&args.file) {
        Ok(bytes) => bytes,
        Err(status) => return status,
    };
    let module = match translate(&wasm, WASM2_FEATURES) {
        Ok(module) => module,
        Err(error) => {
            eprintln!("error: {}: {error}", args.file.display());
            return Status::for_module_error(&error);
        }
    };
    let shape = match VMShape::for_module(&module) {
        Ok(shape) => shape,
        Err(error) => {
            eprintln!("error: {}: {error}", args.file.display());
            return Status::UnsupportedModule;
        }
    };
    let isa = match args.isa {
        IsaArg::X86_64 => Isa::X86_64,
        IsaArg::Riscv64 => Isa::Riscv64,
    };
    if let Err(error) = target_isa_with(isa, IsaFeatures::WITH_128_BIT_VECTORS) {
        eprintln!("error: {error}");
        return Status::UnsupportedModule;
    }
    let functions = match selected_functions(&module, args.func.as_deref()) {
        Ok(functions) => functions,
        Err(message) => {
            eprintln!("error: {message}");
            return Status::Usage;
        }
    };
    let (show_ir, show_asm) = if args.ir || args.asm {
        (args.ir, args.asm)
    } else {
        (true, true)
    };
    let mut out = String::new();
    for index in functions {
        let listing = match inspect_function(
            isa,
            IsaFeatures::WITH_128_BIT_VECTORS,
            CompileOptions::default(),
            &module,
            &wasm,
            &shape,
            index,
        ) {
            Ok(listing) => listing,
            Err(error) => {
                eprintln!("error: {}: {error}", args.file.display());
                return Status::UnsupportedModule;
            }
        };
        let name = module
            .function_names
            .get(&index)
            .map_or_else(String::new, |name| format!(" {}", escape_name(name)));
        let _ = writeln!(
            out,
            ";; function {index}{name} ({isa}, {} bytes of code)",
            listing.code.len()
        );
        if show_ir {
            let _ = writeln!(out, ";; Cranelift IR");
            out.push_str(&listing.ir);
        }
        if show_asm {
            let _ = writeln!(out, ";; {isa} machine code");
            match disassemble(isa, &listing, &module) {
                Ok(text) => out.push_str(&text),
                Err(error) => {
                    eprintln!("error: the disassembler failed: {error}");
                    return Status::KernelFailure;
                }
            }
        }
        out.push('\n');
    }
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Status::Success,
        Err(error) => {
            eprintln!("error: the listing could not be written: {error}");
            Status::OutputFailed
        }
    }
}

/// The defined functions to show: all, or the one `func` names (index or name).
fn selected_functions(module: &ModuleInfo, func: Option<&str>) -> Result<Vec<FuncIndex>, String> {
    let first = module.num_imported_functions;
    let end = first + module.num_defined_functions();
    let Some(func) = func else {
        return Ok((first..end).map(FuncIndex::from_u32).collect());
    };
    let index = match func.parse::<u32>() {
        Ok(index) => index,
        Err(_) => module
            .function_names
            .iter()
            .find(|(_, name)| name.as_str() == func)
            .map(|(index, _)| index.as_u32())
            .ok_or_else(|| format!("the module has no function named `{}`", escape_name(func)))?,
    };
    if index < first {
        return Err(format!(
            "function {index} is imported: it has no code (the module's own functions are {first} to {})",
            end.saturating_sub(1)
        ));
    }
    if index >= end {
        return Err(format!(
            "no function {index}: the module has {end} functions (imports included)"
        ));
    }
    Ok(vec![FuncIndex::from_u32(index)])
}

/// A Capstone disassembler for `isa`.
fn disassembler(isa: Isa) -> Result<Capstone, capstone::Error> {
    match isa {
        Isa::X86_64 => Capstone::new()
            .x86()
            .mode(arch::x86::ArchMode::Mode64)
            .syntax(arch::x86::ArchSyntax::Intel)
            .build(),
        Isa::Riscv64 => Capstone::new()
            .riscv()
            .mode(arch::riscv::ArchMode::RiscV64)
            .extra_mode([arch::riscv::ArchExtraMode::RiscVC].into_iter())
            .build(),
    }
}

/// One line of a listing: the instruction at `start`, its bytes and its text.
struct Decoded {
    start: u32,
    bytes: Vec<u8>,
    text: String,
}

/// Decodes `code` one instruction at a time. What Capstone cannot decode (the riscv64
/// vector extension) is shown as one `.word` (riscv64: the instruction's length follows
/// from its low two bits) or one `.byte` (x86-64), so that decoding resumes at the next
/// real instruction instead of inside this one.
fn decode(isa: Isa, code: &[u8]) -> Result<Vec<Decoded>, capstone::Error> {
    let capstone = disassembler(isa)?;
    let mut lines = Vec::new();
    let mut offset = 0usize;
    while offset < code.len() {
        let start = u32::try_from(offset).unwrap_or(u32::MAX);
        let rest = &code[offset..];
        let decoded = capstone.disasm_count(rest, u64::from(start), 1)?;
        if let Some(instruction) = decoded.iter().next() {
            let len = instruction.bytes().len().max(1);
            let text = format!(
                "{} {}",
                instruction.mnemonic().unwrap_or("?"),
                instruction.op_str().unwrap_or("")
            );
            lines.push(Decoded {
                start,
                bytes: rest[..len].to_vec(),
                text: text.trim_end().to_owned(),
            });
            offset += len;
            continue;
        }
        let len = match isa {
            Isa::Riscv64 if rest[0] & 3 == 3 && rest.len() >= 4 => 4,
            Isa::Riscv64 if rest.len() >= 2 => 2,
            _ => 1,
        };
        let bytes = &rest[..len];
        let text = match len {
            4 => format!(
                ".word {:#010x}  (not known to Capstone)",
                u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
            ),
            2 => format!(
                ".half {:#06x}  (not known to Capstone)",
                u16::from_le_bytes([bytes[0], bytes[1]])
            ),
            _ => format!(".byte {:#04x}  (not known to Capstone)", bytes[0]),
        };
        lines.push(Decoded {
            start,
            bytes: bytes.to_vec(),
            text,
        });
        offset += len;
    }
    Ok(lines)
}

/// The disassembly of `listing`, one instruction a line: offset, bytes, instruction and
/// annotations.
fn disassemble(
    isa: Isa,
    listing: &FunctionListing,
    module: &ModuleInfo,
) -> Result<String, capstone::Error> {
    let mut out = String::new();
    for line in decode(isa, &listing.code)? {
        let start = line.start;
        let len = u32::try_from(line.bytes.len()).unwrap_or(0);
        let end = start.saturating_add(len);
        let inside = |offset: u32| (start..end).contains(&offset);
        let mut notes = Vec::new();
        if let Some((_, wasm)) = listing.srclocs.iter().find(|(at, _)| *at == start) {
            notes.push(format!("wasm {wasm:#x}"));
        }
        for (_, trap) in listing.traps.iter().filter(|(at, _)| inside(*at)) {
            notes.push(format!("trap: {}", trap.message()));
        }
        for (_, target) in listing.calls.iter().filter(|(at, _)| inside(*at)) {
            let name = module
                .function_names
                .get(target)
                .map_or_else(String::new, |name| format!(" {}", escape_name(name)));
            notes.push(format!(
                "call function {target}{name} (patched when linked)"
            ));
        }
        let bytes: String = line
            .bytes
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let _ = write!(out, "  {start:6x}:  {bytes:<20} {:<40}", line.text);
        if !notes.is_empty() {
            let _ = write!(out, " ; {}", notes.join("; "));
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    Ok(out)
}
