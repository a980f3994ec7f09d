//! LFW's data step: a complete copy loads with the official counts; a missing file, a wrong
//! checksum, a truncated IDX file and a pair naming an unknown image are each a clear error
//! naming the file, a bad mirror leaves the target as it was, and a file changed after a check
//! is checked again. Needs LFW in data/lfw or
//! LFW_MIRROR.

use std::path::Path;

use replicate::data::lfw::{fetch, Lfw, IDENTITIES, IMAGES, PIXELS};
use replicate::data::{LfwError, LfwSource};
use sha2::{Digest, Sha256};

mod common;

use common::{lfw_dir, replicate, succeed, temp_dir};

/// A copy of every file SHA256SUMS lists, from `from` into a fresh directory.
fn copy_of(from: &Path, name: &str) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let sums = std::fs::read_to_string(from.join("SHA256SUMS")).unwrap();
    std::fs::copy(from.join("SHA256SUMS"), dir.join("SHA256SUMS")).unwrap();
    for line in sums.lines() {
        let file = line.split_whitespace().nth(1).unwrap().trim_start_matches("./");
        let target = dir.join(file);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(file), target).unwrap();
    }
    dir
}

/// Replaces `file` in `dir` and its line in SHA256SUMS, as a consistent but wrong release would.
fn replace_with_checksum(dir: &Path, file: &str, bytes: &[u8]) {
    std::fs::write(dir.join(file), bytes).unwrap();
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let sum = format!("{:x}", Sha256::digest(bytes));
    let rewritten: Vec<String> = sums
        .lines()
        .map(|l| if l.ends_with(&format!("./{file}")) { format!("{sum}  ./{file}") } else { l.to_string() })
        .collect();
    std::fs::write(dir.join("SHA256SUMS"), rewritten.join("\n") + "\n").unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn load_error(dir: &Path) -> String {
    Lfw::load(dir).err().expect("this copy must not load").to_string()
}

#[test]
fn lfw_loads_with_the_official_protocol() {
    let lfw = Lfw::load(&lfw_dir()).unwrap();
    assert_eq!((lfw.len(), lfw.names.len(), lfw.images.len()), (IMAGES, IDENTITIES, IMAGES * PIXELS));
    assert_eq!((lfw.view1_train_pairs.len(), lfw.view1_test_pairs.len(), lfw.view2_pairs.len()), (2_200, 1_000, 6_000));
    assert_eq!((lfw.view1_train_people.len(), lfw.view1_test_people.len()), (4_038, 1_711));
    assert!(lfw.view2_fold_people.iter().all(|f| !f.is_empty()));
    assert_eq!(lfw.view2_fold_people.iter().map(Vec::len).sum::<usize>(), IDENTITIES);
    // pairs.txt opens with its first fold's first same-person pair: images 57 and 60.
    let first = lfw.view2_pairs[0];
    assert_eq!((first.fold, first.a, first.b, first.same), (0, 57, 60, true));
    assert_eq!(lfw.labels[57], lfw.labels[60]);
    // View 1's people are disjoint, as are View 2's folds, and a fold's pairs use only its people.
    assert!(lfw.view1_train_people.iter().all(|p| !lfw.view1_test_people.contains(p)));
    for pair in lfw.view2_pairs.iter().filter(|p| p.fold == 3) {
        assert!(lfw.view2_fold_people[3].contains(&lfw.labels[pair.a]));
    }
    assert!(lfw.names.iter().any(|n| n == "Aaron_Eckhart"));
    let most = lfw.counts.iter().enumerate().max_by_key(|(_, &c)| c).unwrap();
    assert_eq!((lfw.names[most.0].as_str(), *most.1), ("George_W_Bush", 530));
    assert_eq!(lfw.images_of(&[most.0 as u32]).len(), 530);
}

#[test]
fn a_missing_file_a_wrong_checksum_a_truncated_idx_and_an_unknown_image_are_clear_errors() {
    let good = lfw_dir();

    let dir = copy_of(&good, "lfw-missing");
    std::fs::remove_file(dir.join("pairs_view2.tsv")).unwrap();
    let err = load_error(&dir);
    assert!(err.contains("pairs_view2.tsv is missing") && err.contains("LFW_MIRROR"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = copy_of(&good, "lfw-checksum");
    let mut identities = std::fs::read(dir.join("identities.txt")).unwrap();
    let last = identities.len() - 2;
    identities[last] ^= 1;
    std::fs::write(dir.join("identities.txt"), &identities).unwrap();
    let err = load_error(&dir);
    assert!(err.contains("identities.txt") && err.contains("SHA-256") && err.contains("delete it"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = copy_of(&good, "lfw-truncated");
    let mut raw = Vec::new();
    use std::io::Read;
    flate2::read::GzDecoder::new(&std::fs::read(dir.join("labels.idx1-int32.gz")).unwrap()[..])
        .read_to_end(&mut raw)
        .unwrap();
    replace_with_checksum(&dir, "labels.idx1-int32.gz", &gzip(&raw[..raw.len() - 40]));
    let err = load_error(&dir);
    assert!(err.contains("labels.idx1-int32.gz") && err.contains("truncated"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let dir = copy_of(&good, "lfw-unknown-image");
    let pairs = std::fs::read_to_string(dir.join("pairs_dev_test.tsv")).unwrap();
    let mut lines: Vec<String> = pairs.lines().map(str::to_string).collect();
    lines[5] = "0\t1\t57\t13233".into();
    replace_with_checksum(&dir, "pairs_dev_test.tsv", (lines.join("\n") + "\n").as_bytes());
    let err = load_error(&dir);
    assert!(err.contains("pairs_dev_test.tsv") && err.contains("line 6") && err.contains("image 13233"), "{err}");

    // That copy as a mirror: fetch refuses it and writes nothing into the target.
    let target = temp_dir("lfw-target");
    let err = fetch(&target, Some(&dir)).unwrap_err();
    assert!(matches!(err, LfwError::NotFound { .. }) && err.to_string().contains("image 13233"), "{err}");
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0, "a bad mirror must leave the target empty");
    // The good copy as a mirror fills it, and a second fetch finds it in place.
    assert_eq!(fetch(&target, Some(&good)).unwrap(), LfwSource::Mirror(good.clone()));
    assert_eq!(fetch(&target, None).unwrap(), LfwSource::AlreadyPresent);
    // A file changed after that check (same size, new modification time) is checked again.
    let mut identities = std::fs::read(target.join("identities.txt")).unwrap();
    identities[10] ^= 1;
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(target.join("identities.txt"), &identities).unwrap();
    let err = fetch(&target, None).unwrap_err().to_string();
    assert!(err.contains("identities.txt") && err.contains("SHA-256"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&target).unwrap();
}

/// LFW's protocol for trained models: View 1 trains on its 1,184 training people with two or more
/// images, a View 2 fold on the other nine folds' people; no scored person is ever trained on.
#[test]
fn trained_models_never_see_a_scored_person() {
    use replicate::experiments::faces::{face_defaults, FaceSettings, ProtocolSplit};
    let lfw = Lfw::load(&lfw_dir()).unwrap();
    let settings = |split: &str| FaceSettings { split: split.into(), ..face_defaults(replicate::Profile::Quick).1 };
    let view1 = ProtocolSplit::new(&lfw, &settings("view1")).unwrap();
    assert_eq!((view1.training_people.len(), view1.training_images.len()), (1_184, 6_671), "FACES.md's counts");
    assert_eq!(view1.held_out.iter().filter(|&&h| h).count(), 1_000);
    let fold3 = ProtocolSplit::new(&lfw, &settings("fold3")).unwrap();
    assert_eq!((fold3.pairs.len(), fold3.held_out.iter().filter(|&&h| h).count()), (6_000, 600));
    for split in [&view1, &fold3] {
        let scored: std::collections::HashSet<u32> = split
            .pairs
            .iter()
            .zip(&split.held_out)
            .filter(|(_, &h)| h)
            .flat_map(|(p, _)| [lfw.labels[p.a], lfw.labels[p.b]])
            .collect();
        assert!(split.training_images.iter().all(|&i| !scored.contains(&lfw.labels[i])));
        assert!(split.training_people.iter().all(|p| lfw.counts[*p as usize] >= 2));
    }
    // A smoke run's caps keep both kinds of pair.
    let capped = ProtocolSplit::new(&lfw, &FaceSettings { max_pairs: 10, max_people: 5, ..settings("view1") }).unwrap();
    let same = capped.same();
    assert_eq!((same.len(), same.iter().filter(|&&s| s).count()), (20, 10));
    assert_eq!(capped.training_people.len(), 5);
}

/// Pairs of faces drawn side by side (for the notebook's worst pairs, written under target/ only).
#[test]
fn face_pairs_are_drawn_as_a_picture() {
    let lfw = Lfw::load(&lfw_dir()).unwrap();
    let face = |i: usize| lfw.images[i * PIXELS..(i + 1) * PIXELS].to_vec();
    let grid = replicate::plot::FacePairGrid {
        pairs: vec![(face(57), face(60), "same, d = 0.1".into()), (face(0), face(1), "different".into())],
        side: 64,
        cols: 2,
        title: "two pairs".into(),
    };
    let dir = temp_dir("face-pairs");
    let png = replicate::plot::save_png(&dir.join("pairs"), &grid).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(bytes.len() > 5_000, "a picture of four faces, not an empty frame: {} bytes", bytes.len());
    assert!(!dir.join("pairs.svg").exists(), "pictures are PNG only");
}

/// `verify` reads LFW where `--lfw-dir` says, as `run` does (not from the default location).
#[test]
fn verify_reads_lfw_from_the_lfw_dir_it_is_given() {
    let results = temp_dir("verify-lfw-dir");
    let lfw = lfw_dir();
    let lfw = lfw.to_str().unwrap();
    let elsewhere = |args: &[&str]| {
        let mut command = replicate(&results, &[&["--lfw-dir", lfw], args].concat());
        command.env("REPLICATE_LFW_DIR", "/nonexistent/lfw");
        command
    };
    succeed(elsewhere(&["run", "lfw-baselines", "--profile", "smoke"]));
    let out = succeed(elsewhere(&["verify", "lfw-baselines", "--sample", "1"]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("lfw-baselines") && said.contains("identical"), "{said}");
}

/// `redraw` rebuilds the figures and REPORT.md from the tables and trains nothing.
#[test]
fn redraw_rebuilds_figures_and_the_report_from_the_tables_alone() {
    let results = temp_dir("redraw");
    let lfw = lfw_dir();
    let lfw = lfw.to_str().unwrap();
    succeed(replicate(&results, &["--lfw-dir", lfw, "run", "lfw-baselines", "--profile", "smoke"]));
    let runs = std::fs::read(results.join("lfw-baselines/runs.parquet")).unwrap();
    std::fs::remove_file(results.join("lfw-baselines/baselines.png")).unwrap();
    std::fs::remove_file(results.join("REPORT.md")).unwrap();
    let out = succeed(replicate(&results, &["redraw"]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("lfw-baselines: 2 figure files redrawn"), "{said}");
    assert!(results.join("lfw-baselines/baselines.png").exists());
    let report = std::fs::read_to_string(results.join("REPORT.md")).unwrap();
    assert!(report.contains("LFW baselines"), "{report}");
    assert_eq!(std::fs::read(results.join("lfw-baselines/runs.parquet")).unwrap(), runs, "nothing was recorded");
}
