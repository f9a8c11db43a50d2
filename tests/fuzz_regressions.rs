//! Replays every input the fuzzers found (`fuzz/regressions/<target>/`) and every seed
//! (`fuzz/seeds/<target>/`) through the same property checks the fuzz targets run
//! (`fuzz/properties.rs`), so a fixed crash stays fixed without running the fuzzers.

mod common;
#[path = "../fuzz/properties.rs"]
mod properties;

use common::root;

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("set_grammar", properties::set_grammar),
    ("set_json", properties::set_json),
    ("values_file", properties::values_file),
    ("flux_escape", properties::flux_escape),
];

#[test]
fn every_saved_fuzz_input_passes_the_properties() {
    let mut replayed = 0;
    for (target, check) in TARGETS {
        for folder in ["regressions", "seeds"] {
            let dir = root().join("fuzz").join(folder).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n == ".gitkeep") {
                    continue;
                }
                let data = std::fs::read(&path).unwrap();
                let result = std::panic::catch_unwind(|| check(&data));
                assert!(result.is_ok(), "{} fails its properties", path.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= 25, "only {replayed} inputs replayed");
}
