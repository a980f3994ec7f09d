//! `replicate verify`: retrains a sample of recorded runs from their stored configs, in a
//! scratch results directory that holds every other recorded run (so the plan trains exactly
//! the sample), and compares each retrained run's metrics and curves with the recorded ones.
//! Same CPU, instruction set and kernel revision: identical (the thread count does not matter). Otherwise each
//! difference is set beside the seed spread of that metric.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{recorded_plan, run_experiment_with, PlanOptions, RunOptions};
use crate::experiments::Experiment;
use crate::results::{Cell, Manifest, Record, Store, Table};

/// runs.parquet columns besides the manifest's that describe how a run went, not what it measured
/// (wall-clock speed differs between any two runs).
const NOT_MEASURED: [&str; 4] = ["train_seconds", "images_per_second", "label", "note"];

/// Whether a runs.parquet column is a measurement to compare: not a manifest column (how and
/// when the run was made), not [`NOT_MEASURED`], not a config key.
fn is_measurement(column: &str, config_keys: &[String]) -> bool {
    static MANIFEST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let manifest =
        MANIFEST.get_or_init(|| Manifest::new("", "", "", "", 0, "").row().into_iter().map(|c| c.0).collect());
    !(manifest.iter().any(|m| m == column) || NOT_MEASURED.contains(&column) || config_keys.iter().any(|k| k == column))
}

/// One retrained run against its record.
#[derive(Debug, Clone)]
pub struct Verified {
    pub run_id: String,
    /// Whether the recorded run came from this CPU model and instruction set (the thread count
    /// does not change the tables: the kernels split work the same way on any).
    pub same_machine: bool,
    /// Metrics that differ: (column, recorded, retrained, seed std of the column in the record).
    pub differences: Vec<(String, f64, f64, f64)>,
    /// Metrics compared in all.
    pub compared: usize,
    /// The largest absolute difference of the loss curve (0 when identical).
    pub curve_difference: f64,
}

impl Verified {
    pub fn identical(&self) -> bool {
        self.differences.is_empty() && self.curve_difference == 0.0
    }

    pub fn describe(&self) -> String {
        let machine = if self.same_machine {
            "same CPU, instruction set and kernel revision"
        } else {
            "recorded on another CPU, instruction set or kernel revision"
        };
        if self.identical() {
            return format!("{}: identical ({} metrics and the loss curve; {machine})", self.run_id, self.compared);
        }
        let worst = self
            .differences
            .iter()
            .map(|(c, a, b, s)| format!("{c} {a:.6} → {b:.6} (Δ {:+.2e}, seed std {})", b - a, or_dash(*s)))
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{}: {} of {} metrics differ ({machine}); loss curve max |Δ| {:.2e}; {worst}",
            self.run_id,
            self.differences.len(),
            self.compared,
            self.curve_difference
        )
    }
}

fn or_dash(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2e}")
    } else {
        "—".into()
    }
}

/// `k` of the recorded finished runs, spread evenly over the plan's order (the first, the last
/// and between), so that a sample of 3 touches both ends of a sweep.
fn sample(ids: &[String], k: usize) -> Vec<String> {
    if ids.len() <= k {
        return ids.to_vec();
    }
    let mut out: Vec<String> = (0..k).map(|i| ids[i * (ids.len() - 1) / (k - 1).max(1)].clone()).collect();
    out.dedup();
    out
}

/// Retrains `k` recorded runs of `exp` and compares them with the record; MNIST from `data_dir`,
/// LFW from `lfw_dir` (None: the project's default).
pub fn verify(
    exp: &dyn Experiment,
    results_dir: &Path,
    (data_dir, lfw_dir): (&Path, Option<&Path>),
    k: usize,
    scratch: &Path,
) -> Result<Vec<Verified>> {
    let (store, runs, profile, planned) = recorded_plan(exp, results_dir, "to verify")?;
    let missing = planned.iter().filter(|r| r.done.is_none()).count();
    if missing > 0 {
        bail!(
            "{}: {missing} runs of the {} profile are not recorded; `replicate run {}` them first (verify retrains only recorded runs)",
            exp.name(),
            profile.name(),
            exp.name()
        );
    }
    let mut finished = Vec::new();
    for r in &planned {
        if runs.records().any(|x| x.run_id().ok() == Some(r.run_id.as_str()) && x.finished().unwrap_or(false)) {
            finished.push(r.run_id.clone());
        }
    }
    let chosen = sample(&finished, k);
    // The scratch directory: every other recorded run, and the recorded selections a plan may wait for.
    if scratch.exists() {
        std::fs::remove_dir_all(scratch).with_context(|| format!("clearing {}", scratch.display()))?;
    }
    let copy = Store::new(scratch, exp.name());
    std::fs::create_dir_all(copy.dir())?;
    for r in &planned {
        if !chosen.contains(&r.run_id) {
            copy.copy_run(&store, &r.run_id, &[])?;
        }
    }
    let selections = results_dir.join("selections.parquet");
    if selections.exists() {
        std::fs::copy(&selections, scratch.join("selections.parquet"))?;
    }
    let defaults = RunOptions::new(PlanOptions::new(profile, scratch), data_dir);
    let lfw_dir = lfw_dir.map(Path::to_path_buf).or(defaults.lfw_dir.clone());
    let opts = RunOptions { jobs: 1, lfw_dir, ..defaults };
    let report = run_experiment_with(exp, &opts, None, None)?;
    if report.executed.len() != chosen.len() {
        bail!("verify planned {} runs to retrain but trained {}", chosen.len(), report.executed.len());
    }
    let retrained = copy.current_runs()?;
    let (curves, new_curves) = (store.load("curves")?, copy.load("curves")?);
    let config_keys: Vec<String> = planned.first().map(|r| r.config.keys().cloned().collect()).unwrap_or_default();
    let mut out = Vec::new();
    for id in &chosen {
        // The retrained run is found by its config hash: an unrecorded run takes the plan's
        // current label, which can differ from the one it was recorded under.
        let hash = planned.iter().find(|r| &r.run_id == id).map(|r| r.config_hash.clone()).unwrap_or_default();
        let a = runs.records().position(|r| r.run_id().ok() == Some(id.as_str()));
        let b = retrained.records().position(|r| r.str("config_hash").ok().flatten() == Some(hash.as_str()));
        let (Some(a), Some(b)) = (a, b) else { bail!("run {id} (config {hash}) went missing while verifying") };
        let new_id = Record::new(&retrained.rows[b], &retrained.source).run_id()?.to_string();
        let (old, new) = (Record::new(&runs.rows[a], &runs.source), Record::new(&retrained.rows[b], &retrained.source));
        let same_machine = old.str("cpu").ok().flatten().unwrap_or_default() == crate::util::cpu_model()
            && old.str("isa").ok().flatten().unwrap_or_default() == crate::nn::kernels::isa::isa().name()
            && old.f64("kernel_revision").ok().flatten().unwrap_or(0.0).max(1.0)
                == crate::nn::kernels::KERNEL_REVISION as f64;
        let mut differences = Vec::new();
        let mut compared = 0;
        for (column, cell) in &runs.rows[a] {
            if !is_measurement(column, &config_keys) {
                continue;
            }
            let Some(x) = cell.as_f64() else { continue };
            compared += 1;
            let y = new.f64(column).ok().flatten().unwrap_or(f64::NAN);
            if x.to_bits() != y.to_bits() {
                differences.push((column.clone(), x, y, seed_spread(&runs, old, column, &config_keys)?));
            }
        }
        let loss = |t: &Table, run: &str| crate::experiments::setup::series_of(t, run, "step", "loss");
        let (l0, l1) = (loss(&curves, id)?, loss(&new_curves, &new_id)?);
        let curve_difference = if l0.len() != l1.len() {
            f64::INFINITY
        } else {
            l0.iter().zip(&l1).map(|(p, q)| (p.1 - q.1).abs()).fold(0.0, f64::max)
        };
        out.push(Verified { run_id: id.clone(), same_machine, differences, compared, curve_difference });
    }
    Ok(out)
}

/// The sample std of `column` over the recorded finished runs that share `run`'s settings but
/// for the seed (NaN with fewer than two).
fn seed_spread(runs: &Table, run: Record, column: &str, config_keys: &[String]) -> Result<f64> {
    let same_setting = |r: &Record| -> bool {
        config_keys.iter().filter(|k| k.as_str() != "seed").all(|k| {
            let (a, b) = (r.cell(k).ok(), run.cell(k).ok());
            a == b || matches!((a, b), (Some(Cell::F64(x)), Some(Cell::F64(y))) if x == y)
        })
    };
    let mut values = Vec::new();
    for r in runs.records() {
        if r.finished()? && same_setting(&r) {
            values.extend(r.f64(column)?.filter(|v| v.is_finite()));
        }
    }
    Ok(crate::stats::sample_std(&values))
}

/// Where `verify` retrains: a fresh directory under the system's temporary directory.
pub fn scratch_dir(experiment: &str) -> PathBuf {
    std::env::temp_dir().join(format!("replicate-verify-{experiment}-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples_touch_both_ends_of_the_plan() {
        let ids: Vec<String> = (0..8).map(|i| i.to_string()).collect();
        assert_eq!(super::sample(&ids, 3), ["0", "3", "7"]);
        assert_eq!(super::sample(&ids, 1), ["0"]);
        assert_eq!(super::sample(&ids[..2], 3), ["0", "1"]);
    }
}
