//! Small helpers shared by every room: atomic file writes and their temporaries, directory locks,
//! output that survives a closed pipe, seeded random streams, the project's paths, the CPU.

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Marks a file put in place. With `REPLICATE_CRASH_AFTER_WRITES=n` (for tests that stop a
/// process between any two writes) the n-th such file is this process's last: it aborts right
/// after it, leaving what a `kill -9` at that point would.
pub fn wrote(path: &Path) {
    static LIMIT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let limit = LIMIT.get_or_init(|| std::env::var("REPLICATE_CRASH_AFTER_WRITES").ok().and_then(|v| v.parse().ok()));
    if let Some(limit) = *limit {
        if WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == limit {
            eprintln!("REPLICATE_CRASH_AFTER_WRITES: stopping after write {limit}, {}", path.display());
            std::process::abort();
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and an interrupted write leaves the old one intact.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = temporary(path, "");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        wrote(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary a writer of `path` uses: `.<name>.<host>-<pid>.tmp<extension>` beside it, so two
/// processes (on one machine or sharing a file system) never write the same temporary, and a
/// sweep can tell a live writer's from a dead one's. `extension` keeps a format's suffix
/// (".png") for writers that choose the format by it.
pub fn temporary(path: &Path, extension: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{}.tmp{extension}", host(), std::process::id()))
}

/// This machine's host name as it appears in temporaries ("localhost" when unknown).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().replace(['/', '.', '-'], "_"))
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Removes the temporaries in `dir` that no live writer owns: those of a process of this host that
/// has ended, and those without a writer's name (older versions). Temporaries of other hosts stay:
/// their writers may still run. Returns how many were removed; a missing `dir` has none.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
    let this_host = host();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        // `.name.<host>-<pid>.tmp…`, or an older version's `.name.<pid>.tmp` and `fig.tmp.png`.
        let older_figure = name.ends_with(".tmp.png") || name.ends_with(".tmp.svg");
        let Some(tmp) = name.find(".tmp").filter(|_| name.starts_with('.') || older_figure) else { continue };
        let writer = name[..tmp].rsplit('.').next().and_then(|w| w.rsplit_once('-'));
        let live = match writer {
            Some((h, pid)) if h == this_host => pid.parse::<u32>().is_ok_and(process_alive),
            Some((_, pid)) => pid.parse::<u32>().is_ok(),
            None => false,
        };
        if !live {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether a process with this id runs on this machine (always assumed where /proc is missing).
fn process_alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new("/proc").join(pid.to_string()).exists()
}

/// An exclusive lock on a directory, held until dropped.
pub struct DirLock {
    _file: std::fs::File,
}

/// Takes the exclusive lock on `dir/.lock`, waiting for another holder: writers of one directory
/// take it for each read-modify-write of its tables, so concurrent processes never lose rows.
pub fn lock_dir(dir: &Path) -> std::io::Result<DirLock> {
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock"))?;
    file.lock()?;
    Ok(DirLock { _file: file })
}

/// Prints a line on stdout, and nothing once stdout is gone: a closed pipe (`replicate
/// reproduce-all | head`) ends the printing, never the training. `println!` would panic there.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::util::say_line(&format!($($arg)*))
    };
}

/// The function behind [`say!`].
pub fn say_line(line: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static GONE: AtomicBool = AtomicBool::new(false);
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        GONE.store(true, Ordering::Relaxed);
    }
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

/// A variable of the environment, unless unset or empty: `REPLICATE_RESULTS_DIR=` means "not
/// set", never "the current directory".
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The project's root: `REPLICATE_ROOT` when set, else the nearest ancestor of the current
/// directory holding the workspace's Cargo.toml and `crates/replicate`. Never the directory the
/// binary was built in: a copied binary must not write into someone else's tree.
pub fn project_root() -> std::io::Result<PathBuf> {
    if let Some(root) = env_path("REPLICATE_ROOT") {
        return Ok(root);
    }
    let cwd = std::env::current_dir()?;
    let found = cwd
        .ancestors()
        .find(|dir| dir.join("Cargo.toml").is_file() && dir.join("crates/replicate/Cargo.toml").is_file());
    found.map(Path::to_path_buf).ok_or_else(|| {
        let message = format!(
            "{} is not inside the replicate project: run from the project, set REPLICATE_ROOT, or give --results-dir and --data-dir",
            cwd.display()
        );
        std::io::Error::new(std::io::ErrorKind::NotFound, message)
    })
}

/// `REPLICATE_DATA_DIR` when set, else `data/mnist` under the project root.
pub fn default_data_dir() -> std::io::Result<PathBuf> {
    match env_path("REPLICATE_DATA_DIR") {
        Some(dir) => Ok(dir),
        None => Ok(project_root()?.join("data/mnist")),
    }
}

/// `REPLICATE_LFW_DIR` when set, else `data/lfw` under the project root.
pub fn default_lfw_dir() -> std::io::Result<PathBuf> {
    match env_path("REPLICATE_LFW_DIR") {
        Some(dir) => Ok(dir),
        None => Ok(project_root()?.join("data/lfw")),
    }
}

/// `REPLICATE_RESULTS_DIR` when set, else `results/` under the project root.
pub fn default_results_dir() -> std::io::Result<PathBuf> {
    match env_path("REPLICATE_RESULTS_DIR") {
        Some(dir) => Ok(dir),
        None => Ok(project_root()?.join("results")),
    }
}

/// The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':'));
    model.map(|(_, m)| m.trim().to_string()).unwrap_or_else(|| "unknown".into())
}

/// The vector extensions of this CPU that matter for the kernels' rounding.
pub fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let detected = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ];
        detected.iter().filter(|(_, present)| *present).map(|(name, _)| *name).collect::<Vec<_>>().join(" ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
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

    /// A sweep removes what dead writers of this host left (and unnamed leftovers of older
    /// versions), and keeps a live writer's temporaries and those of other hosts.
    #[test]
    fn stale_temporaries_are_those_no_live_writer_owns() {
        let dir = std::env::temp_dir().join(format!("replicate-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mine = temporary(&dir.join("runs.parquet"), "");
        let dead = dir.join(format!(".fig3.{}-{}.tmp.png", host(), u32::MAX - 1));
        let old = dir.join(".REPORT.md.12345.tmp");
        let other_host = dir.join(".runs.parquet.elsewhere-77.tmp");
        let old_figure = dir.join("fig3.tmp.png");
        for f in [&mine, &dead, &old, &other_host, &old_figure] {
            std::fs::write(f, b"x").unwrap();
        }
        std::fs::write(dir.join("runs.parquet"), b"kept").unwrap();
        assert!(mine.file_name().unwrap().to_string_lossy().contains(&format!("-{}.tmp", std::process::id())));
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), 3);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        left.sort();
        let mut expected = vec![
            mine.file_name().unwrap().to_string_lossy().to_string(),
            ".runs.parquet.elsewhere-77.tmp".to_string(),
            "runs.parquet".to_string(),
        ];
        expected.sort();
        assert_eq!(left, expected);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
