//! The data sets a plan reads, each fetched, validated and loaded once, the first time something
//! asks for it: a plan of MNIST experiments never reads LFW, and one of LFW experiments never
//! reads MNIST.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Result;

use super::{Lfw, Mnist};

/// Which data set an experiment's runs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Mnist,
    Lfw,
}

/// MNIST from `mnist_dir` and LFW from `lfw_dir`, loaded on first use (each filled first from its
/// mirror, `MNIST_MIRROR` or `LFW_MIRROR`, when the directory lacks it).
pub struct Datasets {
    mnist_dir: PathBuf,
    /// None outside the project with neither `--lfw-dir` nor `REPLICATE_LFW_DIR`.
    lfw_dir: Option<PathBuf>,
    mnist: OnceLock<Mnist>,
    lfw: OnceLock<Lfw>,
    loading: Mutex<()>,
}

impl Datasets {
    pub fn new(mnist_dir: &Path, lfw_dir: Option<&Path>) -> Datasets {
        Datasets {
            mnist_dir: mnist_dir.to_path_buf(),
            lfw_dir: lfw_dir.map(Path::to_path_buf),
            mnist: OnceLock::new(),
            lfw: OnceLock::new(),
            loading: Mutex::new(()),
        }
    }

    /// With MNIST already loaded (LFW still read from `lfw_dir` on first use).
    pub fn with_mnist(mnist: Mnist, lfw_dir: &Path) -> Datasets {
        let datasets = Datasets::new(Path::new(""), Some(lfw_dir));
        let _ = datasets.mnist.set(mnist);
        datasets
    }

    pub fn mnist(&self) -> Result<&Mnist> {
        self.load_once(&self.mnist, || load_mnist(&self.mnist_dir))
    }

    pub fn lfw(&self) -> Result<&Lfw> {
        self.load_once(&self.lfw, || match &self.lfw_dir {
            Some(dir) => load_lfw(dir),
            None => anyhow::bail!(
                "no LFW directory: outside the replicate project, name one with --lfw-dir or REPLICATE_LFW_DIR"
            ),
        })
    }

    /// The value in `cell`, loading it first if no one has (parallel jobs asking at once load it
    /// once: the second waits for the first).
    fn load_once<'a, T>(&'a self, cell: &'a OnceLock<T>, load: impl FnOnce() -> Result<T>) -> Result<&'a T> {
        if let Some(value) = cell.get() {
            return Ok(value);
        }
        let _guard = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = cell.get() {
            return Ok(value);
        }
        let value = load()?;
        Ok(cell.get_or_init(|| value))
    }

    /// Loads every data set of `needs`, so that a missing or damaged one is reported before any
    /// training starts.
    pub fn require(&self, needs: &[Dataset]) -> Result<()> {
        for need in needs {
            match need {
                Dataset::Mnist => self.mnist().map(|_| ())?,
                Dataset::Lfw => self.lfw().map(|_| ())?,
            }
        }
        Ok(())
    }

    /// Whether LFW can be had without asking the user: loaded, a copy in its directory (its
    /// checksum file is there: a mirror copy writes it last), or `LFW_MIRROR` set.
    pub fn lfw_obtainable(&self) -> bool {
        self.lfw.get().is_some()
            || self.lfw_dir.as_ref().is_some_and(|d| d.join("SHA256SUMS").is_file())
            || std::env::var_os("LFW_MIRROR").is_some()
    }

    pub fn lfw_dir(&self) -> Option<&Path> {
        self.lfw_dir.as_deref()
    }
}

/// MNIST from `dir`, filled first from `MNIST_MIRROR` (or the hub) if `dir` lacks it.
pub fn load_mnist(dir: &Path) -> Result<Mnist> {
    let mirror = std::env::var_os("MNIST_MIRROR").map(PathBuf::from);
    super::fetch(dir, mirror.as_deref())?;
    Ok(Mnist::load(dir)?)
}

/// LFW from `dir`, filled first from `LFW_MIRROR` if `dir` lacks it; checked in full as it loads.
pub fn load_lfw(dir: &Path) -> Result<Lfw> {
    let mirror = std::env::var_os("LFW_MIRROR").map(PathBuf::from);
    super::lfw::fetch(dir, mirror.as_deref())?;
    Ok(Lfw::load(dir)?)
}
