//! Small helpers shared by every room: atomic file writes, seeded random streams, paths.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and an interrupted write leaves the old one intact.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A random stream derived from the run's seed and a purpose, so that adding a consumer of
/// randomness (say, a new sampler) never shifts the numbers another consumer sees.
pub fn rng_for(seed: u64, purpose: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv1a(purpose.as_bytes()));
    rng
}

/// FNV-1a, a stable 64-bit hash (std's hasher may change between Rust versions).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// The project's root: `REPLICATE_ROOT`, else the nearest ancestor of the current directory
/// holding `crates/replicate/Cargo.toml`, else the source tree this binary was built from.
pub fn project_root() -> PathBuf {
    if let Ok(root) = std::env::var("REPLICATE_ROOT") {
        return PathBuf::from(root);
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join("crates/replicate/Cargo.toml").is_file() {
                return dir.to_path_buf();
            }
        }
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if built_from.join("crates/replicate/Cargo.toml").is_file() {
        return built_from.canonicalize().unwrap_or(built_from);
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// `data/mnist` under the project root, or `REPLICATE_DATA_DIR`.
pub fn default_data_dir() -> PathBuf {
    std::env::var("REPLICATE_DATA_DIR").map(PathBuf::from).unwrap_or_else(|_| project_root().join("data/mnist"))
}

/// `results/` under the project root, or `REPLICATE_RESULTS_DIR`.
pub fn default_results_dir() -> PathBuf {
    std::env::var("REPLICATE_RESULTS_DIR").map(PathBuf::from).unwrap_or_else(|_| project_root().join("results"))
}

/// Keeps freed memory in the process for the next training step instead of handing it back to
/// the kernel. A step allocates and frees the same ~10 MB activations every time; with glibc's
/// defaults many of them are fresh mappings, and the page faults that zero them again cost
/// ~10% of a step (6 alternated pairs of `replicate bench --speed 1.0`: +14% training, +10%
/// inference images/s). The same blocks are reused, so peak memory barely moves (658 against
/// 646 MiB in `replicate bench --quick`). A no-op where the C library is not glibc.
pub fn reuse_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    unsafe {
        // 32 MiB is glibc's largest allowed threshold; every tensor of a batch-128 step is smaller.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u32> = (0..4).map(|_| rng_for(7, "init").random()).collect();
        let mut r1 = rng_for(7, "init");
        let mut r2 = rng_for(7, "init");
        let mut r3 = rng_for(7, "shuffle");
        let (x, y, z): (u64, u64, u64) = (r1.random(), r2.random(), r3.random());
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_eq!(a.len(), 4);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("replicate-aw-{}", std::process::id()));
        let path = dir.join("f.bin");
        atomic_write(&path, b"first").unwrap();
        atomic_write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
