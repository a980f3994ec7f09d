//! Results that survive careless and concurrent use, on the smoke profile: concurrent writers,
//! settings that would fail after training, roots, merges of nothing, closed pipes, bad values,
//! leftovers, and thread counts. Each test names the problem it guards against. Needs MNIST
//! (`just data`) or MNIST_MIRROR.

use std::process::{Command, Stdio};

use replicate::results::{Store, Table};

mod common;

use common::{column, replicate, succeed, temp_dir};

fn runs_of(results: &std::path::Path, experiment: &str) -> Table {
    Store::new(results, experiment).load("runs").unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Problem 1: shards writing one results directory at once lost rows (a run recorded finished
/// without its features) and collided on figure temporaries.
#[test]
fn concurrent_writers_of_one_results_dir_lose_nothing() {
    // Six writers with 2,500 feature rows each: without the lock, 8 of 10 such rounds lost rows
    // (4 writers of 600 rows: 1 of 3). Two rounds, so a missing lock is all but certain to show.
    for round in 0..2 {
        let results = temp_dir(&format!("concurrent-{round}"));
        let args =
            ["run", "softmax-baseline", "--profile", "smoke", "--set", "seed=1,2,3,4,5,6", "--set", "iterations=3"];
        let children: Vec<_> = (0..6)
            .map(|i| {
                let mut command = replicate(&results, &args);
                command.args(["--set", "plot_points=5000", "--shard", &format!("{i}/6")]);
                command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
        let store = Store::new(&results, "softmax-baseline");
        let runs = store.load("runs").unwrap();
        assert_eq!(runs.rows.len(), 6, "round {round}");
        let features = store.load("features").unwrap();
        let curves = store.load("curves").unwrap();
        for id in column(&runs, "run_id") {
            let id = id.as_str().unwrap().to_string();
            let count = |t: &Table| t.records().filter(|r| r.run_id().unwrap() == id).count();
            assert_eq!(
                count(&features),
                2_500,
                "round {round}, {id}: the smoke profile's 2,000 train and 500 test images"
            );
            assert!(count(&curves) > 0, "round {round}: {id} has no curves");
        }
        std::fs::remove_dir_all(results).unwrap();
    }
}

/// Problem 3: an unwritable or damaged results directory, or `plot_points=0`, failed only after
/// the training (hours, on the paper profile).
#[test]
fn what_would_fail_after_training_fails_before_it() {
    let root = temp_dir("before-training");
    let not_a_dir = root.join("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    let out = replicate(&not_a_dir, &["run", "softmax-baseline", "--profile", "smoke"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("cannot create the results directory"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("softmax-baseline [1/1]"), "it trained first: {}", stderr(&out));

    let results = root.join("damaged");
    std::fs::create_dir_all(results.join("softmax-baseline")).unwrap();
    std::fs::write(results.join("softmax-baseline/curves.parquet"), b"not parquet").unwrap();
    let out = replicate(&results, &["run", "softmax-baseline", "--profile", "smoke"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("curves.parquet is damaged"), "{}", stderr(&out));
    assert!(!results.join("softmax-baseline/runs.parquet").exists(), "nothing may be recorded");

    let results = root.join("no-points");
    let args = ["run", "softmax-baseline", "--profile", "smoke", "--set", "plot_points=0", "--set", "iterations=2"];
    succeed(replicate(&results, &args));
    let runs = runs_of(&results, "softmax-baseline");
    assert_eq!(runs.records().next().unwrap().status().unwrap(), "finished");
    std::fs::remove_dir_all(root).unwrap();
}

/// Problem 5: a copied binary wrote into the tree it was built from, and an empty
/// `REPLICATE_RESULTS_DIR=` wrote into the current directory.
#[test]
fn roots_come_from_flags_environment_or_the_current_project_only() {
    let outside = temp_dir("outside");
    let out = Command::new(env!("CARGO_BIN_EXE_replicate"))
        .args(["plan", "softmax-baseline"])
        .current_dir(&outside)
        .env("REPLICATE_RESULTS_DIR", "")
        .env_remove("REPLICATE_ROOT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not inside the replicate project"), "{}", stderr(&out));
    let given = outside.join("given");
    let out = Command::new(env!("CARGO_BIN_EXE_replicate"))
        .args(["plan", "softmax-baseline"])
        .current_dir(&outside)
        .env("REPLICATE_RESULTS_DIR", &given)
        .env("REPLICATE_DATA_DIR", outside.join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let written: Vec<String> =
        std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(written, ["given"], "nothing but the given results directory is written");
    std::fs::remove_dir_all(outside).unwrap();
}

/// Problem 6: `merge` of a missing or empty directory and `--set seed=` did nothing, with exit 0.
#[test]
fn merging_nothing_and_empty_values_are_errors() {
    let results = temp_dir("merge-nothing");
    let empty = temp_dir("merge-empty");
    for (source, says) in [(results.join("nowhere"), "no such directory"), (empty.clone(), "holds no results")] {
        let out = replicate(&results, &["merge", source.to_str().unwrap()]).output().unwrap();
        assert!(!out.status.success() && stderr(&out).contains(says), "{}", stderr(&out));
    }
    let out = replicate(&results, &["plan", "softmax-baseline", "--set", "seed="]).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("gives no value"), "{}", stderr(&out));
    std::fs::remove_dir_all(results).unwrap();
    std::fs::remove_dir_all(empty).unwrap();
}

/// Problem 7: `reproduce-all | head` panicked on the closed pipe and stopped the plan.
#[test]
fn a_closed_stdout_ends_the_printing_not_the_training() {
    let results = temp_dir("closed-pipe");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut command = replicate(&results, &["run", "softmax-baseline", "--profile", "smoke", "--set", "iterations=2"]);
    let out = command.stdout(writer).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(runs_of(&results, "softmax-baseline").rows.len(), 1, "the run was recorded");
    std::fs::remove_dir_all(results).unwrap();
}

/// Problem 8: `batch_size=0` panicked in the sampler, `inf` gave a message without its key,
/// `iterations=0` was recorded as finished, and a foreign runs.parquet was treated as empty.
#[test]
fn bad_values_and_foreign_tables_are_refused_by_name() {
    let results = temp_dir("bad-values");
    for (set, says) in [
        ("batch_size=0", "batch_size must be at least 1"),
        ("iterations=0", "iterations must be at least 1"),
        ("base_lr=inf", "base_lr must be a finite number"),
        ("momentum=1.5", "momentum must lie in [0, 1)"),
    ] {
        let out = replicate(&results, &["plan", "center-loss", "--profile", "smoke", "--set", set]).output().unwrap();
        assert!(!out.status.success() && stderr(&out).contains(says), "{set}: {}", stderr(&out));
    }
    succeed(replicate(&results, &["plan", "deepid2", "--profile", "smoke", "--set", "lambda=inf"]));
    let foreign = results.join("softmax-baseline/runs.parquet");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    let table = Table::new("foreign", vec![vec![("name".into(), "x".into()), ("score".into(), 1.0.into())]]);
    replicate::results::write_parquet(&foreign, &mut table.to_frame().unwrap(), Vec::new()).unwrap();
    let out = replicate(&results, &["plan", "softmax-baseline", "--profile", "smoke"]).output().unwrap();
    assert!(!out.status.success(), "a foreign table must not be planned over");
    assert!(stderr(&out).contains("runs.parquet has no column \"run_id\""), "{}", stderr(&out));
    std::fs::remove_dir_all(results).unwrap();
}

/// Problems 9 and 10: temporaries of failed writes stayed forever, and a run's note carried the
/// progress counter "[k/n]", so it changed on a resume.
#[test]
fn leftovers_are_swept_and_notes_name_runs_the_same_way_every_time() {
    let results = temp_dir("leftovers");
    let dir = results.join("softmax-baseline");
    std::fs::create_dir_all(&dir).unwrap();
    let leftovers = [results.join(".REPORT.md.4242.tmp"), dir.join("fig2.tmp.png"), dir.join(".runs.parquet.4243.tmp")];
    for f in &leftovers {
        std::fs::write(f, b"half written").unwrap();
    }
    let args = ["run", "softmax-baseline", "--profile", "smoke", "--set", "base_lr=1e9,0.01", "--set", "iterations=4"];
    succeed(replicate(&results, &args));
    for f in &leftovers {
        assert!(!f.exists(), "{} was left", f.display());
    }
    let runs = runs_of(&results, "softmax-baseline");
    let notes: Vec<String> = runs.records().map(|r| r.str("note").unwrap().unwrap_or_default().to_string()).collect();
    assert!(notes.iter().any(|n| n.starts_with("softmax-baseline base_lr=1000000000.0: diverged")), "{notes:?}");
    assert!(notes.iter().all(|n| !n.contains('[')), "{notes:?}");
    std::fs::remove_dir_all(results).unwrap();
}

/// Problem 4: one and two threads gave different numbers under one config hash.
#[test]
fn one_and_two_threads_give_identical_tables() {
    let root = temp_dir("threads");
    let tables: Vec<(Table, Table, Table)> = ["1", "2"]
        .iter()
        .map(|threads| {
            let results = root.join(threads);
            let mut command =
                replicate(&results, &["run", "softmax-baseline", "--profile", "smoke", "--set", "iterations=6"]);
            command.env("RAYON_NUM_THREADS", threads);
            succeed(command);
            let store = Store::new(&results, "softmax-baseline");
            let mut runs = store.load("runs").unwrap();
            let skip = ["train_seconds", "images_per_second", "finished_at_unix", "threads"];
            for row in &mut runs.rows {
                row.retain(|(n, _)| !skip.contains(&n.as_str()));
            }
            runs.source.clear();
            let mut curves = store.load("curves").unwrap();
            let mut features = store.load("features").unwrap();
            curves.source.clear();
            features.source.clear();
            (runs, curves, features)
        })
        .collect();
    assert_eq!(column(&tables[0].0, "config_hash"), column(&tables[1].0, "config_hash"));
    for (what, a, b) in [
        ("runs", &tables[0].0, &tables[1].0),
        ("curves", &tables[0].1, &tables[1].1),
        ("features", &tables[0].2, &tables[1].2),
    ] {
        assert!(a == b, "{what} differ between 1 and 2 threads");
    }
    std::fs::remove_dir_all(root).unwrap();
}

/// runs, curves and features of an experiment without wall-clock columns or source paths.
fn deterministic_tables(results: &std::path::Path, experiment: &str) -> Vec<Table> {
    let store = Store::new(results, experiment);
    let timing = ["train_seconds", "images_per_second", "finished_at_unix"];
    ["runs", "curves", "features"]
        .iter()
        .map(|name| {
            let mut table = store.load(name).unwrap();
            for row in &mut table.rows {
                row.retain(|(n, _)| !timing.contains(&n.as_str()));
            }
            table.source.clear();
            table
        })
        .collect()
}

/// Names of the final-weights files an experiment's recorded runs kept.
fn kept_weights(results: &std::path::Path, experiment: &str) -> Vec<String> {
    let dir = results.join(experiment).join("weights");
    assert!(dir.is_dir(), "{experiment}: no final weights kept: {} is missing", dir.display());
    let mut names: Vec<String> =
        files_under(&dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(!names.is_empty(), "{experiment}: no final weights kept under {}", dir.display());
    names
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A run is recorded only with all its rows, and a process stopped after any one write (a
/// checkpoint, a table, a figure, the report) and started again ends with the tables of a run
/// never stopped: resumed from its last checkpoint (weights, velocities, the objective's centers
/// or margin state, the sampler's position and generator, the curves so far). The three
/// experiments cover every objective with a state and both samplers.
#[test]
fn a_stop_after_any_write_resumes_to_the_tables_of_a_run_never_stopped() {
    let root = temp_dir("stop-after-write");
    let cases: [(&str, &[&str]); 3] = [
        ("center-loss", &["--set", "lambda=0.1", "--set", "center_update=caffe"]),
        ("deepid2", &["--set", "lambda=0.05", "--set", "iterations=12", "--set", "log_every=3"]),
        ("facenet", &["--set", "feature_dim=8", "--set", "mining=semi_hard"]),
    ];
    for (experiment, sets) in cases {
        let args = [&["run", experiment, "--profile", "smoke"][..], sets].concat();
        let reference = root.join(format!("{experiment}-never-stopped"));
        succeed(replicate(&reference, &args));
        let expected = deterministic_tables(&reference, experiment);
        let args = [&args[..], &["--checkpoint-minutes", "0"]].concat();
        let mut resumed = 0;
        for n in 1.. {
            let dir = root.join(format!("{experiment}-{n}"));
            let mut stopped = replicate(&dir, &args);
            stopped.env("REPLICATE_CRASH_AFTER_WRITES", n.to_string());
            let out = stopped.output().unwrap();
            if out.status.success() {
                assert!(n > 4, "{experiment}: only {} writes", n - 1);
                break;
            }
            assert!(stderr(&out).contains(&format!("stopping after write {n}")), "{}", stderr(&out));
            let again = succeed(replicate(&dir, &args));
            if stderr(&again).contains("resuming at step") {
                resumed += 1;
            }
            assert!(
                deterministic_tables(&dir, experiment) == expected,
                "{experiment}: stopped after write {n} and started again, the tables differ from a run never stopped"
            );
            let left: Vec<_> = files_under(&dir)
                .into_iter()
                .filter(|p| {
                    p.to_string_lossy().contains(".tmp") || p.components().any(|c| c.as_os_str() == "checkpoints")
                })
                .collect();
            assert!(left.is_empty(), "{experiment}: left behind after write {n}: {left:?}");
            assert_eq!(
                kept_weights(&dir, experiment),
                kept_weights(&reference, experiment),
                "{experiment}: stopped after write {n}, the final weights kept differ from a run never stopped"
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
        assert!(resumed >= 2, "{experiment}: resumed from a checkpoint {resumed} times");
    }
    std::fs::remove_dir_all(root).unwrap();
}

/// Problem 8: seeds above i64::MAX were refused (the table cells held i64 only).
#[test]
fn every_u64_seed_is_recorded_exactly_and_found_again() {
    let results = temp_dir("u64-seeds");
    let seeds = "18446744073709551615,9223372036854775808,3";
    let args =
        ["run", "softmax-baseline", "--profile", "smoke", "--set", &format!("seed={seeds}"), "--set", "iterations=3"];
    succeed(replicate(&results, &args));
    let runs = runs_of(&results, "softmax-baseline");
    let mut recorded: Vec<u64> = runs.records().map(|r| r.num("seed").unwrap() as u64).collect();
    recorded.sort_unstable();
    assert_eq!(recorded, [3, 9223372036854775808, 18446744073709551615]);
    let mut exact: Vec<String> = column(&runs, "seed").iter().map(|c| format!("{c:?}")).collect();
    exact.sort();
    assert_eq!(exact, ["I64(3)", "U64(18446744073709551615)", "U64(9223372036854775808)"]);
    let again = succeed(replicate(&results, &args));
    assert!(stderr(&again).contains("0 to do, 3 already recorded"), "{}", stderr(&again));
    std::fs::remove_dir_all(results).unwrap();
}

/// `--jobs 2` trains two runs at once, one thread each: the same tables as one job (the kernels
/// split work the same on any thread count), and a process stopped with runs in flight resumes
/// to them, with no run lost or recorded twice.
#[test]
fn parallel_runs_stopped_mid_plan_resume_to_the_tables_of_one_job() {
    let root = temp_dir("jobs");
    let args = ["run", "softmax-baseline", "--profile", "smoke", "--set", "seed=1,2,3,4,5", "--set", "iterations=12"];
    let reference = root.join("one-job");
    succeed(replicate(&reference, &args));
    let without_threads = |dir: &std::path::Path| {
        let mut tables = deterministic_tables(dir, "softmax-baseline");
        for row in &mut tables[0].rows {
            row.retain(|(n, _)| n != "threads");
        }
        tables
    };
    let expected = without_threads(&reference);
    let parallel = [&args[..], &["--jobs", "2", "--checkpoint-minutes", "0"]].concat();
    let whole = root.join("two-jobs");
    succeed(replicate(&whole, &parallel));
    assert!(without_threads(&whole) == expected, "two jobs give other tables than one");
    let one_job = column(&runs_of(&reference, "softmax-baseline"), "threads")[0].as_f64().unwrap();
    let threads = column(&runs_of(&whole, "softmax-baseline"), "threads");
    let half = (one_job / 2.0).floor().max(1.0);
    assert!(threads.iter().all(|t| t.as_f64() == Some(half)), "two jobs of {one_job} threads: {threads:?}");
    for n in [2, 5, 9, 13] {
        let dir = root.join(format!("stopped-{n}"));
        let mut stopped = replicate(&dir, &parallel);
        stopped.env("REPLICATE_CRASH_AFTER_WRITES", n.to_string());
        let out = stopped.output().unwrap();
        assert!(!out.status.success() && stderr(&out).contains("stopping after write"), "{}", stderr(&out));
        succeed(replicate(&dir, &parallel));
        assert!(
            without_threads(&dir) == expected,
            "two jobs stopped after write {n}: the tables differ from one job's"
        );
    }
    std::fs::remove_dir_all(root).unwrap();
}
