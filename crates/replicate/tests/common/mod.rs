//! Helpers the integration tests share: temporary directories, MNIST, the binary.

#![allow(dead_code)] // each test file uses its own part of these

pub mod tensors;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use replicate::data::fetch;
use replicate::experiments::Profile;
use replicate::results::{Cell, Table};
use replicate::runner::{PlanOptions, RunOptions};

/// A fresh, empty directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("replicate-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// data/mnist, filled from MNIST_MIRROR if needed.
pub fn data_dir() -> PathBuf {
    let dir = replicate::util::default_data_dir().unwrap();
    let mirror = std::env::var_os("MNIST_MIRROR").map(PathBuf::from);
    fetch(&dir, mirror.as_deref()).unwrap_or_else(|e| panic!("these tests need MNIST: run `just data` first ({e})"));
    dir
}

/// The smoke profile with these overrides, on `results`.
pub fn options(results: &Path, overrides: &[(&str, &str)]) -> RunOptions {
    let plan = PlanOptions {
        overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..PlanOptions::new(Profile::Smoke, results)
    };
    RunOptions::new(plan, &data_dir())
}

/// `replicate --data-dir … --results-dir <results> <args>`, not yet started.
pub fn replicate(results: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_replicate"));
    command.args(["--data-dir", data_dir().to_str().unwrap(), "--results-dir", results.to_str().unwrap()]);
    command.args(args).env("REPLICATE_PLAIN_PROGRESS", "1");
    command
}

/// Runs it, failing the test with its stderr if it fails.
pub fn succeed(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

pub fn column(table: &Table, name: &str) -> Vec<Cell> {
    table.rows.iter().map(|r| Table::get(r, name).cloned().unwrap_or(Cell::Null)).collect()
}

/// data/lfw, filled from LFW_MIRROR if needed.
pub fn lfw_dir() -> PathBuf {
    let dir = replicate::util::default_lfw_dir().unwrap();
    let mirror = std::env::var_os("LFW_MIRROR").map(PathBuf::from);
    replicate::data::lfw::fetch(&dir, mirror.as_deref())
        .unwrap_or_else(|e| panic!("these tests need LFW: set LFW_MIRROR and run `just data` first ({e})"));
    dir
}
