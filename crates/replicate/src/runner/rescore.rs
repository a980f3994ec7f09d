//! `replicate rescore`: scores recorded runs again from their kept final weights with this
//! build's evaluation, without training: a new metric, or a fixed one, reaches every run whose
//! weights are there. Each run's measurements in runs.parquet are replaced where they changed
//! (`rescored_with` then names the commit); the curves and every other column stay as trained.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::Device;

use super::recorded_plan;
use crate::data::Datasets;
use crate::experiments::{Experiment, RunContext};
use crate::results::Change;

/// One run scored again.
#[derive(Debug, Clone)]
pub struct Rescored {
    pub run_id: String,
    /// Measurements the evaluation gave (compared with the record).
    pub measured: usize,
    pub changes: Vec<Change>,
}

impl Rescored {
    pub fn describe(&self) -> String {
        if self.changes.is_empty() {
            return format!("{}: unchanged ({} measurements)", self.run_id, self.measured);
        }
        let shown: Vec<String> = self
            .changes
            .iter()
            .map(|(c, a, b)| {
                let num = |x: &Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.6}"));
                format!("{c} {} → {}", num(a), num(b))
            })
            .collect();
        format!(
            "{}: {} of {} measurements changed: {}",
            self.run_id,
            self.changes.len(),
            self.measured,
            shown.join("; ")
        )
    }
}

/// What `rescore` did to one experiment.
#[derive(Debug, Clone, Default)]
pub struct RescoreReport {
    pub rescored: Vec<Rescored>,
    /// Finished runs whose weights are not in the results directory (recorded before runs kept
    /// them, or copied from another experiment's store): only retraining scores them again.
    pub without_weights: Vec<String>,
    /// Runs whose evaluation is not separate from their training (the budget study's runs of
    /// papers that cannot score again): only retraining scores them again.
    pub not_separate: Vec<String>,
}

/// Scores every recorded finished (or collapsed) run of `exp`'s current plan again from its weights.
pub fn rescore(exp: &dyn Experiment, results_dir: &Path, data: &Datasets) -> Result<RescoreReport> {
    let (store, runs, _, planned) = recorded_plan(exp, results_dir, "to score again")?;
    let commit = crate::results::git_state().0.clone();
    let mut report = RescoreReport::default();
    let device = Device::Cpu;
    for run in planned.iter().filter(|r| r.done.is_some() && r.shared_from.is_none()) {
        // A collapsed run (FaceNet) trained to the end and is measured like a finished one.
        let measured = |r: &crate::results::Record| {
            r.status().is_ok_and(|s| s == crate::results::STATUS_FINISHED || s == crate::results::STATUS_COLLAPSED)
        };
        if !runs.records().any(|r| r.run_id().ok() == Some(run.run_id.as_str()) && measured(&r)) {
            continue;
        }
        if !store.weights_path(&run.run_id).exists() {
            report.without_weights.push(run.run_id.clone());
            continue;
        }
        data.require(exp.datasets())?;
        let weights = store.read_weights(&run.run_id)?;
        let ctx = RunContext {
            data,
            device: &device,
            run_id: &run.run_id,
            progress_label: format!("{} {} (rescore)", exp.name(), run.label),
            run_label: format!("{} {}", exp.name(), run.label),
            checkpoint: None,
        };
        let Some(outcome) = exp.rescore(&ctx, &run.config, &weights)? else {
            report.not_separate.push(run.run_id.clone());
            continue;
        };
        let changes = store.rescore_run(&run.run_id, &outcome.metrics, &commit)?;
        report.rescored.push(Rescored { run_id: run.run_id.clone(), measured: outcome.metrics.len(), changes });
    }
    if report.rescored.is_empty() && !report.not_separate.is_empty() {
        bail!(
            "{} cannot score its runs again without training (its evaluation is not separate from its training \
             yet); `replicate verify {}` retrains a sample of them",
            exp.name(),
            exp.name()
        )
    }
    Ok(report)
}
