//! Replays every input kept under `tests/fuzz-regressions/<target>/` through the oracle of
//! its fuzz target (`tests::fuzz_oracles`), the same code the cargo-fuzz targets in
//! `fuzz/` run. A file there is a finding that was fixed, or a seed worth keeping.

use std::path::Path;

use tests::fuzz_oracles::TARGETS;

#[test]
fn every_kept_fuzz_input_passes_its_oracle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz-regressions");
    let mut replayed = 0;
    for (target, oracle) in TARGETS {
        let directory = root.join(target);
        let Ok(entries) = std::fs::read_dir(&directory) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("a readable regression input");
            eprintln!("{target}: {}", file.display());
            oracle(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
}
