//! Translation against `wasmparser::Validator`, and compilation of what translation
//! accepts.
//!
//! With the WebAssembly 2.0 features, [`translate`] must accept a module exactly when the
//! validator does: a valid module is translated or refused as
//! [`ModuleErrorKind::Unsupported`], never as [`ModuleErrorKind::Invalid`]; an invalid one
//! is refused as `Invalid`. A translated module then goes through [`Module::new`]
//! (Cranelift and publication): it loads or fails with an error, but never panics, never
//! crashes, and never calls a module that passed validation invalid.
//!
//! The input's first byte picks the module: raw bytes (the rest of the input), or a
//! module wasm-smith generates from the rest with an arbitrary configuration (features on
//! and off, sometimes invalid function bodies), which reaches much deeper into the
//! compiler than random bytes do.

use arbitrary::Unstructured;
use kernel_core::wasm::compile::CompileError;
use kernel_core::wasm::env::{ModuleErrorKind, WASM2_FEATURES, translate};
use kernel_core::wasm::runtime::{LoadError, Module};
use wasmparser::Validator;

use crate::hosted_engine;

/// A wasm-smith module from an arbitrary configuration, kept small enough to compile
/// quickly; `None` when the input runs out.
fn smith_module(data: &[u8]) -> Option<Vec<u8>> {
    let mut input = Unstructured::new(data);
    let mut config: wasm_smith::Config = input.arbitrary().ok()?;
    config.max_funcs = config.max_funcs.min(40);
    config.max_instructions = config.max_instructions.min(200);
    config.max_types = config.max_types.min(40);
    config.max_imports = config.max_imports.min(20);
    config.max_exports = config.max_exports.min(40);
    config.max_globals = config.max_globals.min(40);
    config.max_table_elements = config.max_table_elements.min(1000);
    config.max_element_segments = config.max_element_segments.min(20);
    config.max_data_segments = config.max_data_segments.min(20);
    config.allow_invalid_funcs = input.arbitrary().ok()?;
    let module = wasm_smith::Module::new(config, &mut input).ok()?;
    Some(module.to_bytes())
}

/// The oracle of the `validate` target.
///
/// # Panics
/// On a finding: translation and the validator disagree, translation calls a valid module
/// invalid, or loading a translated module fails as invalid (or panics itself).
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let generated;
    let bytes = if mode & 1 == 0 {
        rest
    } else {
        match smith_module(rest) {
            Some(module) => {
                generated = module;
                &generated
            }
            None => return,
        }
    };
    check_module(bytes);
}

/// Checks one module binary (the part of [`check`] after choosing the bytes).
///
/// # Panics
/// As [`check`].
pub fn check_module(bytes: &[u8]) {
    let valid = Validator::new_with_features(WASM2_FEATURES)
        .validate_all(bytes)
        .map_err(|error| error.to_string());
    let translated = translate(bytes, WASM2_FEATURES);
    match (&valid, &translated) {
        (Ok(_), Ok(_)) => {}
        (Ok(_), Err(error)) => assert_ne!(
            error.kind,
            ModuleErrorKind::Invalid,
            "a valid module refused as invalid: {error}"
        ),
        (Err(reason), Ok(_)) => panic!("translation accepted an invalid module ({reason})"),
        (Err(_), Err(error)) => assert_eq!(
            error.kind,
            ModuleErrorKind::Invalid,
            "an invalid module refused as unsupported: {error}"
        ),
    }
    if translated.is_err() {
        return;
    }
    match Module::new(hosted_engine(), bytes, WASM2_FEATURES) {
        Ok(_)
        | Err(
            LoadError::Compile(CompileError::Unsupported(_))
            | LoadError::Layout(_)
            | LoadError::Memory(_)
            | LoadError::NotEnoughMemory { .. },
        ) => {}
        Err(LoadError::Module(error)) => assert_ne!(
            error.kind,
            ModuleErrorKind::Invalid,
            "loading refused a translated module as invalid: {error}"
        ),
        Err(error @ LoadError::Compile(_)) => {
            panic!("the compiler failed on a valid module: {error}")
        }
    }
}
