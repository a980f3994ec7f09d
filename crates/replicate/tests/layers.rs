//! The house rules, read from the sources: each room of the crate imports only rooms to its left
//! in the README's chain (so there is no circle), and no paper module imports another paper's.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The README's chain, left to right.
const CHAIN: [&str; 20] = [
    "util",
    "stats",
    "data",
    "losses",
    "nn",
    "descriptors",
    "metrics",
    "optim",
    "objectives",
    "progress",
    "train",
    "results",
    "plot",
    "verdict",
    "experiments",
    "runner",
    "notebook",
    "bench",
    "main",
    "lib",
];

const PAPERS: [&str; 11] = [
    "softmax_baseline",
    "center_loss",
    "lsoftmax",
    "deepid2",
    "facenet",
    "lfw_baselines",
    "deepid2_lfw",
    "facenet_lfw",
    "sphereface",
    "cosface",
    "arcface",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The room a source file belongs to (its first path component under src/, without `.rs`).
fn room(src: &Path, file: &Path) -> String {
    let first = file.strip_prefix(src).unwrap().components().next().unwrap();
    first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The code of a file without its tests module (tests may reach anywhere) and comments.
fn code(file: &Path) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every `prefix<name>` in `text`, as names.
fn mentions(text: &str, prefix: &str) -> BTreeSet<String> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            text[i + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn every_room_imports_only_rooms_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let me = room(&src, file);
        let Some(mine) = CHAIN.iter().position(|r| *r == me) else {
            problems.push(format!("{} is in no room of the chain", file.display()));
            continue;
        };
        let text = code(file);
        let prefix = if me == "main" { "replicate::" } else { "crate::" };
        for used in mentions(&text, prefix) {
            match CHAIN.iter().position(|r| *r == used) {
                Some(theirs) if theirs < mine => {}
                Some(_) if used == me => {}
                // Re-exported crates (candle_core, polars) and the crate's own re-exports.
                None if ["candle_core", "polars", "Results", "Profile", "Experiment", "RunOptions", "say"]
                    .contains(&used.as_str()) => {}
                _ => problems.push(format!("{} ({me}) uses {prefix}{used}", file.display())),
            }
        }
    }
    assert!(problems.is_empty(), "imports that run against the chain:\n{}", problems.join("\n"));
}

#[test]
fn no_paper_module_imports_another() {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/experiments");
    let mut problems = Vec::new();
    for paper in PAPERS {
        let mut files = Vec::new();
        sources(&experiments.join(paper), &mut files);
        assert!(!files.is_empty(), "experiments/{paper}/ has no sources");
        for file in &files {
            let text = code(file);
            let used: BTreeSet<String> =
                mentions(&text, "experiments::").into_iter().chain(mentions(&text, "super::")).collect();
            for other in PAPERS.iter().chain(&["leaderboard", "leaderboard_lfw"]).filter(|p| **p != paper) {
                if used.contains(*other) {
                    problems.push(format!("{} uses {other}", file.display()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "paper modules that import another paper:\n{}", problems.join("\n"));
}

#[test]
fn no_paper_file_does_the_frameworks_job() {
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/experiments");
    let mut files = Vec::new();
    // The leaderboards compare the papers' methods, so they alone read the papers' configs.
    for paper in PAPERS.iter().chain(&["leaderboard", "leaderboard_lfw"]) {
        sources(&experiments.join(paper), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, code(f).lines().filter(|l| !l.trim().is_empty()).count()))
        .filter(|(_, n)| *n > 250)
        .map(|(f, n)| format!("{}: {n} lines outside its tests", f.display()))
        .collect();
    assert!(long.is_empty(), "paper files past 250 lines:\n{}", long.join("\n"));
}
