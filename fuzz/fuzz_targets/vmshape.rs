//! Arbitrary (often hostile) counts into the VMContext layout: exactly the model's error
//! or layout (in order, aligned, disjoint, inside `size`), every `vmctx_*` accessor in
//! range or refused. Never a panic. The oracle is `tests::fuzz_oracles::vmshape`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tests::fuzz_oracles::vmshape::check(data));
