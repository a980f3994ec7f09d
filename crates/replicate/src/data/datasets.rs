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

impl Dataset {
    pub fn name(&self) -> &'static str {
        match self {
            Dataset::Mnist => "MNIST",
            Dataset::Lfw => "LFW",
        }
    }
}

/// MNIST from `mnist_dir` and LFW from `lfw_dir`, loaded on first use (each filled first from its
/// mirror, `MNIST_MIRROR` or `LFW_MIRROR`, when the directory lacks it).
pub struct Datasets {
    mnist_dir: PathBuf,
    /// None outside the project with neither `--lfw-dir` nor `REPLICATE_LFW_DIR`.
    lfw_dir: Option<PathBuf>,
    mnist: OnceLock<Mnist>,
    lfw: OnceLock<Lfw>,
    // Parallel jobs asking at once load a data set once: the second waits for the first.
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
        if let Some(mnist) = self.mnist.get() {
            return Ok(mnist);
        }
        let _guard = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mnist) = self.mnist.get() {
            return Ok(mnist);
        }
        let mirror = std::env::var_os("MNIST_MIRROR").map(PathBuf::from);
        super::fetch(&self.mnist_dir, mirror.as_deref())?;
        Ok(self.mnist.get_or_init(|| Mnist::load(&self.mnist_dir).expect("fetch validated it")))
    }

    pub fn lfw(&self) -> Result<&Lfw> {
        if let Some(lfw) = self.lfw.get() {
            return Ok(lfw);
        }
        let _guard = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lfw) = self.lfw.get() {
            return Ok(lfw);
        }
        let Some(dir) = &self.lfw_dir else {
            anyhow::bail!(
                "no LFW directory: outside the replicate project, name one with --lfw-dir or REPLICATE_LFW_DIR"
            );
        };
        let lfw = match Lfw::load(dir) {
            Ok(lfw) => lfw,
            Err(_) => {
                let mirror = std::env::var_os("LFW_MIRROR").map(PathBuf::from);
                super::lfw::fetch(dir, mirror.as_deref())?;
                Lfw::load(dir)?
            }
        };
        Ok(self.lfw.get_or_init(|| lfw))
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

    /// Whether `need` is loaded or its directory looks complete (its checksum file is there: a
    /// mirror copy writes it last), without reading the files.
    pub fn present(&self, need: Dataset) -> bool {
        match need {
            Dataset::Mnist => self.mnist.get().is_some() || self.mnist_dir.is_dir(),
            Dataset::Lfw => {
                self.lfw.get().is_some() || self.lfw_dir.as_ref().is_some_and(|d| d.join("SHA256SUMS").is_file())
            }
        }
    }

    pub fn lfw_dir(&self) -> Option<&Path> {
        self.lfw_dir.as_deref()
    }
}
