//! Shared support of the integration tests in `tests/tests/`: the hosted engine, and the
//! fuzz oracles that both the cargo-fuzz targets in `fuzz/` and
//! `tests/fuzz_regressions.rs` run.

use std::sync::OnceLock;

use hal_hosted::{HostedConfig, HostedHal};
use kernel_core::wasm::runtime::{Engine, EngineConfig};

pub mod fuzz_oracles;

/// The engine every test of a test process shares: an engine installs the process-wide
/// trap handler, so one per process is the honest model.
pub fn hosted_engine() -> &'static Engine<HostedHal> {
    static ENGINE: OnceLock<Engine<HostedHal>> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(
            HostedHal::new(HostedConfig::default()),
            EngineConfig::default(),
        )
    })
}
