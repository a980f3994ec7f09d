//! MNIST: fetch, validate and load the four IDX files.
//!
//! The files live uncompressed under their standard names in `data/mnist` (the layout
//! candle-datasets' `vision::mnist::load_dir` reads). Every file is validated in full before
//! use: a truncated, padded or foreign file is an error naming the file and the problem,
//! never a panic and never a silently shorter dataset.

use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::util::atomic_write;

pub const IMAGE_SIDE: usize = 28;
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
pub const NUM_CLASSES: usize = 10;
const IMAGE_MAGIC: u32 = 2051;
const LABEL_MAGIC: u32 = 2049;
const IMAGE_HEADER: usize = 16;
const LABEL_HEADER: usize = 8;

/// One of the four IDX files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdxFile {
    pub name: &'static str,
    pub images: bool,
    pub count: usize,
}

pub const FILES: [IdxFile; 4] = [
    IdxFile { name: "train-images-idx3-ubyte", images: true, count: 60_000 },
    IdxFile { name: "train-labels-idx1-ubyte", images: false, count: 60_000 },
    IdxFile { name: "t10k-images-idx3-ubyte", images: true, count: 10_000 },
    IdxFile { name: "t10k-labels-idx1-ubyte", images: false, count: 10_000 },
];

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("the MNIST directory {0} does not exist: run `just data` (or `replicate data`) to fetch the dataset")]
    MissingDir(PathBuf),
    #[error("{0} is missing: run `just data` (or `replicate data`) to fetch the dataset")]
    MissingFile(PathBuf),
    #[error("{path}: {problem}; delete it and run `just data` to fetch a fresh copy")]
    Corrupt { path: PathBuf, problem: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("MNIST was found nowhere. Tried, in order:\n{}\nTo fix: set MNIST_MIRROR to a directory holding the four .gz files (in this project's CI: ../shared/data/mnist), copy the four uncompressed IDX files into {dir}, or build with `--features hub` to download them from the Hugging Face hub.", tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n"))]
    NotFound { dir: PathBuf, tried: Vec<String> },
}

impl DataError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        DataError::Io { path: path.to_path_buf(), source }
    }
}

/// Checks a whole IDX file's bytes: magic number, item count, 28×28 shape, exact size, labels 0-9.
pub fn validate_idx(bytes: &[u8], file: &IdxFile) -> Result<(), String> {
    let (magic, header) = if file.images { (IMAGE_MAGIC, IMAGE_HEADER) } else { (LABEL_MAGIC, LABEL_HEADER) };
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        return Err("the file is still gzip-compressed (expected a raw IDX file)".into());
    }
    if bytes.len() < header {
        return Err(format!(
            "the file is {} bytes, shorter than the {header}-byte IDX header (truncated?)",
            bytes.len()
        ));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
    if word(0) != magic {
        let kind = if file.images { "image" } else { "label" };
        return Err(format!("wrong magic number {} (expected {magic} for an IDX {kind} file)", word(0)));
    }
    let count = word(1) as usize;
    if count != file.count {
        return Err(format!("the header says {count} items, expected {}", file.count));
    }
    let item = if file.images {
        let (rows, cols) = (word(2) as usize, word(3) as usize);
        if rows != IMAGE_SIDE || cols != IMAGE_SIDE {
            return Err(format!("images are {rows}×{cols}, expected {IMAGE_SIDE}×{IMAGE_SIDE}"));
        }
        IMAGE_PIXELS
    } else {
        1
    };
    let expected = header + count * item;
    if bytes.len() != expected {
        let how = if bytes.len() < expected { "truncated" } else { "has trailing bytes" };
        return Err(format!("the file is {} bytes, expected {expected} ({how})", bytes.len()));
    }
    if !file.images {
        if let Some((i, v)) = bytes[header..].iter().enumerate().find(|(_, &v)| v as usize >= NUM_CLASSES) {
            return Err(format!("label {v} at index {i} is outside 0-9"));
        }
    }
    Ok(())
}

fn read_valid(path: &Path, file: &IdxFile) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            DataError::MissingFile(path.to_path_buf())
        } else {
            DataError::io(path, e)
        }
    })?;
    validate_idx(&bytes, file).map_err(|problem| DataError::Corrupt { path: path.to_path_buf(), problem })?;
    Ok(bytes)
}

/// Images (u8, row-major 28×28) and labels of one split.
#[derive(Clone)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images at `indices` as an `[n, 1, 28, 28]` f32 tensor normalised as caffe-face does,
    /// (x − 127.5) / 128, and their labels as u32.
    pub fn batch(&self, indices: &[usize], device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let mut pixels = Vec::with_capacity(indices.len() * IMAGE_PIXELS);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let image = &self.images[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS];
            pixels.extend(image.iter().map(|&p| (p as f32 - 127.5) / 128.0));
            labels.push(self.labels[i] as u32);
        }
        let n = indices.len();
        let x = Tensor::from_vec(pixels, (n, 1, IMAGE_SIDE, IMAGE_SIDE), device)?;
        let y = Tensor::from_vec(labels, n, device)?;
        Ok((x, y))
    }

    /// Indices of the samples whose label is in `classes`.
    pub fn indices_of(&self, classes: &[u8]) -> Vec<usize> {
        (0..self.len()).filter(|&i| classes.contains(&self.labels[i])).collect()
    }
}

/// The standard 60,000 / 10,000 split.
#[derive(Clone)]
pub struct Mnist {
    pub train: Split,
    pub test: Split,
}

impl Mnist {
    /// Loads and validates the four IDX files in `dir`.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        if !dir.is_dir() {
            return Err(DataError::MissingDir(dir.to_path_buf()));
        }
        let mut parts = Vec::with_capacity(4);
        for file in &FILES {
            let bytes = read_valid(&dir.join(file.name), file)?;
            let header = if file.images { IMAGE_HEADER } else { LABEL_HEADER };
            parts.push(bytes[header..].to_vec());
        }
        let mut parts = parts.into_iter();
        let mut next = || parts.next().expect("four files");
        Ok(Mnist { train: Split { images: next(), labels: next() }, test: Split { images: next(), labels: next() } })
    }
}

/// Where `fetch` found the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    AlreadyPresent,
    Mirror(PathBuf),
    Hub,
}

/// Fills `dir` with the four validated, uncompressed IDX files, trying in order: the files
/// already there; `mirror` (the four `.gz` files, or uncompressed ones); the Hugging Face hub
/// (only with the `hub` feature). Files are written atomically.
pub fn fetch(dir: &Path, mirror: Option<&Path>) -> Result<Source, DataError> {
    // A copy killed half-way leaves its temporary (47 MB for the training images) behind.
    let _ = crate::util::remove_stale_temporaries(dir);
    let mut tried = Vec::new();
    match check_present(dir) {
        Ok(()) => return Ok(Source::AlreadyPresent),
        Err(problem) => tried.push(format!("{}: {problem}", dir.display())),
    }
    match mirror {
        Some(m) => match copy_from_mirror(m, dir) {
            Ok(()) => return Ok(Source::Mirror(m.to_path_buf())),
            Err(problem) => tried.push(format!("MNIST_MIRROR={}: {problem}", m.display())),
        },
        None => tried.push("MNIST_MIRROR: not set".into()),
    }
    match download_from_hub(dir) {
        Ok(()) => return Ok(Source::Hub),
        Err(problem) => tried.push(format!("Hugging Face hub (ylecun/mnist): {problem}")),
    }
    Err(DataError::NotFound { dir: dir.to_path_buf(), tried })
}

fn check_present(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err("no such directory".into());
    }
    for file in &FILES {
        read_valid(&dir.join(file.name), file).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn copy_from_mirror(mirror: &Path, dir: &Path) -> Result<(), String> {
    if !mirror.is_dir() {
        return Err("no such directory".into());
    }
    // Read and validate all four before writing any, so a bad mirror leaves `dir` untouched.
    let mut contents = Vec::with_capacity(4);
    for file in &FILES {
        let gz = mirror.join(format!("{}.gz", file.name));
        let raw = mirror.join(file.name);
        let (path, bytes) = if gz.is_file() {
            let compressed = std::fs::read(&gz).map_err(|e| format!("{}: {e}", gz.display()))?;
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(&compressed[..])
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{}: the gzip stream is corrupt or truncated ({e})", gz.display()))?;
            (gz, bytes)
        } else if raw.is_file() {
            let bytes = std::fs::read(&raw).map_err(|e| format!("{}: {e}", raw.display()))?;
            (raw, bytes)
        } else {
            return Err(format!("neither {} nor {} exists", gz.display(), raw.display()));
        };
        validate_idx(&bytes, file).map_err(|p| format!("{}: {p}", path.display()))?;
        contents.push((file, bytes));
    }
    write_all(dir, &contents)
}

fn write_all(dir: &Path, contents: &[(&IdxFile, Vec<u8>)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (file, bytes) in contents {
        let path = dir.join(file.name);
        atomic_write(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(feature = "hub")]
fn download_from_hub(dir: &Path) -> Result<(), String> {
    let dataset = candle_datasets::vision::mnist::load().map_err(|e| format!("download failed: {e}"))?;
    let to_idx = |images: &Tensor, labels: &Tensor, count: usize| -> Result<(Vec<u8>, Vec<u8>), String> {
        let pixels: Vec<f32> = images.flatten_all().and_then(|t| t.to_vec1()).map_err(|e| e.to_string())?;
        let labels: Vec<u8> = labels.to_vec1().map_err(|e| e.to_string())?;
        let mut img = Vec::with_capacity(IMAGE_HEADER + pixels.len());
        for w in [IMAGE_MAGIC, count as u32, IMAGE_SIDE as u32, IMAGE_SIDE as u32] {
            img.extend_from_slice(&w.to_be_bytes());
        }
        img.extend(pixels.iter().map(|&p| (p * 255.0).round().clamp(0.0, 255.0) as u8));
        let mut lab = Vec::with_capacity(LABEL_HEADER + labels.len());
        for w in [LABEL_MAGIC, count as u32] {
            lab.extend_from_slice(&w.to_be_bytes());
        }
        lab.extend_from_slice(&labels);
        Ok((img, lab))
    };
    let (tri, trl) = to_idx(&dataset.train_images, &dataset.train_labels, 60_000)?;
    let (tei, tel) = to_idx(&dataset.test_images, &dataset.test_labels, 10_000)?;
    let contents: Vec<(&IdxFile, Vec<u8>)> = FILES.iter().zip([tri, trl, tei, tel]).collect();
    for (file, bytes) in &contents {
        validate_idx(bytes, file).map_err(|p| format!("the hub's {}: {p}", file.name))?;
    }
    write_all(dir, &contents)
}

#[cfg(not(feature = "hub"))]
fn download_from_hub(_dir: &Path) -> Result<(), String> {
    Err("this build has no hub support (rebuild with `cargo run --release --features hub -- data`)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn idx_labels(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&LABEL_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    #[test]
    fn validation_names_each_problem() {
        let file = IdxFile { name: "x", images: false, count: 3 };
        assert!(validate_idx(&idx_labels(&[1, 2, 3]), &file).is_ok());
        let err = validate_idx(&idx_labels(&[1, 2]), &file).unwrap_err();
        assert!(err.contains("header says 2 items, expected 3"), "{err}");
        let mut short = idx_labels(&[1, 2, 3]);
        short.pop();
        assert!(validate_idx(&short, &file).unwrap_err().contains("truncated"));
        let mut magic = idx_labels(&[1, 2, 3]);
        magic[3] = 0x99;
        assert!(validate_idx(&magic, &file).unwrap_err().contains("wrong magic number"));
        assert!(validate_idx(&idx_labels(&[1, 12, 3]), &file).unwrap_err().contains("label 12 at index 1"));
        assert!(validate_idx(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0], &file).unwrap_err().contains("gzip"));
        assert!(validate_idx(&[0, 0], &file).unwrap_err().contains("shorter than"));
    }

    #[test]
    fn batch_normalises_like_caffe_face() {
        let split = Split {
            images: vec![0u8; IMAGE_PIXELS].into_iter().chain(vec![255u8; IMAGE_PIXELS]).collect(),
            labels: vec![3, 7],
        };
        let (x, y) = split.batch(&[1, 0], &Device::Cpu).unwrap();
        assert_eq!(x.dims(), &[2, 1, 28, 28]);
        let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v[0], 127.5 / 128.0);
        assert_eq!(v[IMAGE_PIXELS], -127.5 / 128.0);
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![7, 3]);
    }
}
