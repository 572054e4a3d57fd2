//! The Cranelift target for each [`Isa`] the kernel runs on.
//!
//! Every target gets the same shared settings: optimise for speed, keep frame pointers
//! (the trap handler walks them for backtraces), no stack probes (the prologue's stack
//! limit check and the guard page do that job), no unwind tables, implicit return areas for
//! functions with many results, and the IR verifier in debug builds only.
//!
//! The ISA extensions are the ones that spare Cranelift every libcall for the WebAssembly
//! operators, SIMD included: on x86-64, SSE4.1 gives `roundss`/`roundsd`/`roundps`/`roundpd`
//! for `ceil`, `floor`, `trunc` and `nearest` and the `pmovsx`/`pmovzx`/`pminsd`... family,
//! SSSE3 `pshufb` (swizzles and shuffles), SSE4.2 `pcmpgtq` (`i64x2` comparisons), with SSE3
//! and POPCNT as the usual baseline; no AVX, so the code runs on any x86-64 machine of the
//! last fifteen years. riscv64 is the G profile (M, A, F, D, Zicsr, Zifencei), plus the V
//! extension with vectors of at least 128 bits (`has_v`, `zvl128b`), which every `v128`
//! operation needs (see `simd` for what that asks of the platform), only when the HAL
//! reports a vector unit of at least 128 bits ([`IsaFeatures::vector`]); without one the
//! engine refuses modules that use `v128` before compiling them. The linker refuses any
//! relocation it cannot resolve, so a lowering that still needed a libcall would surface as
//! a [`CompileError::Link`], not as a bad call.

use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};

use super::CompileError;
use crate::hal::{Isa, IsaFeatures};

/// Builds the Cranelift target for `isa` with a 128-bit vector unit
/// ([`IsaFeatures::WITH_128_BIT_VECTORS`]).
///
/// # Errors
/// As [`target_isa_with`].
pub fn target_isa(isa: Isa) -> Result<OwnedTargetIsa, CompileError> {
    target_isa_with(isa, IsaFeatures::WITH_128_BIT_VECTORS)
}

/// Whether `features` has the vector unit WebAssembly SIMD needs (128-bit registers).
#[must_use]
pub fn has_simd_unit(features: IsaFeatures) -> bool {
    features
        .vector
        .is_some_and(|vector| vector.vlen_bits >= 128)
}

/// Builds the Cranelift target for `isa` on CPUs with `features`: riscv64's V extension
/// flags (`has_v`, `zvl128b`) are set only when [`has_simd_unit`]. The x86-64 baseline
/// does not depend on `features`: scalar code needs SSE4.1 for rounding too.
///
/// # Errors
/// [`CompileError::Isa`] when this build of kernel-core has no backend for `isa` (the
/// riscv64 kernel carries only its own) or Cranelift refuses a setting.
pub fn target_isa_with(isa: Isa, features: IsaFeatures) -> Result<OwnedTargetIsa, CompileError> {
    target_isa_for(isa, features, Regalloc::Backtracking)
}

/// Which register allocator a target uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Regalloc {
    /// Cranelift's default, the backtracking allocator: the best code, but its time grows
    /// faster than linearly with the values live at once (a function keeping 59 000
    /// values live across a call took 1.6 s of CPU time to compile hosted).
    Backtracking,
    /// The single-pass allocator: more moves and spills, compile time linear in the
    /// function's size (the same function in 0.23 s). For very large functions only
    /// ([`super::job`]).
    SinglePass,
}

/// [`target_isa_with`] with the register allocator `regalloc`.
///
/// # Errors
/// As [`target_isa_with`].
pub(super) fn target_isa_for(
    isa: Isa,
    features: IsaFeatures,
    regalloc: Regalloc,
) -> Result<OwnedTargetIsa, CompileError> {
    let mut shared = settings::builder();
    let shared_settings: [(&str, &str); 9] = [
        (
            "regalloc_algorithm",
            match regalloc {
                Regalloc::Backtracking => "backtracking",
                Regalloc::SinglePass => "single_pass",
            },
        ),
        ("opt_level", "speed"),
        ("preserve_frame_pointers", "true"),
        ("enable_probestack", "false"),
        ("unwind_info", "false"),
        ("enable_multi_ret_implicit_sret", "true"),
        (
            "enable_verifier",
            if cfg!(debug_assertions) {
                "true"
            } else {
                "false"
            },
        ),
        ("is_pic", "false"),
        ("enable_nan_canonicalization", "false"),
    ];
    for (name, value) in shared_settings {
        shared
            .set(name, value)
            .map_err(|error| setting_error(name, &error))?;
    }
    let flags = settings::Flags::new(shared);

    let (triple, extensions): (&str, &[&str]) = match isa {
        Isa::X86_64 => (
            "x86_64-unknown-none-elf",
            &[
                "has_sse3",
                "has_ssse3",
                "has_sse41",
                "has_sse42",
                "has_popcnt",
            ],
        ),
        Isa::Riscv64 if has_simd_unit(features) => (
            "riscv64gc-unknown-none-elf",
            &[
                "has_m",
                "has_a",
                "has_f",
                "has_d",
                "has_zicsr",
                "has_zifencei",
                "has_v",
                "zvl128b",
            ],
        ),
        Isa::Riscv64 => (
            "riscv64gc-unknown-none-elf",
            &[
                "has_m",
                "has_a",
                "has_f",
                "has_d",
                "has_zicsr",
                "has_zifencei",
            ],
        ),
    };
    let mut builder = isa::lookup_by_name(triple)
        .map_err(|error| CompileError::Isa(alloc::format!("{isa}: {error}")))?;
    for name in extensions {
        builder
            .enable(name)
            .map_err(|error| setting_error(name, &error))?;
    }
    builder
        .finish(flags)
        .map_err(|error| CompileError::Isa(alloc::format!("{isa}: {error}")))
}

fn setting_error(name: &str, error: &settings::SetError) -> CompileError {
    CompileError::Isa(alloc::format!("setting `{name}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_targets_build_on_the_host() {
        for isa in [Isa::X86_64, Isa::Riscv64] {
            let target = target_isa(isa).expect("target");
            assert!(target.flags().preserve_frame_pointers());
            assert!(!target.flags().enable_probestack());
            assert!(!target.flags().unwind_info());
            assert_eq!(target.pointer_bytes(), 8);
        }
    }

    #[test]
    fn x86_64_has_sse41_for_rounding() {
        let target = target_isa(Isa::X86_64).expect("target");
        let names: alloc::vec::Vec<_> = target
            .isa_flags()
            .into_iter()
            .filter(|v| v.as_bool() == Some(true))
            .map(|v| v.name)
            .collect();
        for needed in ["has_ssse3", "has_sse41", "has_sse42", "has_popcnt"] {
            assert!(names.contains(&needed), "{needed} missing from {names:?}");
        }
        // The safe baseline: SIMD is lowered without AVX.
        assert!(!names.contains(&"has_avx"), "{names:?}");
    }

    #[test]
    fn riscv64_has_128_bit_vectors() {
        let target = target_isa(Isa::Riscv64).expect("target");
        let enabled: alloc::vec::Vec<_> = target
            .isa_flags()
            .into_iter()
            .filter(|v| v.as_bool() == Some(true))
            .map(|v| v.name)
            .collect();
        for needed in ["has_v", "has_zvl128b"] {
            assert!(
                enabled.contains(&needed),
                "{needed} missing from {enabled:?}"
            );
        }
        // Nothing wider: the kernel must run on any V implementation.
        assert!(!enabled.contains(&"has_zvl256b"));
    }

    #[test]
    fn riscv64_without_a_vector_unit_has_no_vector_flags() {
        let enabled = |features| -> alloc::vec::Vec<_> {
            target_isa_with(Isa::Riscv64, features)
                .expect("target")
                .isa_flags()
                .into_iter()
                .filter(|v| v.as_bool() == Some(true))
                .map(|v| v.name)
                .collect()
        };
        let scalar = enabled(IsaFeatures::BASE);
        assert!(!scalar.contains(&"has_v"), "{scalar:?}");
        assert!(!scalar.contains(&"has_zvl128b"), "{scalar:?}");
        assert!(scalar.contains(&"has_d"), "{scalar:?}");
        let narrow = IsaFeatures {
            vector: Some(crate::hal::VectorFeatures { vlen_bits: 64 }),
        };
        assert!(!enabled(narrow).contains(&"has_v"));
        let wide = IsaFeatures {
            vector: Some(crate::hal::VectorFeatures { vlen_bits: 512 }),
        };
        assert!(enabled(wide).contains(&"has_v"));
    }
}
