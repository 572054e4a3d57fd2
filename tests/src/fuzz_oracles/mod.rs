//! Fuzz oracles: each takes the raw input of one cargo-fuzz target and panics on a finding.
//!
//! They live here, in the `tests` crate's library, so that the same code runs in two
//! places: the thin libFuzzer targets in `fuzz/fuzz_targets/` (the `fuzz` crate depends on
//! this crate by path), and `tests/fuzz_regressions.rs`, which replays every input kept
//! under `tests/fuzz-regressions/<target>/` on each ordinary `cargo test`.
//!
//! | target | oracle |
//! | --- | --- |
//! | `vmshape` | [`vmshape::check`]: the VMContext layout against a 64-bit model |
//! | `validate` | [`validate::check`]: translation agrees with `wasmparser::Validator`; compiling never panics |
//! | `differential` | [`differential::check`]: wasm-smith modules run on kernel-core and on `wasmi` |
//! | `traps` | [`traps::check`]: modules built to trap at chosen points, against a model |
//! | `hosted_qemu` | [`hosted_qemu::check`] hosted, then one QEMU boot for every kept input ([`hosted_qemu::check_in_qemu`]): the `differential` target's modules on hal-hosted and on hal-riscv in QEMU |

pub mod differential;
pub mod hosted_qemu;
pub mod traps;
pub mod validate;
pub mod vmshape;

/// An oracle: takes a fuzz input, panics on a finding.
pub type Oracle = fn(&[u8]);

/// Every target, by the name of its directory under `tests/fuzz-regressions/`, with its
/// oracle.
pub const TARGETS: [(&str, Oracle); 5] = [
    ("vmshape", vmshape::check),
    ("validate", validate::check),
    ("differential", differential::check),
    ("traps", traps::check),
    ("hosted_qemu", hosted_qemu::check),
];
