//! Every input kept for the fuzz targets — the seeds in `fuzz/seeds/TARGET/` and the
//! inputs that once failed in `fuzz/regressions/TARGET/` — still passes its target's
//! properties (`mailvault::fuzzing`). Runs in CI without cargo-fuzz; the campaigns
//! themselves are `scripts/fuzz.sh`.

use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_fuzz_input_passes_its_target() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, check) in mailvault::fuzzing::TARGETS {
        let seeds = inputs("seeds", name);
        assert!(!seeds.is_empty(), "fuzz/seeds/{name}/ has no inputs");
        for p in seeds.iter().chain(&inputs("regressions", name)) {
            let data = std::fs::read(p).unwrap();
            ran += 1;
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(p.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} inputs fail: {failures:?}",
        failures.len()
    );
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for (name, _) in mailvault::fuzzing::TARGETS {
        let src = std::fs::read_to_string(dir.join(format!("{name}.rs")))
            .unwrap_or_else(|e| panic!("fuzz/fuzz_targets/{name}.rs: {e}"));
        assert!(
            src.contains(&format!("mailvault::fuzzing::{name}(")),
            "{name}.rs calls its function"
        );
    }
}
