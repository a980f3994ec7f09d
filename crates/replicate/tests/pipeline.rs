//! The pipeline end to end on the smoke profile: data errors, every experiment's tables and
//! figures, determinism, and resuming an interrupted sweep. Needs MNIST in data/mnist (`just data`)
//! or MNIST_MIRROR.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use replicate::data::{fetch, DataError, Datasets, Mnist};
use replicate::experiments;
use replicate::results::{Cell, Store, Table};
use replicate::runner;

mod common;

use common::{column, data_dir, lfw_dir, options, replicate, succeed, temp_dir};

#[test]
fn corrupt_truncated_and_missing_data_give_clear_errors() {
    let good = data_dir();
    let dir = temp_dir("corrupt");
    for f in replicate::data::mnist::FILES {
        std::fs::copy(good.join(f.name), dir.join(f.name)).unwrap();
    }
    assert!(Mnist::load(&dir).is_ok());

    // Truncated: the test labels lose their last 10 bytes.
    let labels = dir.join("t10k-labels-idx1-ubyte");
    let bytes = std::fs::read(&labels).unwrap();
    std::fs::write(&labels, &bytes[..bytes.len() - 10]).unwrap();
    let err = Mnist::load(&dir).err().expect("a truncated file must fail").to_string();
    assert!(err.contains("t10k-labels-idx1-ubyte") && err.contains("truncated") && err.contains("just data"), "{err}");

    // Wrong magic number in the training images.
    std::fs::write(&labels, &bytes).unwrap();
    let images = dir.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&images).unwrap();
    bytes[3] = 0x07;
    std::fs::write(&images, &bytes).unwrap();
    let err = Mnist::load(&dir).err().expect("a wrong magic number must fail").to_string();
    assert!(err.contains("train-images-idx3-ubyte") && err.contains("wrong magic number 2055"), "{err}");

    // Missing directory.
    let missing = dir.join("nowhere");
    let err = Mnist::load(&missing).err().unwrap();
    assert!(matches!(err, DataError::MissingDir(_)) && err.to_string().contains("just data"), "{err}");

    // fetch with nothing anywhere names every place it tried.
    let err = fetch(&missing, Some(&dir.join("no-mirror"))).unwrap_err().to_string();
    #[cfg(not(feature = "hub"))]
    assert!(err.contains("no-mirror") && err.contains("MNIST_MIRROR") && err.contains("hub"), "{err}");
    let _ = err;

    // fetch repairs a corrupt copy from a good mirror, and a bad mirror leaves the target untouched.
    let repaired = fetch(&dir, Some(&good));
    assert!(repaired.is_ok(), "{repaired:?}");
    assert!(Mnist::load(&dir).is_ok());
    let bad_mirror = temp_dir("bad-mirror");
    for f in replicate::data::mnist::FILES {
        std::fs::write(bad_mirror.join(format!("{}.gz", f.name)), b"not gzip at all").unwrap();
    }
    let empty = dir.join("empty");
    let err = fetch(&empty, Some(&bad_mirror)).unwrap_err().to_string();
    assert!(err.contains("gzip stream is corrupt"), "{err}");
    assert!(!empty.join("train-images-idx3-ubyte").exists());
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(bad_mirror).unwrap();
}

/// Every column except wall-clock timing, the time a run was recorded and its thread count (which
/// `--jobs` changes and the numbers do not depend on: tests/reliability.rs).
fn deterministic_part(table: &Table) -> Table {
    let skip = ["train_seconds", "images_per_second", "finished_at_unix", "threads"];
    Table {
        rows: table
            .rows
            .iter()
            .map(|r| r.iter().filter(|(n, _)| !skip.contains(&n.as_str())).cloned().collect())
            .collect(),
        source: String::new(),
    }
}

#[test]
fn every_experiment_writes_tables_and_figures_and_the_same_seed_repeats_exactly() {
    let a = temp_dir("smoke-a");
    let b = temp_dir("smoke-b");
    let data = Datasets::with_mnist(Mnist::load(&data_dir()).unwrap(), &lfw_dir());
    for exp in experiments::registry() {
        let report = runner::run_experiment(exp, &options(&a, &[]), Some(&data)).unwrap();
        assert!(!report.executed.is_empty(), "{}: nothing ran", exp.name());
        assert!(
            report.figures.iter().any(|f| f.extension().is_some_and(|e| e == "png")),
            "{}: no PNG figure",
            exp.name()
        );
        for f in &report.figures {
            let bytes = std::fs::read(f).unwrap();
            assert!(bytes.len() > 1000, "{} is nearly empty", f.display());
        }
        let store = Store::new(&a, exp.name());
        let runs = store.load("runs").unwrap();
        // Every row was trained here or copied from an experiment of the same trainer.
        assert_eq!(runs.rows.len(), report.executed.len() + report.shared.len(), "{}", exp.name());
        if exp.name() == "leaderboard-lfw" {
            assert_eq!(
                report.shared.len(),
                30,
                "softmax, contrastive and triplet come from deepid2-lfw and facenet-lfw"
            );
        }
        for col in
            ["run_id", "experiment", "seed", "status", "config_hash", "git_commit", "git_dirty", "crate_versions"]
        {
            assert!(runs.columns().contains(&col.to_string()), "{}: runs.parquet lacks {col}", exp.name());
        }
        // Experiments that train log curves; LFW's baselines train nothing.
        let trains = runs.columns().contains(&"iterations".to_string());
        let tables: &[&str] = if trains { &["runs", "curves", "features"] } else { &["runs", "folds", "roc"] };
        if trains {
            let curves = store.load("curves").unwrap();
            assert!(curves.columns().iter().any(|c| c == "loss") && !curves.rows.is_empty());
        }

        runner::run_experiment(exp, &options(&b, &[]), Some(&data)).unwrap();
        let other = Store::new(&b, exp.name());
        for &table in tables {
            let (x, y) =
                (deterministic_part(&store.load(table).unwrap()), deterministic_part(&other.load(table).unwrap()));
            assert_eq!(x.rows.len(), y.rows.len(), "{}: {table}.parquet has a different number of rows", exp.name());
            for (rx, ry) in x.rows.iter().zip(&y.rows) {
                let diff = rx.iter().zip(ry).find(|(a, b)| a != b);
                assert!(
                    diff.is_none(),
                    "{}: {table}.parquet differs between two runs with the same seed: {diff:?}",
                    exp.name()
                );
            }
        }
        assert!(column(&runs, "status").iter().all(|s| matches!(s, Cell::Str(_))));
    }
    rescoring_gives_the_recorded_measurements_back(&a, &data);
    std::fs::remove_dir_all(a).unwrap();
    std::fs::remove_dir_all(b).unwrap();
}

/// `replicate rescore` on the smoke leaderboard, deepid2 and facenet, on MNIST and on LFW: scoring from the kept weights repeats every
/// recorded measurement bit for bit; a measurement changed in the table comes back, and the row
/// names the build that scored it; an experiment that cannot score without training says so.
fn rescoring_gives_the_recorded_measurements_back(results: &Path, data: &Datasets) {
    for name in ["leaderboard", "deepid2", "facenet", "leaderboard-lfw", "deepid2-lfw", "facenet-lfw"] {
        let report = runner::rescore::rescore(experiments::find(name).unwrap(), results, data).unwrap();
        assert!(report.without_weights.is_empty(), "{name}: {report:?}");
        assert!(!report.rescored.is_empty(), "{name}: nothing scored again");
        for r in &report.rescored {
            assert!(r.measured > 0 && r.changes.is_empty(), "{name}: {}", r.describe());
        }
    }
    let board = experiments::find("leaderboard").unwrap();
    let report = runner::rescore::rescore(board, results, data).unwrap();
    let store = Store::new(results, "leaderboard");
    let id = report.rescored[0].run_id.clone();
    let accuracy = |runs: &Table| -> f64 {
        let row = runs.rows.iter().find(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(&id)).unwrap();
        Table::get(row, "identification_accuracy").and_then(Cell::as_f64).unwrap()
    };
    let recorded = accuracy(&store.load("runs").unwrap());
    store.rescore_run(&id, &[("identification_accuracy".into(), Cell::F64(-1.0))], "tampered").unwrap();
    let again = runner::rescore::rescore(board, results, data).unwrap();
    let changed: Vec<_> = again.rescored.iter().filter(|r| !r.changes.is_empty()).collect();
    assert_eq!(changed.len(), 1, "only the tampered run changes");
    assert_eq!(changed[0].changes, vec![("identification_accuracy".to_string(), Some(-1.0), Some(recorded))]);
    let runs = store.load("runs").unwrap();
    assert_eq!(accuracy(&runs), recorded);
    let row = runs.rows.iter().find(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(&id)).unwrap();
    let rescored_with = Table::get(row, replicate::results::RESCORED_WITH).and_then(Cell::as_str).unwrap();
    assert_ne!(rescored_with, "tampered", "the row names the build that scored it last");
    let err =
        runner::rescore::rescore(experiments::find("center-loss").unwrap(), results, data).unwrap_err().to_string();
    assert!(err.contains("cannot score its runs again") && err.contains("replicate verify center-loss"), "{err}");
}

#[test]
fn an_interrupted_sweep_resumes_without_redoing_finished_runs() {
    let results = temp_dir("resume");
    let args = ["run", "softmax-baseline", "--profile", "smoke", "--set", "seed=1,2,3", "--set", "iterations=60"];
    let mut child = replicate(&results, &args).spawn().unwrap();
    // Interrupt as soon as the first run is recorded.
    let store = Store::new(&results, "softmax-baseline");
    let started = Instant::now();
    while store.recorded().map(|d| d.is_empty()).unwrap_or(true) {
        assert!(started.elapsed() < Duration::from_secs(300), "the first run never finished");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().unwrap();
    let first = store.load("runs").unwrap();
    let done_before: Vec<Cell> = column(&first, "run_id");
    assert!(
        !done_before.is_empty() && done_before.len() < 3,
        "expected an interrupted sweep, found {} runs",
        done_before.len()
    );
    let seconds_before = column(&first, "train_seconds");

    let out = succeed(replicate(&results, &args));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} runs executed, {} already recorded", 3 - done_before.len(), done_before.len())),
        "{stdout}"
    );
    let after = store.load("runs").unwrap();
    assert_eq!(after.rows.len(), 3);
    // The finished runs were not recomputed: their rows, timing included, are unchanged.
    for (id, secs) in done_before.iter().zip(&seconds_before) {
        let row = after.rows.iter().find(|r| Table::get(r, "run_id") == Some(id)).unwrap();
        assert_eq!(Table::get(row, "train_seconds"), Some(secs));
    }
    // No half-written files were left behind.
    let leftovers: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(results).unwrap();
}

#[test]
fn unknown_experiments_keys_and_values_list_the_valid_ones() {
    let results = temp_dir("bad-args");
    let err = experiments::find("centre-loss").err().unwrap().to_string();
    assert!(err.contains("valid experiments") && err.contains("softmax-baseline"), "{err}");
    let exp = experiments::find("softmax-baseline").unwrap();
    let err = runner::plan(exp, &options(&results, &[("widht", "1")]).plan).unwrap_err();
    assert!(format!("{err:#}").contains("valid keys") && format!("{err:#}").contains("width"), "{err:#}");
    let err = runner::plan(exp, &options(&results, &[("kernels", "gpu")]).plan).unwrap_err();
    assert!(format!("{err:#}").contains("candle") && format!("{err:#}").contains("fast"), "{err:#}");
    std::fs::remove_dir_all(results).unwrap();
}

#[test]
fn a_diverging_run_is_recorded_and_the_sweep_goes_on() {
    let results = temp_dir("diverge");
    let exp = experiments::find("softmax-baseline").unwrap();
    let report = runner::run_experiment(exp, &options(&results, &[("base_lr", "1e9,0.01")]), None).unwrap();
    assert_eq!(report.executed.len(), 2, "the sweep must go on after a divergence");
    assert_eq!(report.not_finished.len(), 1);
    let runs = Store::new(&results, "softmax-baseline").load("runs").unwrap();
    let statuses: Vec<(String, String, String)> = runs
        .rows
        .iter()
        .map(|r| {
            let s = |c: &str| Table::get(r, c).and_then(Cell::as_str).unwrap_or_default().to_string();
            (s("label"), s("status"), s("note"))
        })
        .collect();
    let diverged = statuses.iter().find(|s| s.0 == "base_lr=1000000000.0").expect("the large-lr run");
    assert_eq!(diverged.1, "diverged");
    assert!(
        diverged.2.contains("diverged at step") && diverged.2.contains("loss") && diverged.2.contains("base_lr="),
        "{}",
        diverged.2
    );
    assert!(statuses.iter().any(|s| s.0 == "base_lr=0.01" && s.1 == "finished"), "{statuses:?}");
    std::fs::remove_dir_all(results).unwrap();
}

#[test]
fn two_shards_merged_equal_one_unsharded_sweep() {
    let root = temp_dir("shards");
    let data = data_dir();
    let bin = env!("CARGO_BIN_EXE_replicate");
    let run = |dir: &Path, extra: &[&str]| {
        let out = Command::new(bin)
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--results-dir",
                dir.to_str().unwrap(),
                "run",
                "softmax-baseline",
                "--profile",
                "smoke",
                "--set",
                "seed=1,2,3",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (whole, a, b, merged) = (root.join("whole"), root.join("a"), root.join("b"), root.join("merged"));
    run(&whole, &[]);
    assert!(run(&a, &["--shard", "0/2"]).contains("2 runs executed"));
    assert!(run(&b, &["--shard", "1/2"]).contains("1 runs executed"));
    let out = Command::new(bin)
        .args(["--results-dir", merged.to_str().unwrap(), "merge", a.to_str().unwrap(), b.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for table in ["runs", "curves", "features"] {
        let x = deterministic_part(&Store::new(&whole, "softmax-baseline").load(table).unwrap());
        let y = deterministic_part(&Store::new(&merged, "softmax-baseline").load(table).unwrap());
        assert_eq!(x.rows.len(), y.rows.len(), "{table}: row counts differ");
        for (rx, ry) in x.rows.iter().zip(&y.rows) {
            let diff = rx.iter().zip(ry).find(|(a, b)| a != b);
            assert!(diff.is_none(), "{table}: merged shards differ from the unsharded sweep: {diff:?}");
        }
    }
    assert!(merged.join("softmax-baseline/fig2.png").exists() && merged.join("REPORT.md").exists());
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_report_withholds_verdicts_until_every_planned_run_is_recorded() {
    let results = temp_dir("incomplete");
    let data = data_dir();
    let run = |shard: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_replicate"))
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--results-dir",
                results.to_str().unwrap(),
                "run",
                "lsoftmax",
                "--profile",
                "smoke",
                "--shard",
                shard,
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(results.join("REPORT.md")).unwrap()
    };
    let half = run("0/2");
    assert!(half.contains("**Incomplete:** 2 of the 4 runs the smoke profile plans are recorded"), "{half}");
    let verdicts: Vec<&str> = half.lines().filter(|l| l.starts_with("| L-Softmax")).collect();
    assert!(
        !verdicts.is_empty() && verdicts.iter().all(|l| l.ends_with("| incomplete: runs missing |")),
        "{verdicts:?}"
    );
    let whole = run("1/2");
    // The summary above "How verdicts are decided" has verdicts now; the list of changes below it
    // names the earlier "incomplete" as what each verdict was before.
    let summary = whole.split("**How verdicts are decided.**").next().unwrap();
    assert!(!whole.contains("**Incomplete:**") && !summary.contains("incomplete: runs missing"), "{whole}");
    assert!(
        whole.contains("| incomplete: runs missing | reproduced |")
            || whole.contains("| incomplete: runs missing | inconclusive |"),
        "{whole}"
    );
    std::fs::remove_dir_all(results).unwrap();
}

/// `replicate verify` retrains recorded runs and finds them identical on the machine that
/// recorded them; a run whose recorded metric was altered is reported as differing, with the
/// recorded and retrained values, and the command fails; a run of another kernel revision is
/// said to be one.
#[test]
fn verify_retrains_recorded_runs_and_finds_what_changed() {
    let results = temp_dir("verify");
    succeed(replicate(&results, &["run", "center-loss", "--profile", "smoke"]));
    let out = succeed(replicate(&results, &["verify", "center-loss", "--sample", "2"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches(": identical (").count(), 2, "{text}");
    assert!(text.contains("same CPU, instruction set and kernel revision"), "{text}");

    // Alter one recorded metric: verify must say which, from what to what, and fail.
    let store = Store::new(&results, "center-loss");
    let path = store.path("runs");
    let metadata = replicate::results::read_parquet_metadata(&path).unwrap();
    let mut table = Table::from_frame(&replicate::results::read_parquet(&path).unwrap()).unwrap();
    for row in &mut table.rows {
        for (name, cell) in row.iter_mut() {
            if name == "test_accuracy" {
                *cell = Cell::F64(cell.as_f64().unwrap() + 0.25);
            }
        }
    }
    replicate::results::write_parquet(&path, &mut table.to_frame().unwrap(), metadata.clone()).unwrap();
    let out = replicate(&results, &["verify", "center-loss", "--sample", "1"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("1 of") && text.contains("test_accuracy"), "{text}");

    // As if recorded by the kernels' first revision: bit-identity is no longer expected, so the
    // difference is shown beside the seed spread and the command succeeds.
    for row in &mut table.rows {
        for (name, cell) in row.iter_mut() {
            if name == "kernel_revision" {
                *cell = 1u64.into();
            }
        }
    }
    replicate::results::write_parquet(&path, &mut table.to_frame().unwrap(), metadata).unwrap();
    let out = succeed(replicate(&results, &["verify", "center-loss", "--sample", "1"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("recorded on another CPU, instruction set or kernel revision"), "{text}");
    assert!(text.contains("test_accuracy"), "{text}");
    std::fs::remove_dir_all(results).unwrap();
}

/// A recorded run keeps its final weights: loaded into a fresh model of the run's config, they
/// give the recorded test features again (so new metrics can be scored without retraining).
#[test]
fn a_recorded_run_keeps_the_final_weights_that_gave_its_features() {
    let results = temp_dir("weights");
    let mnist = Mnist::load(&data_dir()).unwrap();
    let data = Datasets::with_mnist(mnist.clone(), &lfw_dir());
    let exp = experiments::registry().into_iter().find(|e| e.name() == "softmax-baseline").unwrap();
    runner::run_experiment(exp, &options(&results, &[]), Some(&data)).unwrap();
    let store = Store::new(&results, "softmax-baseline");
    let runs = store.load("runs").unwrap();
    let run = runs.records().next().unwrap();
    let id = run.run_id().unwrap();
    let config =
        replicate::nn::BackboneConfig::lenetspp(run.num("width").unwrap(), run.num("feature_dim").unwrap() as usize);
    let device = candle_core::Device::Cpu;
    let model = replicate::nn::Model::new(
        config,
        replicate::nn::HeadKind::Linear { classes: 10 },
        run.num("seed").unwrap() as u64 + 1000,
        replicate::nn::Kernels::Fast,
        &device,
    )
    .unwrap();
    let features = store.load("features").unwrap();
    let test: Vec<_> =
        features.records().filter(|r| r.run_id().unwrap() == id && r.text("split").unwrap() == "test").collect();
    let indices: Vec<usize> = test.iter().map(|r| r.num("index").unwrap() as usize).collect();
    let recorded: Vec<f64> = test.iter().flat_map(|r| [r.num("f0").unwrap(), r.num("f1").unwrap()]).collect();
    let gap = |m: &replicate::nn::Model| {
        let e = replicate::train::embed(m, &mnist.test, &indices, &device).unwrap();
        e.features.iter().zip(&recorded).map(|(&a, &b)| (a as f64 - b).abs()).fold(0.0, f64::max)
    };
    assert!(gap(&model) > 1e-2, "an untrained model of another seed must not give the recorded features");
    model.set_weights(&store.read_weights(id).unwrap()).unwrap();
    assert!(indices.len() > 100 && gap(&model) < 1e-5, "the kept weights give features {} away", gap(&model));

    let missing = store.read_weights("no-such-run").unwrap_err().to_string();
    assert!(missing.contains("no-such-run.safetensors") && missing.contains("retrain"), "{missing}");
    std::fs::remove_dir_all(results).unwrap();
}
