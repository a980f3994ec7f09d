//! Experiments: a registry of paper reproductions, their profiles and sweeps, and the runner
//! that skips finished runs, records results and redraws figures.
//!
//! An experiment is a small config plus a sweep plus a figure. Its configuration is a flat JSON
//! object of one run's settings (`base`); a sweep lists values for some keys (`axes`), and the
//! runs are the cartesian product. `--set key=value` fixes a key in every run; `--set
//! key=v1,v2` sweeps it (for list-valued keys such as `lr_milestones` the list is the value).

pub mod center_loss;
pub mod common;
pub mod deepid2;
pub mod facenet;
pub mod leaderboard;
pub mod lsoftmax;
pub mod softmax_baseline;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::data::Mnist;
use crate::results::{Manifest, RunRecord, Store, STATUS_FINISHED};

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

    /// Applies `key=value` overrides (see the module doc).
    pub fn apply(&mut self, overrides: &[(String, String)]) -> Result<()> {
        for (key, raw) in overrides {
            let Some(current) = self.base.get(key) else {
                let valid: Vec<&str> = self.base.keys().map(|k| k.as_str()).collect();
                bail!("unknown config key {key:?}; valid keys: {}", valid.join(", "));
            };
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
        Value::Number(n) if n.is_u64() || n.is_i64() => match raw.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => bail!("{key} takes an integer, got {raw:?}"),
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
    pub data: &'a Mnist,
    pub device: &'a Device,
    pub run_id: &'a str,
    pub progress_label: String,
}

/// What one run produced (the runner adds the manifest and config columns).
pub struct RunOutcome {
    pub status: String,
    /// Why a run did not finish normally (divergence step and loss terms, collapse).
    pub note: String,
    pub metrics: Vec<(String, crate::results::Cell)>,
    pub tables: Vec<(String, Vec<crate::results::Row>)>,
}

/// A paper reproduction.
pub trait Experiment: Sync {
    fn name(&self) -> &'static str;
    /// One line on what the experiment reproduces.
    fn about(&self) -> &'static str;
    /// The grids of runs for a profile (`results_dir` lets a sweep build on another's results).
    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Vec<Sweep>;
    /// Checks one run's config (deserialising it reports bad values with the valid ones).
    fn check(&self, config: &Map<String, Value>) -> Result<()>;
    /// Trains and evaluates one run.
    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome>;
    /// Redraws the experiment's figures from its tables; returns the files written.
    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>>;
    /// Its section of results/REPORT.md, from its tables.
    fn report(&self, _store: &Store) -> Result<Option<crate::report::Section>> {
        Ok(None)
    }
}

/// Every experiment, in the order `reproduce-all` runs them.
pub fn registry() -> Vec<&'static dyn Experiment> {
    vec![
        &softmax_baseline::SoftmaxBaseline,
        &center_loss::CenterLossExperiment,
        &lsoftmax::LSoftmaxExperiment,
        &deepid2::DeepId2,
        &facenet::FaceNet,
        &leaderboard::Leaderboard,
    ]
}

pub fn find(name: &str) -> Result<&'static dyn Experiment> {
    registry().into_iter().find(|e| e.name() == name).with_context(|| {
        let names: Vec<&str> = registry().iter().map(|e| e.name()).collect();
        format!("unknown experiment {name:?}; valid experiments: {}", names.join(", "))
    })
}

/// One planned run.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub run_id: String,
    pub label: String,
    pub config: Map<String, Value>,
    pub config_hash: String,
    pub seed: u64,
    pub done: Option<String>,
    /// The label runs.parquet holds for this config, when it is recorded.
    pub recorded_label: Option<String>,
}

pub fn config_hash(experiment: &str, config: &Map<String, Value>) -> String {
    // serde_json's Map is a BTreeMap here, so this text is canonical (sorted keys).
    let text = serde_json::to_string(&(experiment, config)).expect("serialisable");
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Which runs to plan and which of them count as done.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub profile: Profile,
    pub overrides: Vec<(String, String)>,
    /// Plan every run as not done (retrain what is recorded).
    pub force: bool,
    pub results_dir: PathBuf,
    /// (i, n): only the planned runs whose position p has p mod n == i.
    pub shard: Option<(usize, usize)>,
}

impl PlanOptions {
    /// Every run of `profile`, recorded ones counted as done.
    pub fn new(profile: Profile, results_dir: &Path) -> PlanOptions {
        PlanOptions {
            profile,
            overrides: Vec::new(),
            force: false,
            results_dir: results_dir.to_path_buf(),
            shard: None,
        }
    }
}

/// Options of `replicate run` and `reproduce-all`: the plan, and where to train it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub plan: PlanOptions,
    pub data_dir: PathBuf,
    pub device: Device,
}

/// The runs of an experiment, with whether each is already recorded.
pub fn plan(exp: &dyn Experiment, opts: &PlanOptions) -> Result<Vec<PlannedRun>> {
    let store = Store::new(&opts.results_dir, exp.name());
    let done = store.done()?;
    let mut seen = BTreeSet::new();
    let mut planned = Vec::new();
    for mut sweep in exp.sweeps(opts.profile, &opts.results_dir) {
        sweep.apply(&opts.overrides).with_context(|| format!("experiment {}", exp.name()))?;
        for (label, config) in sweep.runs() {
            exp.check(&config).with_context(|| format!("experiment {}, run {label}", exp.name()))?;
            let hash = config_hash(exp.name(), &config);
            if !seen.insert(hash.clone()) {
                continue;
            }
            let recorded = done.get(&hash);
            // A recorded run keeps its id even if the sweep now labels it differently, so that
            // `--force` replaces its rows instead of adding a second copy.
            let run_id = recorded.map_or_else(|| format!("{label}-{}", &hash[..8]), |r| r.run_id.clone());
            let seed = config.get("seed").and_then(Value::as_u64).unwrap_or(0);
            let done = if opts.force { None } else { recorded.map(|r| r.status.clone()) };
            let recorded_label = recorded.and_then(|r| r.label.clone());
            planned.push(PlannedRun { run_id, label, config, config_hash: hash, seed, done, recorded_label });
        }
    }
    if let Some((i, n)) = opts.shard {
        planned = planned.into_iter().enumerate().filter(|(p, _)| p % n == i).map(|(_, r)| r).collect();
    }
    Ok(planned)
}

/// What a call of [`run_experiment`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub executed: Vec<String>,
    pub cached: Vec<String>,
    pub not_finished: Vec<(String, String)>,
    pub figures: Vec<PathBuf>,
    pub seconds: f64,
}

/// Loads MNIST from `data_dir`, fetching it first if needed (from `MNIST_MIRROR` or the hub).
pub fn load_data(data_dir: &Path) -> Result<Mnist> {
    let mirror = std::env::var_os("MNIST_MIRROR").map(PathBuf::from);
    crate::data::fetch(data_dir, mirror.as_deref())?;
    Ok(Mnist::load(data_dir)?)
}

/// Rough training seconds of a run on this kind of machine, from its images and the network's
/// multiply-accumulates at the fast kernels' measured rate on 2 cores (~60 GFLOP/s), plus a
/// little for the final evaluation.
pub fn estimated_seconds(config: &Map<String, Value>) -> f64 {
    const FLOPS: f64 = 60e9;
    let get = |k: &str| config.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let backbone = crate::nn::BackboneConfig { width: get("width"), feature_dim: get("feature_dim").max(1.0) as usize };
    let images = get("iterations") * get("batch_size");
    images * 6.0 * backbone.forward_macs() as f64 / FLOPS + 15.0
}

/// Progress across a whole plan: a bar on a terminal, lines otherwise.
pub struct PlanProgress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    started: std::time::Instant,
    estimate_left: f64,
}

impl PlanProgress {
    pub fn new(total: usize, estimate: f64) -> Self {
        let bar = crate::train::bars_on_terminal().then(|| {
            let bar = crate::train::bars().add(indicatif::ProgressBar::new(total as u64));
            bar.set_style(
                indicatif::ProgressStyle::with_template("plan [{bar:30}] {pos}/{len} runs, {msg}")
                    .expect("valid template")
                    .progress_chars("#>-"),
            );
            bar
        });
        PlanProgress { bar, total, done: 0, started: std::time::Instant::now(), estimate_left: estimate }
    }

    fn message(&self) -> String {
        format!(
            "elapsed {}, about {} left",
            crate::train::fmt_secs(self.started.elapsed().as_secs_f64()),
            crate::train::fmt_secs(self.estimate_left)
        )
    }

    pub fn run_done(&mut self, estimate: f64) {
        self.done += 1;
        self.estimate_left = (self.estimate_left - estimate).max(0.0);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done as u64);
                bar.set_message(self.message());
            }
            None => eprintln!("plan: {}/{} runs done, {}", self.done, self.total, self.message()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs every unfinished run of `exp`, records each as soon as it ends, then redraws the figures
/// and REPORT.md.
pub fn run_experiment(exp: &dyn Experiment, opts: &RunOptions, data: Option<&Mnist>) -> Result<Report> {
    let mut report = run_experiment_with(exp, opts, data, None)?;
    if Store::new(&opts.plan.results_dir, exp.name()).path("runs").exists() {
        report.figures.push(crate::report::write(&opts.plan.results_dir)?);
    }
    Ok(report)
}

/// As [`run_experiment`], reporting each finished run to a plan-wide progress, and leaving
/// REPORT.md to the caller: a plan (reproduce-all) covers every experiment, so it decides when
/// the report is worth rewriting.
pub fn run_experiment_with(
    exp: &dyn Experiment,
    opts: &RunOptions,
    data: Option<&Mnist>,
    mut plan_progress: Option<&mut PlanProgress>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    crate::results::git_state();
    let store = Store::new(&opts.plan.results_dir, exp.name());
    store.remove_stale_temporaries()?;
    let planned = plan(exp, &opts.plan)?;
    let todo: Vec<&PlannedRun> = planned.iter().filter(|r| r.done.is_none()).collect();
    let relabelled: BTreeMap<String, String> = planned
        .iter()
        .filter(|r| r.done.is_some() && r.recorded_label.as_ref() != Some(&r.label))
        .map(|r| (r.run_id.clone(), r.label.clone()))
        .collect();
    if !relabelled.is_empty() {
        store.relabel(&relabelled)?;
    }
    eprintln!(
        "{}: {} runs planned ({} to do, {} already recorded) on the {} profile",
        exp.name(),
        planned.len(),
        todo.len(),
        planned.len() - todo.len(),
        opts.plan.profile.name()
    );
    let mut report = Report {
        cached: planned.iter().filter(|r| r.done.is_some()).map(|r| r.run_id.clone()).collect(),
        ..Default::default()
    };
    let loaded;
    let data = match (data, todo.is_empty()) {
        (Some(d), _) => Some(d),
        (None, false) => {
            loaded = load_data(&opts.data_dir)?;
            Some(&loaded)
        }
        (None, true) => None,
    };
    for (k, run) in todo.iter().enumerate() {
        let ctx = RunContext {
            data: data.expect("loaded when there is work"),
            device: &opts.device,
            run_id: &run.run_id,
            progress_label: format!("{} [{}/{}] {}", exp.name(), k + 1, todo.len(), run.label),
        };
        let outcome = exp.run(&ctx, &run.config).with_context(|| format!("{} run {}", exp.name(), run.run_id))?;
        let device = format!("{:?}", opts.device.location());
        let manifest =
            Manifest::new(&run.run_id, exp.name(), opts.plan.profile.name(), &run.config_hash, run.seed, &device);
        let mut summary: Vec<(String, crate::results::Cell)> = vec![
            ("label".into(), run.label.clone().into()),
            ("status".into(), outcome.status.clone().into()),
            ("note".into(), outcome.note.clone().into()),
        ];
        summary.extend(run.config.iter().map(|(k, v)| (k.clone(), crate::results::Cell::from_json(v))));
        summary.extend(outcome.metrics);
        store.record(&RunRecord { manifest, summary, tables: outcome.tables })?;
        if outcome.status != STATUS_FINISHED {
            eprintln!("{}: run {} ended {}: {}", exp.name(), run.run_id, outcome.status, outcome.note);
            report.not_finished.push((run.run_id.clone(), outcome.status.clone()));
        }
        report.executed.push(run.run_id.clone());
        if let Some(p) = plan_progress.as_deref_mut() {
            p.run_done(estimated_seconds(&run.config));
        }
    }
    if store.path("runs").exists() {
        report.figures = exp.figures(&store).with_context(|| format!("drawing the figures of {}", exp.name()))?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
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

    /// Adding a seed axis relabels lsoftmax's runs ("m=1" → "m=1,seed=1") but not their configs:
    /// the recorded run must still count as done, and keep its id when forced.
    #[test]
    fn recorded_runs_are_found_by_config_even_when_relabelled() {
        let dir = std::env::temp_dir().join(format!("replicate-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exp = find("lsoftmax").unwrap();
        let sweep = exp.sweeps(Profile::Quick, &dir).remove(0);
        let (label, config) = sweep.runs().remove(0);
        assert_eq!(label, "m=1,seed=1");
        let hash = config_hash(exp.name(), &config);
        let manifest = crate::results::Manifest::new("m=1-old", exp.name(), "quick", &hash, 1, "Cpu");
        let summary = vec![("label".into(), "m=1".into()), ("status".into(), crate::results::STATUS_FINISHED.into())];
        Store::new(&dir, exp.name())
            .record(&crate::results::RunRecord { manifest, summary, tables: Vec::new() })
            .unwrap();
        let mut opts = PlanOptions::new(Profile::Quick, &dir);
        let planned = plan(exp, &opts).unwrap();
        assert_eq!(planned.len(), 12);
        assert_eq!(
            (planned[0].run_id.as_str(), planned[0].done.as_deref()),
            ("m=1-old", Some(crate::results::STATUS_FINISHED))
        );
        assert!(planned[1..].iter().all(|r| r.done.is_none() && r.recorded_label.is_none()));
        // run_experiment relabels exactly the recorded runs whose stored label differs.
        assert_eq!(planned[0].recorded_label.as_deref(), Some("m=1"));
        opts.force = true;
        let forced = plan(exp, &opts).unwrap();
        assert_eq!((forced[0].run_id.as_str(), forced[0].done.as_deref()), ("m=1-old", None));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Figures keep the latest run of each label, so two runs of one plan must never share one.
    #[test]
    fn every_plan_labels_its_runs_distinctly() {
        let dir = std::env::temp_dir().join(format!("replicate-labels-{}", std::process::id()));
        for exp in registry() {
            for profile in [Profile::Smoke, Profile::Quick, Profile::Paper] {
                let planned = plan(exp, &PlanOptions::new(profile, &dir)).unwrap();
                let labels: BTreeSet<&str> = planned.iter().map(|r| r.label.as_str()).collect();
                assert_eq!(labels.len(), planned.len(), "{} on the {} profile", exp.name(), profile.name());
            }
        }
    }

    #[test]
    fn config_hash_is_stable_and_sensitive() {
        let runs = sweep().runs();
        assert_eq!(config_hash("e", &runs[0].1), config_hash("e", &runs[0].1));
        assert_ne!(config_hash("e", &runs[0].1), config_hash("e", &runs[1].1));
        assert_ne!(config_hash("e", &runs[0].1), config_hash("f", &runs[0].1));
    }
}
