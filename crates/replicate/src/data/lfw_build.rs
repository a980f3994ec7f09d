//! `replicate data lfw --from DIR`: builds `data/lfw` from a tree of LFW JPEGs
//! (`Name/Name_0001.jpg`, at DIR or DIR/lfw) and LFW's six official lists (pairs.txt, people.txt,
//! pairsDevTrain.txt, pairsDevTest.txt, peopleDevTrain.txt, peopleDevTest.txt, at DIR), for a
//! user without the project's mirror.
//!
//! The preprocessing is the mirror's (../shared/data/lfw/README): each 250×250 image as grayscale
//! (colour by ITU-R 601-2 luma, as Pillow's `convert("L")`), its centre 128×128 (rows and
//! columns 61..188), averaged over 2×2 blocks with rounding, (a + b + c + d + 2) / 4. The files
//! have the mirror's format, but its checksums only for the same source images and decoder: the
//! public LFW JPEGs are colour and unaligned (or funneled), not the mirror's aligned grayscale,
//! so the build writes its own SHA256SUMS and a SOURCE.txt saying what it read.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::lfw::{
    Lfw, LfwError, Sizes, CHECKSUMS, IDENTITIES_FILE, IMAGES_FILE, LABELS_FILE, PIXELS, SIDE, VIEW1_TEST_PAIRS,
    VIEW1_TEST_PEOPLE, VIEW1_TRAIN_PAIRS, VIEW1_TRAIN_PEOPLE, VIEW2_PAIRS, VIEW2_PEOPLE,
};
use crate::util::atomic_write;

/// LFW's official lists, as its site distributes them.
pub const OFFICIAL_FILES: [&str; 6] =
    ["pairs.txt", "people.txt", "pairsDevTrain.txt", "pairsDevTest.txt", "peopleDevTrain.txt", "peopleDevTest.txt"];

/// The side of LFW's JPEGs and the window the mirror keeps of them.
const SOURCE_SIDE: usize = 250;
const CROP_START: usize = 61;

/// What a build read and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub images: usize,
    pub identities: usize,
    /// "grayscale" or "colour" JPEGs (colour ones are the public LFW, grayscale ones likely LFW-a).
    pub variant: &'static str,
}

fn corrupt(path: &Path, problem: impl Into<String>) -> LfwError {
    LfwError::BadSource { path: path.to_path_buf(), problem: problem.into() }
}

fn read_text(path: &Path) -> Result<String, LfwError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(corrupt(
            path,
            "is missing: --from needs LFW's six official lists beside the image tree (pairs.txt, people.txt, \
             pairsDevTrain.txt, pairsDevTest.txt, peopleDevTrain.txt, peopleDevTest.txt)",
        )),
        Err(e) => Err(corrupt(path, format!("cannot be read as text ({e})"))),
    }
}

/// One grayscale 64×64 image from a JPEG: luma, centre 128×128, 2×2 box average with rounding.
pub fn preprocess(path: &Path) -> Result<(Vec<u8>, bool), LfwError> {
    let bytes = std::fs::read(path).map_err(|e| corrupt(path, format!("cannot be read ({e})")))?;
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .map_err(|e| corrupt(path, format!("is not a JPEG this decoder reads ({e})")))?;
    let (w, h) = (decoded.width() as usize, decoded.height() as usize);
    if (w, h) != (SOURCE_SIDE, SOURCE_SIDE) {
        return Err(corrupt(path, format!("is {w}×{h}; LFW's images are {SOURCE_SIDE}×{SOURCE_SIDE}")));
    }
    let colour = decoded.color().has_color();
    let luma: Vec<u8> = if colour {
        decoded
            .to_rgb8()
            .pixels()
            .map(|p| ((p[0] as u32 * 19_595 + p[1] as u32 * 38_470 + p[2] as u32 * 7_471 + 0x8000) >> 16) as u8)
            .collect()
    } else {
        decoded.to_luma8().into_raw()
    };
    let mut out = Vec::with_capacity(PIXELS);
    for row in 0..SIDE {
        for col in 0..SIDE {
            let (y, x) = (CROP_START + 2 * row, CROP_START + 2 * col);
            let at = |dy: usize, dx: usize| luma[(y + dy) * SOURCE_SIDE + x + dx] as u32;
            out.push(((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1) + 2) / 4) as u8);
        }
    }
    Ok((out, colour))
}

/// The people of the image tree in byte order of their names, each with their JPEGs in number
/// order (`Name_0001.jpg` …, numbered from 1 without gaps).
fn people_of(root: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, LfwError> {
    let entries = std::fs::read_dir(root).map_err(|e| corrupt(root, format!("cannot be listed ({e})")))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(corrupt(root, "holds no person directories (Name/Name_0001.jpg)"));
    }
    let mut people = Vec::with_capacity(names.len());
    for name in names {
        let dir = root.join(&name);
        let count = std::fs::read_dir(&dir)
            .map_err(|e| corrupt(&dir, format!("cannot be listed ({e})")))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jpg"))
            .count();
        let files: Vec<PathBuf> = (1..=count).map(|k| dir.join(format!("{name}_{k:04}.jpg"))).collect();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(corrupt(
                missing,
                format!("is missing: {name} has {count} JPEGs, numbered 1 to {count} in LFW"),
            ));
        }
        if count == 0 {
            return Err(corrupt(&dir, "holds no JPEG"));
        }
        people.push((name, files));
    }
    Ok(people)
}

/// Index lookups for the official lists: a person's id and first image, by name.
struct Index {
    id: HashMap<String, usize>,
    first: Vec<usize>,
    counts: Vec<usize>,
}

impl Index {
    fn person(&self, path: &Path, line: usize, name: &str) -> Result<usize, LfwError> {
        self.id
            .get(name)
            .copied()
            .ok_or_else(|| corrupt(path, format!("line {line}: {name} has no directory in the image tree")))
    }

    fn image(&self, path: &Path, line: usize, name: &str, number: &str) -> Result<usize, LfwError> {
        let id = self.person(path, line, name)?;
        let n: usize = number
            .parse()
            .map_err(|_| corrupt(path, format!("line {line}: image number {number:?} is not a whole number")))?;
        if n == 0 || n > self.counts[id] {
            return Err(corrupt(path, format!("line {line}: {name} has {} images, not an image {n}", self.counts[id])));
        }
        Ok(self.first[id] + n - 1)
    }
}

/// Lines of an official list, split on whitespace, with their 1-based numbers.
fn fields(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split_whitespace().collect::<Vec<_>>()))
        .filter(|(_, f)| !f.is_empty())
}

fn header(path: &Path, line: Option<(usize, Vec<&str>)>, width: usize) -> Result<Vec<usize>, LfwError> {
    let (_, f) = line.ok_or_else(|| corrupt(path, "is empty"))?;
    if f.len() != width {
        return Err(corrupt(path, format!("line 1 has {} fields, expected {width} (counts)", f.len())));
    }
    f.iter().map(|x| x.parse().map_err(|_| corrupt(path, format!("line 1: {x:?} is not a count")))).collect()
}

/// A pairs file (`folds per_fold_half` or `half`, then per fold `half` same lines `name i j` and
/// `half` different lines `a i b j`) as TSV rows `fold same index_a index_b`, and pairs per fold.
fn convert_pairs(path: &Path, index: &Index, folded: bool) -> Result<(String, usize, usize), LfwError> {
    let text = read_text(path)?;
    let mut lines = fields(&text);
    let h = header(path, lines.next(), if folded { 2 } else { 1 })?;
    let (folds, half) = if folded { (h[0], h[1]) } else { (1, h[0]) };
    let mut out = String::new();
    for fold in 0..folds {
        for k in 0..2 * half {
            let (line, f) = lines.next().ok_or_else(|| corrupt(path, format!("ends before fold {fold}'s pair {k}")))?;
            let (same, a, b) = match f.as_slice() {
                [name, i, j] if k < half => (1, index.image(path, line, name, i)?, index.image(path, line, name, j)?),
                [n1, i, n2, j] if k >= half => (0, index.image(path, line, n1, i)?, index.image(path, line, n2, j)?),
                _ => {
                    return Err(corrupt(
                        path,
                        format!("line {line} is not a {} pair", if k < half { "same" } else { "different" }),
                    ))
                }
            };
            out.push_str(&format!("{fold}\t{same}\t{a}\t{b}\n"));
        }
    }
    if let Some((line, _)) = lines.next() {
        return Err(corrupt(path, format!("line {line}: more pairs than its header's {folds} × {}", 2 * half)));
    }
    Ok((out, folds, 2 * half))
}

/// A people file (people.txt: `folds`, then per fold a count and `name n` lines; the View 1
/// files: a count and `name n` lines) as rows of (fold, id).
fn convert_people(path: &Path, index: &Index, folded: bool) -> Result<Vec<(usize, usize)>, LfwError> {
    let text = read_text(path)?;
    let mut lines = fields(&text);
    let folds = if folded { header(path, lines.next(), 1)?[0] } else { 1 };
    let mut out = Vec::new();
    for fold in 0..folds {
        let count = header(path, lines.next(), 1)?[0];
        for _ in 0..count {
            let (line, f) =
                lines.next().ok_or_else(|| corrupt(path, format!("ends inside fold {fold}'s {count} people")))?;
            let [name, n] = f.as_slice() else { return Err(corrupt(path, format!("line {line} is not `name count`"))) };
            let id = index.person(path, line, name)?;
            if n.parse::<usize>().ok() != Some(index.counts[id]) {
                return Err(corrupt(
                    path,
                    format!("line {line}: {name} has {} images in the tree, not {n}", index.counts[id]),
                ));
            }
            out.push((fold, id));
        }
    }
    Ok(out)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Builds `out` from the JPEG tree and official lists at `source`, then loads it back with every
/// check of [`Lfw::load`] at the sizes the lists give. `progress` hears each person done.
pub fn build(source: &Path, out: &Path, mut progress: impl FnMut(usize, usize)) -> Result<Built, LfwError> {
    let root = if source.join("lfw").is_dir() { source.join("lfw") } else { source.to_path_buf() };
    // The lists first: a missing one is reported before minutes of decoding.
    let lists: Vec<PathBuf> = OFFICIAL_FILES.iter().map(|f| source.join(f)).collect();
    for path in &lists {
        read_text(path)?;
    }
    let people = people_of(&root)?;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut index = Index { id: HashMap::new(), first: Vec::new(), counts: Vec::new() };
    let mut identities =
        String::from("# id\tname\tn_images\tfirst_index  (images of id are first_index .. first_index+n_images-1)\n");
    let mut listing = String::from("# index\tid\tsource file\tSHA-256 of that file\n");
    let mut colour = false;
    for (id, (name, files)) in people.iter().enumerate() {
        index.id.insert(name.clone(), id);
        index.first.push(labels.len());
        index.counts.push(files.len());
        identities.push_str(&format!("{id}\t{name}\t{}\t{}\n", files.len(), labels.len()));
        for file in files {
            let (pixels, in_colour) = preprocess(file)?;
            colour |= in_colour;
            let sum = format!("{:x}", Sha256::digest(std::fs::read(file).unwrap_or_default()));
            listing.push_str(&format!(
                "{}\t{id}\t{name}/{}\t{sum}\n",
                labels.len(),
                file.file_name().unwrap_or_default().to_string_lossy()
            ));
            images.extend(pixels);
            labels.push(id as i32);
        }
        progress(id + 1, people.len());
    }
    let n = labels.len();
    let mut idx_images = vec![0, 0, 0x08, 3];
    for d in [n, SIDE, SIDE] {
        idx_images.extend((d as u32).to_be_bytes());
    }
    idx_images.extend(&images);
    let mut idx_labels = vec![0, 0, 0x0c, 1];
    idx_labels.extend((n as u32).to_be_bytes());
    for l in &labels {
        idx_labels.extend(l.to_be_bytes());
    }

    let (view2, _, per_fold) = convert_pairs(&lists[0], &index, true)?;
    let (dev_train, _, dev_train_n) = convert_pairs(&lists[2], &index, false)?;
    let (dev_test, _, dev_test_n) = convert_pairs(&lists[3], &index, false)?;
    let folds = convert_people(&lists[1], &index, true)?;
    let people_rows = |rows: Vec<(usize, usize)>, with_fold: bool| -> String {
        rows.iter()
            .map(|&(fold, id)| {
                let row = format!("{id}\t{}\t{}", people[id].0, index.counts[id]);
                if with_fold {
                    format!("{fold}\t{row}\n")
                } else {
                    format!("{row}\n")
                }
            })
            .collect()
    };
    let dev_train_people = convert_people(&lists[4], &index, false)?;
    let dev_test_people = convert_people(&lists[5], &index, false)?;
    let sizes = Sizes {
        images: n,
        identities: people.len(),
        view1_train_people: dev_train_people.len(),
        view1_test_people: dev_test_people.len(),
        view1_train_pairs: dev_train_n,
        view1_test_pairs: dev_test_n,
        view2_pairs_per_fold: per_fold,
    };
    let variant = if colour { "colour" } else { "grayscale" };
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (IMAGES_FILE.into(), gzip(&idx_images)),
        (LABELS_FILE.into(), gzip(&idx_labels)),
        (IDENTITIES_FILE.into(), identities.into_bytes()),
        ("images.txt".into(), listing.into_bytes()),
        (VIEW2_PAIRS.into(), format!("# from pairs.txt: fold\tsame(1)/different(0)\tindex_a\tindex_b\n{view2}").into_bytes()),
        (VIEW1_TRAIN_PAIRS.into(), format!("# from pairsDevTrain.txt: fold\tsame\tindex_a\tindex_b\n{dev_train}").into_bytes()),
        (VIEW1_TEST_PAIRS.into(), format!("# from pairsDevTest.txt: fold\tsame\tindex_a\tindex_b\n{dev_test}").into_bytes()),
        (VIEW2_PEOPLE.into(), format!("# from people.txt: fold\tid\tname\tn_images\n{}", people_rows(folds, true)).into_bytes()),
        (VIEW1_TRAIN_PEOPLE.into(), format!("# from peopleDevTrain.txt: id\tname\tn_images\n{}", people_rows(dev_train_people, false)).into_bytes()),
        (VIEW1_TEST_PEOPLE.into(), format!("# from peopleDevTest.txt: id\tname\tn_images\n{}", people_rows(dev_test_people, false)).into_bytes()),
        (
            "SOURCE.txt".into(),
            format!(
                "Built by `replicate data lfw --from {}` from {n} {variant} JPEGs of {} people: luma (ITU-R 601-2) for colour \
                 images, centre 128×128 (rows and columns 61..188), 2×2 box average with rounding. Decoder: the Rust `image` \
                 crate. The checksums are this build's own; they match the project's mirror only for the same source images \
                 and decoder ({}).\n",
                source.display(),
                people.len(),
                if colour { "colour JPEGs are the public LFW, unaligned or funneled, not the mirror's aligned grayscale LFW-a" } else { "grayscale JPEGs are likely LFW-a, the mirror's source" }
            )
            .into_bytes(),
        ),
    ];
    for (file, path) in OFFICIAL_FILES.iter().zip(&lists) {
        files.push((
            format!("official/{file}"),
            std::fs::read(path).map_err(|e| corrupt(path, format!("cannot be read ({e})")))?,
        ));
    }
    let sums: String = files.iter().map(|(name, bytes)| format!("{:x}  ./{name}\n", Sha256::digest(bytes))).collect();
    // SHA256SUMS last: until it is written, a build stopped half-way reads as missing, not as done.
    files.push((CHECKSUMS.into(), sums.into_bytes()));
    for (name, bytes) in &files {
        let path = out.join(name);
        std::fs::create_dir_all(path.parent().expect("files live in a folder")).map_err(|e| LfwError::Corrupt {
            path: path.clone(),
            problem: format!("cannot create its folder ({e})"),
        })?;
        atomic_write(&path, bytes)
            .map_err(|e| LfwError::Corrupt { path: path.clone(), problem: format!("cannot be written ({e})") })?;
    }
    Lfw::load_sized(out, &sizes)?;
    Ok(Built { images: n, identities: people.len(), variant })
}
