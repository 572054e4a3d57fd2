//! Laying compiled functions out in one blob and patching the calls between them.
//!
//! The only relocations generated code has are colocated calls to defined functions:
//! `X86CallPCRel4` (or `X86CallPLTRel4`) on x86-64, a 32-bit displacement patched as
//! `target + addend - place`, and `RiscvCallPlt` on riscv64, an `auipc`+`jalr` pair whose
//! 32-bit displacement is split into a high 20 bits (rounded so that the sign-extended low
//! 12 bits add back up) and a low 12 bits. Anything else is refused.

use alloc::vec::Vec;

use cranelift_codegen::binemit::Reloc;

use super::{CompileError, CompiledFunction, CompiledModule};
use crate::wasm::env::ModuleInfo;
use crate::wasm::indices::FuncIndex;
use crate::wasm::trap::Trap;

/// Every piece of code starts at a multiple of this.
const ALIGNMENT: usize = 16;

/// A call to patch.
#[derive(Clone)]
pub(super) struct Relocation {
    /// Where the patch goes, relative to the start of the calling function.
    pub offset: u32,
    /// The kind of patch.
    pub kind: Reloc,
    /// The called function.
    pub target: FuncIndex,
    /// What to add to the target's address.
    pub addend: i64,
}

/// One compiled function or trampoline, before layout.
#[derive(Clone)]
pub(super) struct Artifact {
    /// Its machine code.
    pub code: Vec<u8>,
    /// Calls to patch.
    pub relocations: Vec<Relocation>,
    /// Trapping instructions, relative to the start of `code`.
    pub traps: Vec<(u32, Trap)>,
    /// (code offset, WebAssembly offset), relative to the start of `code`.
    pub srclocs: Vec<(u32, u32)>,
}

/// Lays out the functions, then the shims and host trampolines (`type_slot[t]` is the
/// index among them of type `t`'s), then the entry trampoline, and patches every call.
pub(super) fn link(
    functions: Vec<Artifact>,
    shims: Vec<Artifact>,
    host_trampolines: Vec<Artifact>,
    type_slot: &[usize],
    entry: Artifact,
    module: &ModuleInfo,
) -> Result<CompiledModule, CompileError> {
    let mut code = Vec::new();
    let mut traps = Vec::new();
    let mut placed = |artifact: &Artifact| -> Result<u32, CompileError> {
        code.resize(code.len().next_multiple_of(ALIGNMENT), 0);
        let start = u32::try_from(code.len()).map_err(|_| too_large())?;
        start.checked_add(len(artifact)?).ok_or_else(too_large)?;
        code.extend_from_slice(&artifact.code);
        traps.extend(artifact.traps.iter().map(|&(at, trap)| (start + at, trap)));
        Ok(start)
    };

    let mut starts = Vec::with_capacity(functions.len());
    for function in &functions {
        starts.push(placed(function)?);
    }
    let shim_starts = shims
        .iter()
        .map(&mut placed)
        .collect::<Result<Vec<_>, _>>()?;
    let host_starts = host_trampolines
        .iter()
        .map(&mut placed)
        .collect::<Result<Vec<_>, _>>()?;
    let entry_trampoline = placed(&entry)?;

    // Trampolines only call through pointers.
    if shims
        .iter()
        .chain(&host_trampolines)
        .chain([&entry])
        .any(|artifact| !artifact.relocations.is_empty())
    {
        return Err(CompileError::Link("a trampoline has relocations".into()));
    }
    for (function, &start) in functions.iter().zip(&starts) {
        for relocation in &function.relocations {
            let defined = module.defined_function(relocation.target).ok_or_else(|| {
                CompileError::Link(alloc::format!(
                    "call to function {} which has no body",
                    relocation.target
                ))
            })?;
            let target = *starts.get(defined.index()).ok_or_else(|| {
                CompileError::Link(alloc::format!("no code for function {}", relocation.target))
            })?;
            let place = start.checked_add(relocation.offset).ok_or_else(too_large)?;
            patch(&mut code, place, target, relocation)?;
        }
    }
    traps.sort_by_key(|&(at, _)| at);

    let functions = functions
        .iter()
        .zip(&starts)
        .map(|(function, &start)| {
            Ok(CompiledFunction {
                offset: start,
                len: len(function)?,
                srclocs: function
                    .srclocs
                    .iter()
                    .map(|&(at, wasm)| (start + at, wasm))
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, CompileError>>()?;
    let by_type = |starts: &[u32]| -> Result<Vec<u32>, CompileError> {
        type_slot
            .iter()
            .map(|&slot| starts.get(slot).copied().ok_or_else(too_large))
            .collect()
    };
    Ok(CompiledModule {
        code,
        functions,
        traps,
        array_shims: by_type(&shim_starts)?,
        wasm_to_host: by_type(&host_starts)?,
        entry_trampoline,
    })
}

fn len(artifact: &Artifact) -> Result<u32, CompileError> {
    u32::try_from(artifact.code.len()).map_err(|_| too_large())
}

fn too_large() -> CompileError {
    CompileError::Link("compiled code larger than 4 GiB".into())
}

/// Patches the call at blob offset `place` to reach `target`.
fn patch(
    code: &mut [u8],
    place: u32,
    target: u32,
    relocation: &Relocation,
) -> Result<(), CompileError> {
    let displacement = i64::from(target) + relocation.addend - i64::from(place);
    let out_of_range = || {
        CompileError::Link(alloc::format!(
            "call displacement {displacement} out of range for {:?}",
            relocation.kind
        ))
    };
    let at = place as usize;
    match relocation.kind {
        Reloc::X86CallPCRel4 | Reloc::X86CallPLTRel4 => {
            let value = i32::try_from(displacement).map_err(|_| out_of_range())?;
            let bytes = code.get_mut(at..at + 4).ok_or_else(out_of_range)?;
            bytes.copy_from_slice(&value.to_le_bytes());
        }
        Reloc::RiscvCallPlt => {
            // auipc rd, hi20 ; jalr rd, lo12(rd): hi20 rounds so that the sign-extended
            // lo12 brings the sum back to the displacement.
            let high = (displacement + 0x800) >> 12;
            let low = displacement - (high << 12);
            if !(-(1 << 19)..(1 << 19)).contains(&high) {
                return Err(out_of_range());
            }
            let bytes = code.get_mut(at..at + 8).ok_or_else(out_of_range)?;
            let (auipc, jalr) = bytes.split_at_mut(4);
            let auipc_word = u32::from_le_bytes([auipc[0], auipc[1], auipc[2], auipc[3]]);
            let jalr_word = u32::from_le_bytes([jalr[0], jalr[1], jalr[2], jalr[3]]);
            // Truncations keep exactly the 20 and 12 bits of the immediates.
            #[expect(clippy::cast_sign_loss, reason = "two's-complement immediate fields")]
            let (high, low) = (high as u32 & 0xf_ffff, low as u32 & 0xfff);
            let auipc_word = (auipc_word & 0xfff) | (high << 12);
            let jalr_word = (jalr_word & 0x000f_ffff) | (low << 20);
            auipc.copy_from_slice(&auipc_word.to_le_bytes());
            jalr.copy_from_slice(&jalr_word.to_le_bytes());
        }
        other => {
            return Err(CompileError::Link(alloc::format!(
                "relocation kind {other:?} is not supported"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reloc(kind: Reloc, addend: i64) -> Relocation {
        Relocation {
            offset: 0,
            kind,
            target: FuncIndex::from_u32(0),
            addend,
        }
    }

    #[test]
    fn x86_displacement_is_relative_to_the_end_of_the_field() {
        let mut code = alloc::vec![0u8; 64];
        patch(&mut code, 10, 40, &reloc(Reloc::X86CallPCRel4, -4)).expect("patch");
        assert_eq!(
            i32::from_le_bytes(code[10..14].try_into().unwrap()),
            40 - 4 - 10
        );
    }

    /// Decodes the displacement an `auipc`+`jalr` pair reaches.
    fn riscv_displacement(code: &[u8]) -> i64 {
        let auipc = u32::from_le_bytes(code[0..4].try_into().unwrap());
        let jalr = u32::from_le_bytes(code[4..8].try_into().unwrap());
        let high = i64::from((auipc & 0xffff_f000).cast_signed());
        let low = i64::from(jalr.cast_signed() >> 20);
        high + low
    }

    #[test]
    fn riscv_pair_reaches_the_target() {
        // auipc ra, 0 ; jalr ra, 0(ra)
        let template = [0x97, 0x00, 0x00, 0x00, 0xe7, 0x80, 0x00, 0x00];
        for (place, target) in [
            (0u32, 0x1000u32),
            (0x4000, 0x10),
            (16, 0x7ff + 16),
            (0, 0x800),
            (0x12345, 0x6_0000),
        ] {
            let mut code = alloc::vec![0u8; 0x10_0000];
            code[place as usize..place as usize + 8].copy_from_slice(&template);
            patch(&mut code, place, target, &reloc(Reloc::RiscvCallPlt, 0)).expect("patch");
            let at = place as usize;
            assert_eq!(
                riscv_displacement(&code[at..at + 8]),
                i64::from(target) - i64::from(place)
            );
            // The register fields are untouched.
            assert_eq!(code[at] & 0x7f, 0x17);
            assert_eq!(code[at + 4] & 0x7f, 0x67);
        }
    }

    #[test]
    fn other_relocations_are_refused() {
        let mut code = alloc::vec![0u8; 16];
        assert!(matches!(
            patch(&mut code, 0, 8, &reloc(Reloc::Abs8, 0)),
            Err(CompileError::Link(_))
        ));
    }
}
