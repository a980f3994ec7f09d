//! `budget`: the budget study behind the quick profile. One setting per paper, the setting its
//! main claim rests on, is trained again with every step count of its schedule doubled
//! (iterations and learning-rate milestones; L-Softmax rescales its λ schedule to the new length
//! itself), over the same seeds. Set beside the quick runs the paper's own experiment recorded,
//! it asks whether the main metric those claims read would still move with twice the budget:
//! a run stopped while the metric still rises judges the method at its budget, not at
//! convergence, and a claim whose effect is smaller than that rise says so.
//!
//! The run is the paper's own `run` on the paper's own quick config (so the same code and
//! evaluation); only the tables other than the curves are dropped (the features for the papers'
//! scatter plots are not needed twice).

mod figures;
pub mod study;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::{find, Experiment, Profile, RunContext, RunOutcome, Sweep, Weights};
use crate::results::Store;
use crate::verdict::Section;

pub use study::{Studied, PAPERS, TOLERANCE};

/// The factor on every step count of the quick schedule.
pub const FACTOR: u64 = 2;

/// The keys the study adds to the paper's config: which paper, and the factor its step counts got.
const PAPER_KEY: &str = "paper";
const FACTOR_KEY: &str = "budget_factor";

pub struct Budget;

/// The paper's planned config of `profile` for its studied setting and seed 1, its step counts
/// multiplied by `factor`.
pub fn longer_config(paper: &Studied, profile: Profile, results_dir: &Path, factor: u64) -> Result<Map<String, Value>> {
    let exp = find(paper.experiment)?;
    let mut matches: Vec<Map<String, Value>> = Vec::new();
    for sweep in exp.sweeps(profile, results_dir)? {
        for (_, config) in sweep.runs() {
            let seed_one = config.get("seed").and_then(Value::as_u64) == Some(1);
            if seed_one && paper.holds(&config) && !matches.contains(&config) {
                matches.push(config);
            }
        }
    }
    anyhow::ensure!(
        matches.len() == 1,
        "the budget study's setting {} of {} matches {} planned configs of seed 1, not one",
        paper.setting_text(),
        paper.experiment,
        matches.len()
    );
    let mut config = matches.pop().expect("one");
    for (key, value) in paper.measured_as {
        anyhow::ensure!(
            config.contains_key(*key),
            "{} has no config key {key} to measure the budget study by",
            paper.experiment
        );
        config.insert(key.to_string(), value.json());
    }
    let iterations =
        config.get("iterations").and_then(Value::as_u64).context("the paper's config has no iterations")?;
    config.insert("iterations".into(), Value::from(iterations * factor));
    let milestones = config.get("lr_milestones").and_then(Value::as_array).cloned().unwrap_or_default();
    let scaled: Vec<Value> = milestones.iter().filter_map(Value::as_u64).map(|m| Value::from(m * factor)).collect();
    config.insert("lr_milestones".into(), Value::Array(scaled));
    config.insert(FACTOR_KEY.into(), Value::from(factor));
    Ok(config)
}

/// A budget run's config without the study's own keys: the paper's config as its experiment reads it.
fn paper_config(config: &Map<String, Value>) -> Result<(&'static Studied, Map<String, Value>)> {
    let name = config.get(PAPER_KEY).and_then(Value::as_str).context("a budget run's config names no paper")?;
    let paper = PAPERS.iter().find(|p| p.experiment == name).with_context(|| {
        let valid: Vec<&str> = PAPERS.iter().map(|p| p.experiment).collect();
        format!("the budget study has no paper {name:?}; valid papers: {}", valid.join(", "))
    })?;
    let mut inner = config.clone();
    inner.remove(PAPER_KEY);
    let factor = inner.remove(FACTOR_KEY).and_then(|v| v.as_u64()).unwrap_or(0);
    anyhow::ensure!(factor >= 1, "budget_factor must be a whole number ≥ 1, got {:?}", config.get(FACTOR_KEY));
    Ok((paper, inner))
}

impl Experiment for Budget {
    fn name(&self) -> &'static str {
        "budget"
    }

    fn about(&self) -> &'static str {
        "budget study: each paper's main setting at twice the quick schedule, against its quick runs"
    }

    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>> {
        // The paper profile is the papers' own schedules: there is no budget to choose.
        if profile == Profile::Paper {
            return Ok(Vec::new());
        }
        PAPERS
            .iter()
            .map(|paper| {
                let config = longer_config(paper, profile, results_dir, FACTOR)?;
                // The paper as a one-value axis, so that labels ("paper=deepid2,seed=2") differ
                // between papers.
                let mut base = config;
                base.insert(PAPER_KEY.into(), Value::from(paper.experiment));
                let sweep = Sweep { base, axes: Vec::new() };
                Ok(sweep.axis(PAPER_KEY, &[paper.experiment]).over_seeds(profile))
            })
            .collect()
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let (paper, inner) = paper_config(config)?;
        find(paper.experiment)?.check(&inner)
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let (paper, inner) = paper_config(config)?;
        let mut outcome = find(paper.experiment)?.run(ctx, &inner)?;
        outcome.tables.retain(|(name, _)| name == "curves");
        Ok(outcome)
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let (paper, inner) = paper_config(config)?;
        find(paper.experiment)?.rescore(ctx, &inner, weights)
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        let results_dir = store.results_dir();
        study::section(&store.current_runs()?, |experiment| Store::new(results_dir, experiment).load("runs"))
    }
}
