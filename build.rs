//! Compiles the bank's own schema (`proto/*.proto`) with prost-build, and turns
//! `PODBANK_TEST_WITHOUT_RIGS` into the cfgs that mark the tests of a missing rig ignored.

/// The rigs a run can do without, explicitly: `PODBANK_TEST_WITHOUT_RIGS=cinder,swift`
/// (`karborclient`: python-karborclient, which drives the Karbor API tests).
/// Each one named sets `cfg(podbank_without_<rig>)`, under which the tests that need it are
/// `#[ignore]`d (reported as ignored, never as passed). Without it, a test whose rig is not
/// running fails and names the rig. `.ci/run` never sets it.
const RIGS: [&str; 3] = ["cinder", "swift", "karborclient"];

fn rig_cfgs() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-env-changed=PODBANK_TEST_WITHOUT_RIGS");
    for rig in RIGS {
        println!("cargo:rustc-check-cfg=cfg(podbank_without_{rig})");
    }
    let without = std::env::var("PODBANK_TEST_WITHOUT_RIGS").unwrap_or_default();
    for name in without.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let name = name.to_ascii_lowercase();
        if !RIGS.contains(&name.as_str()) {
            return Err(format!(
                "PODBANK_TEST_WITHOUT_RIGS: unknown rig {name:?} (known: {})",
                RIGS.join(", ")
            )
            .into());
        }
        println!("cargo:rustc-cfg=podbank_without_{name}");
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rig_cfgs()?;
    let protos: Vec<_> = std::fs::read_dir("proto")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-changed=proto");
    if !protos.is_empty() {
        prost_build::Config::new()
            .bytes(["."])
            .compile_protos(&protos, &["proto"])?;
    }
    Ok(())
}
