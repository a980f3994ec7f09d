//! Experiments: each paper reproduction as a small config plus a sweep plus its figures and
//! claims; the runner (`crate::runner`) plans, trains, records and reports them.
//!
//! An experiment's configuration is a flat JSON object of one run's settings (`base`); a sweep
//! lists values for some keys (`axes`), and the runs are the cartesian product. `--set key=value`
//! fixes a key in every run; `--set key=v1,v2` sweeps it (for list-valued keys such as
//! `lr_milestones` the list is the value).
//!
//! A new paper goes in `experiments/<paper>/`: `mod.rs` (its config with profiles, sweeps, and
//! [`Experiment::run`] building an objective from `crate::objectives`), `figures.rs` and
//! `claims.rs` (pure rules from tables to [`crate::verdict::Claim`]s, unit-tested on hand-made
//! tables), then one line in [`registry`].

pub mod arcface;
pub mod budget;
pub mod center_loss;
pub mod cosface;
pub mod deepid2;
pub mod deepid2_lfw;
pub mod facenet;
pub mod facenet_lfw;
pub mod faces;
pub mod hypersphere;
pub mod leaderboard;
pub mod leaderboard_lfw;
pub mod lfw_baselines;
pub mod lsoftmax;
pub mod published;
pub mod seeds;
pub mod setup;
pub mod softmax_baseline;
pub mod sphereface;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde_json::{Map, Value};

use crate::data::{Dataset, Datasets};
use crate::results::Store;
use crate::verdict::Section;

/// How much compute a sweep gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Seconds per run: checks that every stage works (CI).
    Smoke,
    /// Sized for a 2-core CPU while still showing each paper's effect (the default).
    Quick,
    /// The papers' own schedules, for a GPU or a night.
    Paper,
}

impl Profile {
    pub fn name(&self) -> &'static str {
        match self {
            Profile::Smoke => "smoke",
            Profile::Quick => "quick",
            Profile::Paper => "paper",
        }
    }

    pub fn parse(s: &str) -> Result<Profile> {
        match s {
            "smoke" => Ok(Profile::Smoke),
            "quick" => Ok(Profile::Quick),
            "paper" => Ok(Profile::Paper),
            other => bail!("unknown profile {other:?}; valid profiles: smoke, quick, paper"),
        }
    }
}

/// One grid of runs: base settings and the values swept for some keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub base: Map<String, Value>,
    pub axes: Vec<(String, Vec<Value>)>,
}

impl Sweep {
    pub fn new<T: serde::Serialize>(base: &T) -> Sweep {
        match serde_json::to_value(base).expect("configs serialise") {
            Value::Object(map) => Sweep { base: map, axes: Vec::new() },
            _ => panic!("an experiment config must serialise to a JSON object"),
        }
    }

    pub fn axis<T: serde::Serialize>(mut self, key: &str, values: &[T]) -> Sweep {
        assert!(self.base.contains_key(key), "sweep axis {key} is not a config key");
        let values = values.iter().map(|v| serde_json::to_value(v).expect("serialisable")).collect();
        self.axes.retain(|(k, _)| k != key);
        self.axes.push((key.to_string(), values));
        self
    }

    /// Sweeps the seeds of `profile` ([`setup::seeds`]); a profile of one seed adds no axis, so its
    /// runs keep labels without "seed=".
    pub fn over_seeds(self, profile: Profile) -> Sweep {
        match setup::seeds(profile) {
            [_] => self,
            seeds => self.axis("seed", seeds),
        }
    }

    /// Applies `key=value` overrides (see the module doc).
    pub fn apply(&mut self, overrides: &[(String, String)]) -> Result<()> {
        for (key, raw) in overrides {
            let Some(current) = self.base.get(key) else {
                let valid: Vec<&str> = self.base.keys().map(|k| k.as_str()).collect();
                bail!("unknown config key {key:?}; valid keys: {}", valid.join(", "));
            };
            anyhow::ensure!(
                !split_list(raw).is_empty(),
                "--set {key}= gives no value: write {key}=VALUE, or {key}=V1,V2 to sweep it"
            );
            if let Value::Array(items) = current {
                let template = items.first().cloned().unwrap_or(Value::from(0.0));
                let list = split_list(raw).iter().map(|v| parse_like(&template, v, key)).collect::<Result<Vec<_>>>()?;
                self.base.insert(key.clone(), Value::Array(list));
                continue;
            }
            let values = split_list(raw).iter().map(|v| parse_like(current, v, key)).collect::<Result<Vec<_>>>()?;
            // An axis keeps its place and its key in the labels (`--set m=4` still labels runs
            // `m=4,seed=1`): labels name a sweep's slots, and figures keep the latest run per label.
            if let Some((_, axis)) = self.axes.iter_mut().find(|(k, _)| k == key) {
                *axis = values;
            } else if values.len() == 1 {
                self.base.insert(key.clone(), values.into_iter().next().expect("one"));
            } else {
                self.axes.push((key.clone(), values));
            }
        }
        Ok(())
    }

    /// The runs of this grid: (label naming the swept values, full run config).
    pub fn runs(&self) -> Vec<(String, Map<String, Value>)> {
        let mut out = vec![(Vec::new(), self.base.clone())];
        for (key, values) in &self.axes {
            out = out
                .into_iter()
                .flat_map(|(label, cfg)| {
                    values.iter().map(move |v| {
                        let mut cfg = cfg.clone();
                        cfg.insert(key.clone(), v.clone());
                        let mut label = label.clone();
                        label.push(format!("{key}={}", short(v)));
                        (label, cfg)
                    })
                })
                .collect();
        }
        out.into_iter()
            .map(|(label, cfg)| (if label.is_empty() { "default".to_string() } else { label.join(",") }, cfg))
            .collect()
    }
}

fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses `raw` as the JSON type of `template`.
fn parse_like(template: &Value, raw: &str, key: &str) -> Result<Value> {
    Ok(match template {
        Value::Bool(_) => Value::Bool(raw.parse().with_context(|| format!("{key} takes true or false, got {raw:?}"))?),
        Value::Number(n) if n.is_u64() || n.is_i64() => match (raw.parse::<i64>(), raw.parse::<u64>()) {
            (Ok(i), _) => Value::from(i),
            (_, Ok(u)) => Value::from(u),
            _ => bail!("{key} takes an integer, got {raw:?}"),
        },
        Value::Number(_) => {
            let x: f64 = if raw == "inf" || raw == "∞" {
                f64::INFINITY
            } else {
                raw.parse().with_context(|| format!("{key} takes a number, got {raw:?}"))?
            };
            if x.is_infinite() {
                Value::from("inf")
            } else {
                serde_json::Number::from_f64(x)
                    .map(Value::Number)
                    .with_context(|| format!("{key}: {raw:?} is not a finite number"))?
            }
        }
        _ => Value::String(raw.to_string()),
    })
}

/// What an experiment needs to run one configuration.
pub struct RunContext<'a> {
    /// The data sets, each loaded the first time a run asks for it.
    pub data: &'a Datasets,
    pub device: &'a Device,
    pub run_id: &'a str,
    /// The progress bar's label: the run's name and its place in the plan ("[k/n]").
    pub progress_label: String,
    /// The run's name (experiment and swept values), the same however the plan is split or
    /// resumed: notes that are stored name the run by it.
    pub run_label: String,
    /// Where the run saves its state every few minutes and resumes from (none: never saved).
    pub checkpoint: Option<crate::train::Checkpoint>,
}

/// What one run produced (the runner adds the manifest and config columns).
pub struct RunOutcome {
    pub status: String,
    /// Why a run did not finish normally (divergence step and loss terms, collapse).
    pub note: String,
    pub metrics: Vec<(String, crate::results::Cell)>,
    pub tables: Vec<(String, Vec<crate::results::Row>)>,
    /// The final parameters of a finished run (empty for one that diverged).
    pub weights: Vec<(String, candle_core::Tensor)>,
}

impl RunOutcome {
    /// A finished run with nothing measured yet: what [`Experiment::rescore`] fills.
    pub fn unmeasured() -> RunOutcome {
        RunOutcome {
            status: crate::results::STATUS_FINISHED.into(),
            note: String::new(),
            metrics: Vec::new(),
            tables: Vec::new(),
            weights: Vec::new(),
        }
    }
}

/// A run's kept final weights by parameter name, as `Store::read_weights` gives them.
pub type Weights = std::collections::HashMap<String, candle_core::Tensor>;

/// A paper reproduction.
pub trait Experiment: Sync {
    fn name(&self) -> &'static str;
    /// One line on what the experiment reproduces.
    fn about(&self) -> &'static str;
    /// The grids of runs for a profile. A sweep that builds on other experiments' results reads
    /// them from a recorded selection under `results_dir` (see [`Experiment::selection`]) and
    /// fails with [`Waiting`] until it is recorded.
    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>>;
    /// The data sets its runs read, loaded (and so checked) before any of them trains.
    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Mnist]
    }
    /// Checks one run's config (deserialising it reports bad values with the valid ones).
    fn check(&self, config: &Map<String, Value>) -> Result<()>;
    /// Trains and evaluates one run.
    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome>;
    /// Scores a recorded run again from its final `weights`, with this build's evaluation: the
    /// metrics a run of `config` ends with, without training (`replicate rescore`). None: this
    /// experiment's evaluation is not separate from its training yet, so only retraining
    /// (`replicate verify`) scores its runs again.
    fn rescore(
        &self,
        _ctx: &RunContext,
        _config: &Map<String, Value>,
        _weights: &Weights,
    ) -> Result<Option<RunOutcome>> {
        Ok(None)
    }
    /// Redraws the experiment's figures from its tables; returns the files written.
    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>>;
    /// Its section of results/REPORT.md, from its tables.
    fn report(&self, _store: &Store) -> Result<Option<Section>> {
        Ok(None)
    }
    /// The selection this experiment's sweeps read, if any: chosen from other experiments' runs
    /// once all of them are recorded, by the runner.
    fn selection(&self) -> Option<SelectionRule> {
        None
    }
    /// The training procedure this experiment's runs go through. Experiments that name the same
    /// trainer train identically from equal training configs, so they share recorded runs (one
    /// trains, the others copy its rows). The experiment's own name by default: its `run` is its own.
    fn trainer(&self) -> &'static str {
        self.name()
    }
    /// The part of a run's config that changes training, which alone identifies a recorded run
    /// (descriptions and settings of other methods stay out). The whole config by default.
    fn training_config(&self, config: &Map<String, Value>) -> Map<String, Value> {
        config.clone()
    }
    /// Values of training keys that runs recorded before those keys existed were trained with,
    /// so that moving a constant into the config keeps them (see `runner::plan`).
    fn recorded_defaults(&self) -> Map<String, Value> {
        Map::new()
    }
}

/// How an experiment's settings are chosen from other experiments' recorded runs.
pub struct SelectionRule {
    pub name: &'static str,
    /// The experiments it is chosen from; all their planned runs must be recorded first.
    pub from: &'static [&'static str],
    /// The chosen values and where they came from (in words), from the results directory.
    pub choose: fn(&Path) -> Result<Chosen>,
}

/// A selection's values and where they came from, in words.
pub type Chosen = (Map<String, Value>, String);

/// A sweep cannot be planned yet: the selection it reads is not recorded.
#[derive(Debug, thiserror::Error)]
#[error(
    "{experiment} waits for the selection {selection:?} of the {profile} profile, chosen once every run of {from} \
     is recorded: run those first (with shards: merge their results, then plan {experiment})"
)]
pub struct Waiting {
    pub experiment: &'static str,
    pub selection: &'static str,
    pub profile: &'static str,
    pub from: String,
}

/// Every experiment, in the order `reproduce-all` runs them.
pub fn registry() -> Vec<&'static dyn Experiment> {
    vec![
        &softmax_baseline::SoftmaxBaseline,
        &center_loss::CenterLossExperiment,
        &lsoftmax::LSoftmaxExperiment,
        &deepid2::DeepId2,
        &facenet::FaceNet,
        &budget::Budget,
        &leaderboard::Leaderboard,
        &sphereface::SphereFace,
        &cosface::CosFace,
        &arcface::ArcFace,
        &lfw_baselines::LfwBaselines,
        &deepid2_lfw::DeepId2Lfw,
        &facenet_lfw::FaceNetLfw,
        &leaderboard_lfw::LeaderboardLfw,
    ]
}

pub fn find(name: &str) -> Result<&'static dyn Experiment> {
    registry().into_iter().find(|e| e.name() == name).with_context(|| {
        let names: Vec<&str> = registry().iter().map(|e| e.name()).collect();
        format!("unknown experiment {name:?}; valid experiments: {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Cfg {
        lambda: f64,
        seed: u64,
        name: String,
        steps: Vec<u64>,
    }

    fn sweep() -> Sweep {
        Sweep::new(&Cfg { lambda: 0.0, seed: 1, name: "a".into(), steps: vec![5, 8] }).axis("lambda", &[0.0, 0.1])
    }

    #[test]
    fn sweeps_expand_and_overrides_parse_by_type() {
        let s = sweep();
        let runs = s.runs();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].0, "lambda=0.1");
        let mut s = sweep();
        s.apply(&[("seed".into(), "1,2,3".into()), ("lambda".into(), "0.5".into()), ("steps".into(), "1,2".into())])
            .unwrap();
        let runs = s.runs();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[2].0, "lambda=0.5,seed=3", "an overridden axis keeps its place in the labels");
        assert_eq!(runs[2].1["seed"], Value::from(3));
        assert_eq!(runs[0].1["lambda"], Value::from(0.5));
        assert_eq!(runs[0].1["steps"], serde_json::json!([1, 2]));
    }

    #[test]
    fn bad_overrides_name_the_valid_choices() {
        let err = sweep().apply(&[("lamda".into(), "1".into())]).unwrap_err().to_string();
        assert!(err.contains("unknown config key \"lamda\"") && err.contains("lambda, name, seed, steps"), "{err}");
        let err = sweep().apply(&[("seed".into(), "x".into())]).unwrap_err().to_string();
        assert!(err.contains("seed takes an integer"), "{err}");
        assert!(Profile::parse("fast").unwrap_err().to_string().contains("smoke, quick, paper"));
    }
}
