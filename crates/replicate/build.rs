//! Records the versions this binary was built with, for the run manifests.

fn main() {
    let lock = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let mut versions = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"').to_string();
        } else if let Some(v) = line.strip_prefix("version = ") {
            if ["candle-core", "candle-nn", "polars", "plotters"].contains(&name.as_str()) {
                versions.push(format!("{name} {}", v.trim_matches('"')));
            }
        }
    }
    versions.sort();
    versions.dedup();
    println!("cargo:rustc-env=REPLICATE_DEP_VERSIONS={}", versions.join(", "));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REPLICATE_RUSTC={}", version.trim());
}
