//! LFW (Huang et al., UMass TR 07-49, 2007), grayscale and aligned (almost certainly LFW-a), at
//! 64×64, with the official verification protocol as image indices: fetch, validate and load.
//!
//! The files stay as the mirror has them (the images and labels gzip-compressed IDX, the lists as
//! TSV) so that its SHA256SUMS applies to `data/lfw` verbatim. Loading checks, in order: every
//! file SHA256SUMS lists against its checksum, the IDX headers and sizes, the counts (13,233
//! images of 5,749 people), each identity's contiguous block of images, and every pair and
//! person of both views resolving to images and identities that agree. The images may not be
//! redistributed: nothing here writes them anywhere but `data/lfw`.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::util::atomic_write;

pub const IMAGES: usize = 13_233;
pub const IDENTITIES: usize = 5_749;
pub const SIDE: usize = 64;
pub const PIXELS: usize = SIDE * SIDE;

pub(crate) const CHECKSUMS: &str = "SHA256SUMS";
pub(crate) const IMAGES_FILE: &str = "images-64x64.idx3-ubyte.gz";
pub(crate) const LABELS_FILE: &str = "labels.idx1-int32.gz";
pub(crate) const IDENTITIES_FILE: &str = "identities.txt";
pub(crate) const VIEW2_PAIRS: &str = "pairs_view2.tsv";
pub(crate) const VIEW1_TRAIN_PAIRS: &str = "pairs_dev_train.tsv";
pub(crate) const VIEW1_TEST_PAIRS: &str = "pairs_dev_test.tsv";
pub(crate) const VIEW2_PEOPLE: &str = "people_view2_folds.tsv";
pub(crate) const VIEW1_TRAIN_PEOPLE: &str = "people_dev_train.tsv";
pub(crate) const VIEW1_TEST_PEOPLE: &str = "people_dev_test.tsv";

/// The files loading reads; SHA256SUMS must list each of them (it lists a few more: the official
/// text files and two preview images, which are checked and copied too).
pub const REQUIRED: [&str; 9] = [
    IMAGES_FILE,
    LABELS_FILE,
    IDENTITIES_FILE,
    VIEW2_PAIRS,
    VIEW1_TRAIN_PAIRS,
    VIEW1_TEST_PAIRS,
    VIEW2_PEOPLE,
    VIEW1_TRAIN_PEOPLE,
    VIEW1_TEST_PEOPLE,
];

const HOW_TO_GET_IT: &str = "run `replicate data` with LFW_MIRROR set to a directory holding the files (in this \
                             project's CI: ../shared/data/lfw)";

#[derive(Debug, thiserror::Error)]
pub enum LfwError {
    #[error("{0} is missing: {HOW_TO_GET_IT}")]
    MissingFile(PathBuf),
    #[error("{path}: {problem}; delete it and {HOW_TO_GET_IT}")]
    Corrupt { path: PathBuf, problem: String },
    #[error("{}: {problem} (in the tree `replicate data lfw --from` reads: fix it there, or {HOW_TO_GET_IT})", path.display())]
    BadSource { path: PathBuf, problem: String },
    #[error(
        "LFW was found nowhere. Tried, in order:\n{}\nTo fix: set LFW_MIRROR to a directory holding SHA256SUMS and the \
         files it lists (in this project's CI: ../shared/data/lfw), or copy them into {dir}.",
        tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n")
    )]
    NotFound { dir: PathBuf, tried: Vec<String> },
}

/// A verification pair of LFW's protocol: two image indices, whether they show the same person,
/// and the fold the pair belongs to (always 0 in View 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacePair {
    pub fold: usize,
    pub a: usize,
    pub b: usize,
    pub same: bool,
}

/// LFW's images, identities and both views of its protocol.
#[derive(Clone)]
pub struct Lfw {
    /// `[IMAGES, 64, 64]` u8, row-major.
    pub images: Vec<u8>,
    /// The identity of each image (0..IDENTITIES; each identity's images are contiguous).
    pub labels: Vec<u32>,
    /// Each identity's name (`Aaron_Eckhart`) and number of images, by id.
    pub names: Vec<String>,
    pub counts: Vec<usize>,
    /// View 1 (development): the training and test people, and their pairs.
    pub view1_train_people: Vec<u32>,
    pub view1_test_people: Vec<u32>,
    pub view1_train_pairs: Vec<FacePair>,
    pub view1_test_pairs: Vec<FacePair>,
    /// View 2: the people of each of the ten identity-disjoint folds, and the folds' pairs.
    pub view2_fold_people: Vec<Vec<u32>>,
    pub view2_pairs: Vec<FacePair>,
}

/// Where [`fetch`] found LFW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LfwSource {
    AlreadyPresent,
    Mirror(PathBuf),
}

/// Fills `dir` with LFW: the files already there if they are complete and valid, else a copy of
/// `mirror` (validated in full before anything is written, so a bad mirror leaves `dir` as it was).
pub fn fetch(dir: &Path, mirror: Option<&Path>) -> Result<LfwSource, LfwError> {
    let _ = crate::util::remove_stale_temporaries(dir);
    if fingerprint(dir).is_some_and(|now| std::fs::read_to_string(dir.join(CHECKED)).is_ok_and(|then| then == now)) {
        return Ok(LfwSource::AlreadyPresent);
    }
    let mut tried = Vec::new();
    match Lfw::load(dir) {
        Ok(_) => {
            stamp_checked(dir);
            return Ok(LfwSource::AlreadyPresent);
        }
        Err(e) => tried.push(format!("{}: {}", dir.display(), problem_of(&e))),
    }
    match mirror {
        Some(m) => match copy_from_mirror(m, dir) {
            Ok(()) => {
                stamp_checked(dir);
                return Ok(LfwSource::Mirror(m.to_path_buf()));
            }
            Err(problem) => tried.push(format!("LFW_MIRROR={}: {problem}", m.display())),
        },
        None => tried.push("LFW_MIRROR: not set".into()),
    }
    Err(LfwError::NotFound { dir: dir.to_path_buf(), tried })
}

/// Where [`fetch`] notes what a full check of `dir` saw, so that the next `replicate data` (every
/// `just` recipe runs it) skips hashing 40 MB while no listed file has changed. Loading for a run
/// ([`Lfw::load`]) always checks in full, so a file damaged in place without a change of size or
/// modification time is still caught before it trains anything.
const CHECKED: &str = ".checked";

/// Each listed file's name, size and modification time (ns), and SHA256SUMS's: None when
/// SHA256SUMS is unreadable or malformed or a listed file is missing.
fn fingerprint(dir: &Path) -> Option<String> {
    let listed = listed_files(dir).ok()?;
    let mut out = String::new();
    for name in std::iter::once(CHECKSUMS).chain(listed.iter().map(|(name, _)| name.as_str())) {
        let meta = std::fs::metadata(dir.join(name)).ok()?;
        let modified = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
        out.push_str(&format!("{name}\t{}\t{modified}\n", meta.len()));
    }
    Some(out)
}

/// Notes the fingerprint of a directory that has just passed the full check (best effort: with
/// no note the next fetch checks in full again).
fn stamp_checked(dir: &Path) {
    if let Some(now) = fingerprint(dir) {
        let _ = atomic_write(&dir.join(CHECKED), now.as_bytes());
    }
}

/// An error's problem without the advice (which [`LfwError::NotFound`] gives once).
fn problem_of(e: &LfwError) -> String {
    match e {
        LfwError::MissingFile(p) => format!("{} is missing", p.display()),
        LfwError::Corrupt { path, problem } | LfwError::BadSource { path, problem } => {
            format!("{}: {problem}", path.display())
        }
        LfwError::NotFound { .. } => e.to_string(),
    }
}

fn copy_from_mirror(mirror: &Path, dir: &Path) -> Result<(), String> {
    if !mirror.is_dir() {
        return Err("no such directory".into());
    }
    Lfw::load(mirror).map_err(|e| problem_of(&e))?;
    let mut files: Vec<String> = listed_files(mirror).map_err(|e| problem_of(&e))?.into_iter().map(|f| f.0).collect();
    // SHA256SUMS last: until it is written, a copy stopped half-way reads as missing, not as done.
    files.push(CHECKSUMS.into());
    for name in &files {
        let (from, to) = (mirror.join(name), dir.join(name));
        let bytes = std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        atomic_write(&to, &bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    }
    // The copy is checked like any other directory (a disk that lost a write is caught here).
    Lfw::load(dir).map(|_| ()).map_err(|e| problem_of(&e))
}

/// The (file, checksum) lines of `dir`'s SHA256SUMS (`sha256  ./name`, as `sha256sum` writes).
fn listed_files(dir: &Path) -> Result<Vec<(String, String)>, LfwError> {
    let path = dir.join(CHECKSUMS);
    let text = text(&path, read(&path)?)?;
    let corrupt = |problem: String| LfwError::Corrupt { path: path.clone(), problem };
    let mut files = Vec::new();
    for (line, row) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let Some((sum, name)) = row.split_once(char::is_whitespace) else {
            return Err(corrupt(format!("line {} is not `checksum  file`", line + 1)));
        };
        let name = name.trim().trim_start_matches('*').trim_start_matches("./");
        if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) || name.is_empty() || name.contains("..") {
            return Err(corrupt(format!("line {} is not `sha256  file`: {row:?}", line + 1)));
        }
        files.push((name.to_string(), sum.to_ascii_lowercase()));
    }
    if let Some(missing) = REQUIRED.iter().find(|r| !files.iter().any(|(n, _)| n == *r)) {
        return Err(corrupt(format!("it does not list {missing}, which LFW's loader needs")));
    }
    Ok(files)
}

fn read(path: &Path) -> Result<Vec<u8>, LfwError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LfwError::MissingFile(path.to_path_buf()),
        _ => LfwError::Corrupt { path: path.to_path_buf(), problem: format!("cannot be read ({e})") },
    })
}

fn text(path: &Path, bytes: Vec<u8>) -> Result<String, LfwError> {
    String::from_utf8(bytes)
        .map_err(|_| LfwError::Corrupt { path: path.to_path_buf(), problem: "is not UTF-8 text".into() })
}

/// A gzip-compressed IDX file's payload after checking its header: `type_code` (0x08 u8,
/// 0x0c i32) and the dimensions `dims`.
fn idx_payload(
    path: &Path,
    compressed: &[u8],
    type_code: u8,
    dims: &[usize],
    item_bytes: usize,
) -> Result<Vec<u8>, LfwError> {
    let corrupt = |problem: String| LfwError::Corrupt { path: path.to_path_buf(), problem };
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(compressed)
        .read_to_end(&mut bytes)
        .map_err(|e| corrupt(format!("the gzip stream is corrupt or truncated ({e})")))?;
    let header = 4 + 4 * dims.len();
    if bytes.len() < header {
        return Err(corrupt(format!("{} bytes, shorter than the {header}-byte IDX header (truncated?)", bytes.len())));
    }
    if bytes[..2] != [0, 0] || bytes[2] != type_code || bytes[3] as usize != dims.len() {
        return Err(corrupt(format!(
            "IDX header {:02x} {:02x} {:02x} {:02x}, expected 00 00 {type_code:02x} {:02x}",
            bytes[0],
            bytes[1],
            bytes[2],
            bytes[3],
            dims.len()
        )));
    }
    for (k, &want) in dims.iter().enumerate() {
        let got = u32::from_be_bytes(bytes[4 + 4 * k..8 + 4 * k].try_into().expect("4 bytes")) as usize;
        if got != want {
            return Err(corrupt(format!("dimension {k} of the IDX header is {got}, expected {want}")));
        }
    }
    let expected = header + dims.iter().product::<usize>() * item_bytes;
    if bytes.len() != expected {
        let how = if bytes.len() < expected { "truncated" } else { "has trailing bytes" };
        return Err(corrupt(format!("{} bytes uncompressed, expected {expected} ({how})", bytes.len())));
    }
    Ok(bytes.split_off(header))
}

/// The rows of a TSV list (after its `#` header line), each split into `columns` fields.
fn rows(path: &Path, text: &str, columns: usize) -> Result<Vec<(usize, Vec<String>)>, LfwError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split('\t').map(|f| f.trim().to_string()).collect();
        if fields.len() != columns {
            return Err(LfwError::Corrupt {
                path: path.to_path_buf(),
                problem: format!("line {} has {} tab-separated fields, expected {columns}", i + 1, fields.len()),
            });
        }
        out.push((i + 1, fields));
    }
    Ok(out)
}

fn number(path: &Path, line: usize, field: &str, what: &str) -> Result<usize, LfwError> {
    field.parse().map_err(|_| LfwError::Corrupt {
        path: path.to_path_buf(),
        problem: format!("line {line}: {what} {field:?} is not a whole number"),
    })
}

/// The sizes a copy of LFW must have: the official ones for any copy the experiments read; a
/// copy built by [`crate::data::lfw_build`] from a tree of JPEGs is checked against the sizes its
/// own official lists give (the same, for the whole of LFW).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub images: usize,
    pub identities: usize,
    pub view1_train_people: usize,
    pub view1_test_people: usize,
    pub view1_train_pairs: usize,
    pub view1_test_pairs: usize,
    /// Pairs per View 2 fold (there are ten folds).
    pub view2_pairs_per_fold: usize,
}

impl Sizes {
    pub const OFFICIAL: Sizes = Sizes {
        images: IMAGES,
        identities: IDENTITIES,
        view1_train_people: 4_038,
        view1_test_people: 1_711,
        view1_train_pairs: 2_200,
        view1_test_pairs: 1_000,
        view2_pairs_per_fold: 600,
    };
}

impl Lfw {
    /// Loads and validates LFW from `dir` (see the module doc for what is checked).
    pub fn load(dir: &Path) -> Result<Lfw, LfwError> {
        Lfw::load_sized(dir, &Sizes::OFFICIAL)
    }

    /// [`Lfw::load`] for a copy of other sizes (a build from a partial tree of JPEGs).
    pub fn load_sized(dir: &Path, sizes: &Sizes) -> Result<Lfw, LfwError> {
        let Sizes { images: n_images, identities: n_identities, .. } = *sizes;
        let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
        for (name, sum) in listed_files(dir)? {
            let path = dir.join(&name);
            let bytes = read(&path)?;
            let actual = format!("{:x}", Sha256::digest(&bytes));
            if actual != sum {
                return Err(LfwError::Corrupt {
                    path,
                    problem: format!("its SHA-256 is {actual}, SHA256SUMS says {sum} (damaged, or another version)"),
                });
            }
            if REQUIRED.contains(&name.as_str()) {
                contents.insert(name, bytes);
            }
        }
        let mut take = |name: &str| -> (PathBuf, Vec<u8>) {
            (dir.join(name), contents.remove(name).expect("listed_files checks that SHA256SUMS lists it"))
        };

        let (path, bytes) = take(IMAGES_FILE);
        let images = idx_payload(&path, &bytes, 0x08, &[n_images, SIDE, SIDE], 1)?;
        let (path, bytes) = take(LABELS_FILE);
        let raw = idx_payload(&path, &bytes, 0x0c, &[n_images], 4)?;
        let labels: Vec<u32> =
            raw.chunks_exact(4).map(|c| i32::from_be_bytes(c.try_into().expect("4 bytes")) as u32).collect();
        if let Some((i, l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= n_identities) {
            return Err(LfwError::Corrupt {
                path,
                problem: format!("image {i} has identity {}, outside 0..{n_identities}", *l as i32),
            });
        }

        let (path, bytes) = take(IDENTITIES_FILE);
        let names = identities(&path, &text(&path, bytes)?, &labels, n_identities)?;
        let mut counts = vec![0; names.len()];
        for &l in &labels {
            counts[l as usize] += 1;
        }
        let mut lfw = Lfw {
            images,
            labels,
            names,
            counts,
            view1_train_people: Vec::new(),
            view1_test_people: Vec::new(),
            view1_train_pairs: Vec::new(),
            view1_test_pairs: Vec::new(),
            view2_fold_people: vec![Vec::new(); 10],
            view2_pairs: Vec::new(),
        };
        for (file, people) in
            [(VIEW1_TRAIN_PEOPLE, sizes.view1_train_people), (VIEW1_TEST_PEOPLE, sizes.view1_test_people)]
        {
            let (path, bytes) = take(file);
            let list = lfw.people(&path, &text(&path, bytes)?, people)?;
            if file == VIEW1_TRAIN_PEOPLE {
                lfw.view1_train_people = list;
            } else {
                lfw.view1_test_people = list;
            }
        }
        let (path, bytes) = take(VIEW2_PEOPLE);
        lfw.view2_fold_people = lfw.folds(&path, &text(&path, bytes)?)?;
        for (file, folds, per_fold) in [
            (VIEW1_TRAIN_PAIRS, 1, sizes.view1_train_pairs),
            (VIEW1_TEST_PAIRS, 1, sizes.view1_test_pairs),
            (VIEW2_PAIRS, 10, sizes.view2_pairs_per_fold),
        ] {
            let (path, bytes) = take(file);
            let pairs = lfw.pairs(&path, &text(&path, bytes)?, folds, per_fold)?;
            match file {
                VIEW1_TRAIN_PAIRS => lfw.view1_train_pairs = pairs,
                VIEW1_TEST_PAIRS => lfw.view1_test_pairs = pairs,
                _ => lfw.view2_pairs = pairs,
            }
        }
        Ok(lfw)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The indices of the images of `people` (in image order).
    pub fn images_of(&self, people: &[u32]) -> Vec<usize> {
        let mut wanted = vec![false; self.names.len()];
        for &p in people {
            wanted[p as usize] = true;
        }
        (0..self.len()).filter(|&i| wanted[self.labels[i] as usize]).collect()
    }

    /// A person list (`id  name  n_images`): every id known, its name and image count those of
    /// identities.txt, `expected` people in all.
    fn people(&self, path: &Path, text: &str, expected: usize) -> Result<Vec<u32>, LfwError> {
        let mut out = Vec::new();
        for (line, f) in rows(path, text, 3)? {
            out.push(self.person(path, line, &f[0], &f[1], &f[2])?);
        }
        self.count_is(path, "people", out.len(), expected)?;
        Ok(out)
    }

    /// View 2's people (`fold  id  name  n_images`): ten identity-disjoint folds covering all
    /// 5,749 people.
    fn folds(&self, path: &Path, text: &str) -> Result<Vec<Vec<u32>>, LfwError> {
        let mut folds = vec![Vec::new(); 10];
        let mut fold_of = vec![usize::MAX; self.names.len()];
        for (line, f) in rows(path, text, 4)? {
            let fold = number(path, line, &f[0], "fold")?;
            let id = self.person(path, line, &f[1], &f[2], &f[3])?;
            let corrupt = |problem: String| LfwError::Corrupt { path: path.to_path_buf(), problem };
            if fold >= 10 {
                return Err(corrupt(format!("line {line}: fold {fold}, expected 0-9")));
            }
            if fold_of[id as usize] != usize::MAX {
                return Err(corrupt(format!("line {line}: {} is already in fold {}", f[2], fold_of[id as usize])));
            }
            fold_of[id as usize] = fold;
            folds[fold].push(id);
        }
        self.count_is(path, "people", folds.iter().map(Vec::len).sum(), self.names.len())?;
        Ok(folds)
    }

    fn person(&self, path: &Path, line: usize, id: &str, name: &str, n: &str) -> Result<u32, LfwError> {
        let corrupt = |problem: String| LfwError::Corrupt { path: path.to_path_buf(), problem };
        let id = number(path, line, id, "id")?;
        let Some(known) = self.names.get(id) else {
            return Err(corrupt(format!("line {line}: identity {id} does not exist (there are {})", self.names.len())));
        };
        if known != name {
            return Err(corrupt(format!("line {line}: identity {id} is {known} in {IDENTITIES_FILE}, not {name}")));
        }
        let images = self.counts[id];
        if number(path, line, n, "image count")? != images {
            return Err(corrupt(format!("line {line}: {name} has {images} images, not {n}")));
        }
        Ok(id as u32)
    }

    /// A pair list (`fold  same  index_a  index_b`): `folds` × `per_fold` pairs, half same, every
    /// index an image, `same` true exactly when both images show one person, and in View 2 both
    /// people in the pair's own fold.
    fn pairs(&self, path: &Path, text: &str, folds: usize, per_fold: usize) -> Result<Vec<FacePair>, LfwError> {
        let corrupt = |problem: String| LfwError::Corrupt { path: path.to_path_buf(), problem };
        let mut out = Vec::new();
        for (line, f) in rows(path, text, 4)? {
            let fold = number(path, line, &f[0], "fold")?;
            let same = match f[1].as_str() {
                "1" => true,
                "0" => false,
                other => return Err(corrupt(format!("line {line}: same is {other:?}, expected 1 or 0"))),
            };
            let (a, b) = (number(path, line, &f[2], "index_a")?, number(path, line, &f[3], "index_b")?);
            if fold >= folds {
                return Err(corrupt(format!("line {line}: fold {fold}, but this view has {folds}")));
            }
            for index in [a, b] {
                if index >= self.len() {
                    return Err(corrupt(format!(
                        "line {line}: the pair names image {index}, but there are {} (0-{})",
                        self.len(),
                        self.len() - 1
                    )));
                }
            }
            let (la, lb) = (self.labels[a], self.labels[b]);
            if (la == lb) != same {
                return Err(corrupt(format!(
                    "line {line}: a {} pair of {} and {}",
                    if same { "same" } else { "different" },
                    self.names[la as usize],
                    self.names[lb as usize]
                )));
            }
            if folds == 10 {
                for person in [la, lb] {
                    if !self.view2_fold_people[fold].contains(&person) {
                        return Err(corrupt(format!(
                            "line {line}: {} is not among fold {fold}'s people",
                            self.names[person as usize]
                        )));
                    }
                }
            }
            out.push(FacePair { fold, a, b, same });
        }
        self.count_is(path, "pairs", out.len(), folds * per_fold)?;
        let same = out.iter().filter(|p| p.same).count();
        if 2 * same != out.len() {
            return Err(corrupt(format!("{same} of its {} pairs are same-person pairs, expected half", out.len())));
        }
        Ok(out)
    }

    fn count_is(&self, path: &Path, what: &str, got: usize, expected: usize) -> Result<(), LfwError> {
        if got == expected {
            return Ok(());
        }
        Err(LfwError::Corrupt { path: path.to_path_buf(), problem: format!("{got} {what}, expected {expected}") })
    }
}

/// identities.txt (`id  name  n_images  first_index`): ids 0..`expected` in order, each identity's
/// images the contiguous block the row gives, and every image in one block.
fn identities(path: &Path, text: &str, labels: &[u32], expected: usize) -> Result<Vec<String>, LfwError> {
    let corrupt = |problem: String| LfwError::Corrupt { path: path.to_path_buf(), problem };
    let mut names = Vec::new();
    let mut next_image = 0;
    for (line, f) in rows(path, text, 4)? {
        let id = number(path, line, &f[0], "id")?;
        let (n, first) = (number(path, line, &f[2], "n_images")?, number(path, line, &f[3], "first_index")?);
        if id != names.len() {
            return Err(corrupt(format!("line {line}: id {id}, expected {} (ids in order)", names.len())));
        }
        if first != next_image || n == 0 || first + n > labels.len() {
            return Err(corrupt(format!(
                "line {line}: images {first}..{} do not follow on from image {next_image}",
                first + n
            )));
        }
        if let Some(i) = (first..first + n).find(|&i| labels[i] as usize != id) {
            return Err(corrupt(format!("line {line}: image {i} belongs to identity {}, not {id}", labels[i])));
        }
        names.push(f[1].clone());
        next_image = first + n;
    }
    if names.len() != expected || next_image != labels.len() {
        return Err(corrupt(format!(
            "{} identities covering {next_image} images, expected {expected} covering {}",
            names.len(),
            labels.len()
        )));
    }
    Ok(names)
}
