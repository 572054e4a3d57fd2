//! `sim wast FILE...`: run spec scripts on the hosted kernel.

use std::path::PathBuf;

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::spectest::RuntimeSpecEngine;
use kernel_core::wasm::env::{WASM1_FEATURES, WASM2_FEATURES, WasmFeatures};
use kernel_core::wasm::runtime::{Engine, EngineConfig};

use crate::exit::Status;

/// Which WebAssembly version the scripts are written against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpecVersion {
    /// WebAssembly 1.0 (the `wasm-v1` scripts).
    V1,
    /// WebAssembly 2.0 with SIMD (the `wasm-v2` and `proposals/simd` scripts).
    V2,
}

impl SpecVersion {
    fn features(self) -> WasmFeatures {
        match self {
            Self::V1 => WASM1_FEATURES,
            Self::V2 => WASM2_FEATURES,
        }
    }
}

/// Runs every script, prints each failure as `file:line: message`, then the total
/// `N passed, M failed`.
pub fn run(files: &[PathBuf], version: SpecVersion) -> Status {
    let engine = Engine::new(
        HostedHal::new(HostedConfig::default()),
        EngineConfig::default(),
    );
    let (mut passed, mut failed) = (0u64, 0u64);
    for path in files {
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", path.display());
                return Status::Io;
            }
        };
        let commands = match sim::wast_script::parse_script(&source, path) {
            Ok(commands) => commands,
            Err(error) => {
                println!("{}: {error}", path.display());
                failed += 1;
                continue;
            }
        };
        let mut spec_engine = match RuntimeSpecEngine::new(&engine, version.features()) {
            Ok(spec_engine) => spec_engine,
            Err(error) => {
                eprintln!("kernel failure: cannot set up the spectest module: {error}");
                return Status::KernelFailure;
            }
        };
        let summary = kernel_core::spec::run(&mut spec_engine, &commands);
        for failure in &summary.failures {
            println!("{}:{}: {}", path.display(), failure.line, failure.message);
        }
        passed += u64::from(summary.passed);
        failed += u64::from(summary.failed);
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        Status::Success
    } else {
        Status::ScriptFailures
    }
}
