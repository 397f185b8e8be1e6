//! Compiles the bank's own schema (`proto/*.proto`) with prost-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
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
