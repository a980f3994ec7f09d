//! The runner, above the experiments: plans a sweep against what is recorded, trains what is
//! missing, records each run as it ends, redraws figures, merges shards and writes REPORT.md.
//! The CLI (`main.rs`), the notebooks and the tests all call it.

pub mod cluster;
pub mod report;
pub mod rescore;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use candle_core::Device;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::data::{Dataset, Datasets, Mnist};
use crate::experiments::{find, registry, Experiment, Profile, RunContext, Waiting};
use crate::progress::{fmt_secs, PlanProgress};
use crate::results::{checkpoint_identity, Cell, Manifest, RunRecord, Selection, Selections, Store, STATUS_FINISHED};
use crate::say;
use crate::train::Checkpoint;

/// One planned run.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub run_id: String,
    pub label: String,
    pub config: Map<String, Value>,
    /// The hash of [`Experiment::training_config`]: the run's identity.
    pub config_hash: String,
    pub seed: u64,
    pub done: Option<String>,
    /// The label and hash runs.parquet holds for this run, when it is recorded; the runner
    /// rewrites them when they differ from `label` and `config_hash`.
    pub recorded: Option<(Option<String>, String)>,
    /// The experiment whose store holds this run, when another experiment with the same trainer
    /// recorded it: the runner copies it instead of training it again.
    pub shared_from: Option<&'static str>,
}

impl PlannedRun {
    /// Whether the recorded label or hash differ from what the plan now gives this run.
    pub fn identity_changed(&self) -> bool {
        self.recorded
            .as_ref()
            .is_some_and(|(label, hash)| label.as_deref() != Some(&self.label) || *hash != self.config_hash)
    }
}

/// The identity of a run: a hash of its trainer (by default the experiment's name) and the config
/// that changes its training.
pub fn config_hash(trainer: &str, training: &Map<String, Value>) -> String {
    // serde_json's Map is a BTreeMap here, so this text is canonical (sorted keys).
    let text = serde_json::to_string(&(trainer, training)).expect("serialisable");
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A cell as text that reads the same whether it comes from a planned config value or back from
/// its runs.parquet column (a λ column holding "inf" stores its numbers as text; lists are JSON).
fn canonical(cell: &Cell) -> String {
    match cell {
        Cell::F64(v) => format!("{v:?}"),
        // As a float where that is exact, so 2 and 2.0 read alike; beyond 2^53 the digits.
        Cell::I64(v) if v.unsigned_abs() < 1 << 53 => format!("{:?}", *v as f64),
        Cell::I64(v) => v.to_string(),
        Cell::U64(v) => v.to_string(),
        Cell::Str(s) => s.parse::<f64>().map(|v| format!("{v:?}")).unwrap_or_else(|_| s.clone()),
        Cell::Bool(b) => b.to_string(),
        Cell::Null => "null".into(),
    }
}

/// Whether a recorded runs.parquet row holds `training`: every training key's column (or, for a
/// key added after the row was recorded, the value in `defaults`) equals the planned value.
fn holds(row: &crate::results::Row, training: &Map<String, Value>, defaults: &Map<String, Value>) -> bool {
    training.iter().all(|(key, value)| {
        let wanted = canonical(&Cell::from_json(value));
        match crate::results::Table::get(row, key) {
            Some(cell) => canonical(cell) == wanted,
            None => defaults.get(key).is_some_and(|d| canonical(&Cell::from_json(d)) == wanted),
        }
    })
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
    /// Where LFW is (or is copied to from `LFW_MIRROR`); None outside the project with no
    /// directory named (an error only for an experiment that reads LFW).
    pub lfw_dir: Option<PathBuf>,
    pub device: Device,
    /// Time between a run's checkpoints (zero: at every logged step).
    pub checkpoint_every: Duration,
    /// Runs trained at once, each on its share of the threads.
    pub jobs: usize,
}

/// Runs trained at once unless `--jobs` says otherwise: two where there are two threads or more.
/// On 2 cores, two jobs of one thread each trained a 4-run sweep in 169 s against 193 s for one
/// job of two threads (the threads of one run wait on each other at every layer; two runs do not).
pub fn default_jobs() -> usize {
    rayon::current_num_threads().clamp(1, 2)
}

/// Checkpoints every five minutes: a stopped run loses at most that much.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(300);

impl RunOptions {
    /// On the CPU, with checkpoints every [`CHECKPOINT_EVERY`], LFW in the project's `data/lfw`
    /// (or `REPLICATE_LFW_DIR`).
    pub fn new(plan: PlanOptions, data_dir: &Path) -> Self {
        RunOptions {
            plan,
            data_dir: data_dir.to_path_buf(),
            lfw_dir: crate::util::default_lfw_dir().ok(),
            device: Device::Cpu,
            checkpoint_every: CHECKPOINT_EVERY,
            jobs: default_jobs(),
        }
    }
}

/// The runs of an experiment, with whether each is already recorded. A recorded run is found by
/// its config columns, not its stored hash, so that changing what the hash covers (a description
/// taken out, a constant moved into the config with [`Experiment::recorded_defaults`]) keeps
/// every recorded run; [`run_experiment`] then rewrites the stored hash. A run that another
/// experiment with the same [`Experiment::trainer`] recorded counts as done too.
pub fn plan(exp: &dyn Experiment, opts: &PlanOptions) -> Result<Vec<PlannedRun>> {
    plan_among(exp, opts, &registry())
}

/// What `verify` and `rescore` start from: the experiment's store, its current runs table, the
/// profile those runs were recorded on and the plan on that profile. `purpose` finishes the error
/// when nothing is recorded ("to verify").
pub(crate) fn recorded_plan(
    exp: &dyn Experiment,
    results_dir: &Path,
    purpose: &str,
) -> Result<(Store, crate::results::Table, Profile, Vec<PlannedRun>)> {
    let store = Store::new(results_dir, exp.name());
    let runs = store.current_runs()?;
    let Some(first) = runs.records().next() else {
        anyhow::bail!("{} has no recorded runs {purpose}", store.path("runs").display())
    };
    let profile = Profile::parse(first.text("profile")?)?;
    let planned = plan(exp, &PlanOptions::new(profile, results_dir))?;
    Ok((store, runs, profile, planned))
}

/// [`plan`], sharing runs with the experiments of `others` that have the same trainer.
pub fn plan_among(
    exp: &dyn Experiment,
    opts: &PlanOptions,
    others: &[&'static dyn Experiment],
) -> Result<Vec<PlannedRun>> {
    let recorded = Store::new(&opts.results_dir, exp.name()).recorded()?;
    let defaults = exp.recorded_defaults();
    let mut siblings = Vec::new();
    for other in others.iter().filter(|o| o.trainer() == exp.trainer() && o.name() != exp.name()) {
        let runs = Store::new(&opts.results_dir, other.name()).recorded()?;
        // Whatever a run ended as (finished, diverged, collapsed) is what that config trains to: a
        // recorded run of its own counts as done whatever its status, and so does a sibling's.
        siblings.push((other.name(), runs));
    }
    let mut seen = BTreeSet::new();
    let mut planned = Vec::new();
    for original in exp.sweeps(opts.profile, &opts.results_dir)? {
        let mut sweep = original.clone();
        sweep.apply(&opts.overrides).with_context(|| format!("experiment {}", exp.name()))?;
        for (label, config) in sweep.runs() {
            check(exp, &config, &original.base).with_context(|| format!("experiment {}, run {label}", exp.name()))?;
            let training = exp.training_config(&config);
            let hash = config_hash(exp.trainer(), &training);
            if !seen.insert(hash.clone()) {
                continue;
            }
            // The last match, as the table is sorted by run id (a retrained slot's newest row).
            let mut found = recorded.iter().rev().find(|r| holds(&r.row, &training, &defaults));
            let mut shared_from = None;
            if found.is_none() && !opts.force {
                for (name, runs) in &siblings {
                    if let Some(r) = runs.iter().rev().find(|r| holds(&r.row, &training, &defaults)) {
                        (found, shared_from) = (Some(r), Some(*name));
                        break;
                    }
                }
            }
            // A recorded run keeps its id even if the sweep now labels it differently, so that
            // `--force` replaces its rows instead of adding a second copy.
            let run_id = found.map_or_else(|| format!("{label}-{}", &hash[..8]), |r| r.run_id.clone());
            let seed = config.get("seed").and_then(Value::as_u64).unwrap_or(0);
            let done = if opts.force { None } else { found.map(|r| r.status.clone()) };
            let recorded = found.map(|r| (r.label.clone(), r.config_hash.clone()));
            planned.push(PlannedRun { run_id, label, config, config_hash: hash, seed, done, recorded, shared_from });
        }
    }
    if let Some((i, n)) = opts.shard {
        planned = planned.into_iter().enumerate().filter(|(p, _)| p % n == i).map(|(_, r)| r).collect();
    }
    Ok(planned)
}

/// [`Experiment::check`], with the setting to blame named: serde reports a bad value of a
/// flattened config without its key, so each setting that differs from the profile's `base` is
/// put back in turn until the config passes.
fn check(exp: &dyn Experiment, config: &Map<String, Value>, base: &Map<String, Value>) -> Result<()> {
    let Err(err) = exp.check(config) else { return Ok(()) };
    for (key, value) in config {
        let Some(original) = base.get(key).filter(|b| *b != value) else { continue };
        let mut trial = config.clone();
        trial.insert(key.clone(), original.clone());
        if exp.check(&trial).is_ok() {
            if value.as_str().is_some_and(|v| v.ends_with("inf")) && !original.is_string() {
                anyhow::bail!("{key} must be a finite number, got {value}");
            }
            return Err(err.context(format!("{key} = {value}")));
        }
    }
    Err(err)
}

/// Copies into `store` the runs of a plan that another experiment recorded; returns how many.
/// Each copy gains this plan's config keys its row lacks (those outside the training config,
/// such as the leaderboard's `method`), so this experiment's tables name every run alike.
pub fn copy_shared(store: &Store, results_dir: &Path, planned: &[PlannedRun]) -> Result<usize> {
    let mut copied = 0;
    for run in planned {
        if let Some(from) = run.shared_from {
            let columns: Vec<(String, Cell)> =
                run.config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))).collect();
            store.copy_run(&Store::new(results_dir, from), &run.run_id, &columns)?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Gives the recorded runs of a plan the labels and hashes the plan now computes for them (a
/// sweep that gained an axis, a hash that covers less); returns how many changed.
pub fn update_identities(store: &Store, planned: &[PlannedRun]) -> Result<usize> {
    let identities: BTreeMap<String, (String, String)> = planned
        .iter()
        .filter(|r| r.done.is_some() && r.identity_changed())
        .map(|r| (r.run_id.clone(), (r.label.clone(), r.config_hash.clone())))
        .collect();
    if identities.is_empty() {
        return Ok(0);
    }
    store.update_identity(&identities)
}

/// What a call of [`run_experiment`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub executed: Vec<String>,
    pub cached: Vec<String>,
    /// Runs another experiment of the same trainer had recorded, copied in (also in `cached`).
    pub shared: Vec<String>,
    pub not_finished: Vec<(String, String)>,
    pub figures: Vec<PathBuf>,
    pub seconds: f64,
}

/// Loads MNIST from `data_dir`, fetching it first if needed (from `MNIST_MIRROR` or the hub).
pub fn load_data(data_dir: &Path) -> Result<Mnist> {
    crate::data::datasets::load_mnist(data_dir)
}

/// Rough training seconds of a run on this kind of machine, from its images and the network's
/// multiply-accumulates at the fast kernels' measured rate on 2 cores (~60 GFLOP/s), plus a
/// little for the final evaluation.
pub fn estimated_seconds(config: &Map<String, Value>) -> f64 {
    const FLOPS: f64 = 60e9;
    let get = |k: &str| config.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let backbone = match config.get("input_side").and_then(Value::as_u64) {
        Some(side) => {
            crate::nn::BackboneConfig::face_cnn(get("width"), get("feature_dim").max(1.0) as usize, side as usize)
        }
        None => crate::nn::BackboneConfig::lenetspp(get("width"), get("feature_dim").max(1.0) as usize),
    };
    let images = get("iterations") * get("batch_size");
    images * 6.0 * backbone.forward_macs() as f64 / FLOPS + 15.0
}

/// Runs every unfinished run of `exp`, records each as soon as it ends, then redraws the figures
/// and REPORT.md.
pub fn run_experiment(exp: &dyn Experiment, opts: &RunOptions, data: Option<&Datasets>) -> Result<Report> {
    let mut report = run_experiment_with(exp, opts, data, None)?;
    if Store::new(&opts.plan.results_dir, exp.name()).path("runs").exists() {
        report.figures.push(report::write(&opts.plan.results_dir)?);
    }
    Ok(report)
}

/// As [`run_experiment`], reporting each finished run to a plan-wide progress, and leaving
/// REPORT.md to the caller: a plan (reproduce-all) covers every experiment, so it decides when
/// the report is worth rewriting.
pub fn run_experiment_with(
    exp: &dyn Experiment,
    opts: &RunOptions,
    data: Option<&Datasets>,
    plan_progress: Option<&mut PlanProgress>,
) -> Result<Report> {
    let started = std::time::Instant::now();
    crate::results::git_state();
    let store = Store::new(&opts.plan.results_dir, exp.name());
    store.remove_stale_temporaries()?;
    // REPORT.md's and leaderboard.parquet's temporaries live in the results root.
    crate::util::remove_stale_temporaries(&opts.plan.results_dir)?;
    let planned = plan(exp, &opts.plan)?;
    let todo: Vec<&PlannedRun> = planned.iter().filter(|r| r.done.is_none()).collect();
    if !todo.is_empty() {
        store.check_writable_and_readable()?;
    }
    let shared = copy_shared(&store, &opts.plan.results_dir, &planned)?;
    if shared > 0 {
        eprintln!("{}: {shared} runs shared with experiments of the same trainer, copied", exp.name());
    }
    update_identities(&store, &planned)?;
    // A process stopped between recording a run and removing its checkpoint leaves one behind.
    for run in planned.iter().filter(|r| r.done.is_some()) {
        Checkpoint::new(store.checkpoint_path(&run.run_id), String::new(), CHECKPOINT_EVERY).remove()?;
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
        shared: planned.iter().filter(|r| r.shared_from.is_some()).map(|r| r.run_id.clone()).collect(),
        ..Default::default()
    };
    let own;
    let data = match data {
        Some(d) => d,
        None => {
            own = Datasets::new(&opts.data_dir, opts.lfw_dir.as_deref());
            &own
        }
    };
    if !todo.is_empty() {
        data.require(exp.datasets())?;
    }
    let runs: Vec<(usize, &PlannedRun)> = todo.iter().copied().enumerate().collect();
    let jobs = opts.jobs.clamp(1, runs.len().max(1));
    let record_one = |k: usize, run: &PlannedRun| -> Result<(String, String, String)> {
        let ctx = RunContext {
            data,
            device: &opts.device,
            run_id: &run.run_id,
            progress_label: format!("{} [{}/{}] {}", exp.name(), k + 1, todo.len(), run.label),
            run_label: format!("{} {}", exp.name(), run.label),
            checkpoint: Some(Checkpoint::new(
                store.checkpoint_path(&run.run_id),
                checkpoint_identity(&run.run_id),
                opts.checkpoint_every,
            )),
        };
        let outcome = exp.run(&ctx, &run.config).with_context(|| format!("{} run {}", exp.name(), run.run_id))?;
        let device = format!("{:?}", opts.device.location());
        let manifest =
            Manifest::new(&run.run_id, exp.name(), opts.plan.profile.name(), &run.config_hash, run.seed, &device);
        let mut summary: Vec<(String, Cell)> = vec![
            ("label".into(), run.label.clone().into()),
            ("status".into(), outcome.status.clone().into()),
            ("note".into(), outcome.note.clone().into()),
        ];
        summary.extend(run.config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))));
        summary.extend(outcome.metrics);
        // Weights first: a run recorded is a run whose weights are on disk.
        if !outcome.weights.is_empty() {
            store.write_weights(&manifest, &outcome.weights)?;
        }
        store.record(&RunRecord { manifest, summary, tables: outcome.tables })?;
        if let Some(checkpoint) = &ctx.checkpoint {
            checkpoint.remove().with_context(|| format!("cannot remove {}", checkpoint.path().display()))?;
        }
        Ok((run.run_id.clone(), outcome.status, outcome.note))
    };
    let plan_progress = std::sync::Mutex::new(plan_progress);
    let finished = |run: &PlannedRun, (run_id, status, note): (String, String, String), report: &mut Report| {
        if status != STATUS_FINISHED {
            eprintln!("{}: run {run_id} ended {status}: {note}", exp.name());
            report.not_finished.push((run_id.clone(), status));
        }
        report.executed.push(run_id);
        if let Some(p) = plan_progress.lock().unwrap_or_else(|e| e.into_inner()).as_deref_mut() {
            p.run_done(estimated_seconds(&run.config));
        }
    };
    if jobs == 1 {
        for &(k, run) in &runs {
            let done = record_one(k, run)?;
            finished(run, done, &mut report);
        }
    } else {
        // Each job trains one run at a time on its own share of the threads; a failed run stops
        // the others from starting new ones, and its error is the one returned.
        let threads = (rayon::current_num_threads() / jobs).max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let report_cell = std::sync::Mutex::new(&mut report);
        let errors: Vec<anyhow::Error> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..jobs)
                .map(|_| {
                    scope.spawn(|| -> Result<()> {
                        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let Some(&(k, run)) = runs.get(i) else { return Ok(()) };
                            if failed.load(std::sync::atomic::Ordering::SeqCst) {
                                return Ok(());
                            }
                            match pool.install(|| record_one(k, run)) {
                                Ok(done) => {
                                    finished(run, done, &mut report_cell.lock().unwrap_or_else(|e| e.into_inner()))
                                }
                                Err(e) => {
                                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                                    return Err(e);
                                }
                            }
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a job panicked"))).err())
                .collect()
        });
        if let Some(first) = errors.into_iter().next() {
            return Err(first);
        }
    }
    let written = update_selections(&opts.plan.results_dir, opts.plan.profile)?;
    for name in &written {
        eprintln!("recorded the selection {name} ({} profile)", opts.plan.profile.name());
    }
    // A sweep that reads a selection chosen from the experiment's own earlier sweep (View 2 after
    // View 1) is planned now that the selection is recorded.
    let own = exp.selection().is_some_and(|r| r.from.contains(&exp.name()) && written.contains(&r.name));
    if own {
        let mut plan_progress = plan_progress.into_inner().unwrap_or_else(|e| e.into_inner());
        let more: Vec<PlannedRun> = plan(exp, &opts.plan)?.into_iter().filter(|r| r.done.is_none()).collect();
        if let Some(p) = plan_progress.as_deref_mut() {
            p.add(more.len(), more.iter().map(|r| estimated_seconds(&r.config)).sum());
        }
        let later = run_experiment_with(exp, opts, Some(data), plan_progress)?;
        report.executed.extend(later.executed);
        report.shared.extend(later.shared);
        report.not_finished.extend(later.not_finished);
    }
    if store.path("runs").exists() {
        report.figures = exp.figures(&store).with_context(|| format!("drawing the figures of {}", exp.name()))?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// One experiment's line of a plan: runs to do, runs recorded, estimated seconds.
#[derive(Debug, Clone)]
pub struct PlanLine {
    pub experiment: &'static str,
    pub todo: usize,
    pub recorded: usize,
    pub seconds: f64,
    /// Why the experiment cannot be planned yet (the selection it reads is not recorded).
    pub waiting: Option<String>,
}

/// Every experiment's plan, from what is recorded now; an experiment that waits for a selection
/// is planned once the runs it is chosen from are recorded (during `reproduce-all`, or after a merge).
pub fn plan_all(opts: &PlanOptions) -> Result<Vec<PlanLine>> {
    let mut lines = Vec::new();
    for exp in registry() {
        let (todo, recorded, seconds, waiting) = match plan(exp, opts) {
            Ok(planned) => {
                let todo: Vec<&PlannedRun> = planned.iter().filter(|r| r.done.is_none()).collect();
                let seconds = todo.iter().map(|r| estimated_seconds(&r.config)).sum();
                (todo.len(), planned.len() - todo.len(), seconds, None)
            }
            Err(e) => match e.downcast::<Waiting>() {
                Ok(w) => (0, 0, 0.0, Some(w.to_string())),
                Err(e) => return Err(e),
            },
        };
        lines.push(PlanLine { experiment: exp.name(), todo, recorded, seconds, waiting });
    }
    Ok(lines)
}

/// Records every selection of `profile` whose source experiments have all their planned runs
/// recorded (and that differs from what is recorded); returns the names of those written.
pub fn update_selections(results_dir: &Path, profile: Profile) -> Result<Vec<&'static str>> {
    let mut written = Vec::new();
    for exp in registry() {
        let Some(rule) = exp.selection() else { continue };
        let mut complete = true;
        for name in rule.from {
            let planned = plan(find(name)?, &PlanOptions::new(profile, results_dir))?;
            complete &= !planned.is_empty() && planned.iter().all(|r| r.done.is_some());
        }
        if !complete {
            continue;
        }
        let (values, source) = (rule.choose)(results_dir).with_context(|| format!("choosing {}", rule.name))?;
        let selection = Selection { name: rule.name.into(), profile: profile.name().into(), values, source };
        if Selections::open(results_dir).put(&selection)? {
            written.push(rule.name);
        }
    }
    Ok(written)
}

/// Prints a plan as `reproduce-all` shows it before it starts.
pub fn print_plan(opts: &PlanOptions, lines: &[PlanLine]) {
    let shard = opts.shard.map(|(i, n)| format!(", shard {i}/{n}")).unwrap_or_default();
    say!("reproduce-all on the {} profile{shard}:", opts.profile.name());
    for l in lines {
        match &l.waiting {
            Some(why) => say!("  {:<18} planned later: {why}", l.experiment),
            None => say!(
                "  {:<18} {:>3} runs to do, {:>3} recorded, about {}",
                l.experiment,
                l.todo,
                l.recorded,
                fmt_secs(l.seconds)
            ),
        }
    }
    let (todo, recorded, seconds) =
        lines.iter().fold((0, 0, 0.0), |(t, r, s), l| (t + l.todo, r + l.recorded, s + l.seconds));
    let later = lines.iter().filter(|l| l.waiting.is_some()).count();
    let later = if later > 0 { format!(", and the {later} experiment(s) planned later") } else { String::new() };
    say!(
        "  {:<18} {todo:>3} runs to do, {recorded:>3} recorded, about {} (estimated at ~60 GFLOP/s, a 2-core CPU){later}",
        "total",
        fmt_secs(seconds)
    );
}

/// Runs every experiment's plan in registry order (finished runs are skipped), printing what each
/// did, then rewrites REPORT.md. REPORT.md is also rewritten after each experiment that trained,
/// so an interrupted plan leaves it current.
pub fn reproduce_all(opts: &RunOptions, lines: &[PlanLine]) -> Result<PathBuf> {
    let todo = lines.iter().map(|l| l.todo).sum();
    let mut progress = PlanProgress::new(todo, lines.iter().map(|l| l.seconds).sum());
    let data = Datasets::new(&opts.data_dir, opts.lfw_dir.as_deref());
    // Every data set that runs to do read is checked before the first trains; an LFW experiment
    // is left for later where LFW is not there at all (a user without a copy still gets MNIST's).
    let mut without_lfw = Vec::new();
    for line in lines.iter().filter(|l| l.todo > 0 || l.waiting.is_some()) {
        let needs = find(line.experiment)?.datasets();
        if needs.contains(&Dataset::Lfw) && !data.lfw_obtainable() {
            without_lfw.push(line.experiment);
        } else {
            data.require(needs)?;
        }
    }
    for exp in registry() {
        if without_lfw.contains(&exp.name()) {
            say!(
                "{}: not run: LFW is not in {} and LFW_MIRROR is not set (see data/README.md: `replicate data` fills it); \
                 REPORT.md marks its claims incomplete",
                exp.name(),
                data.lfw_dir().map_or("any directory named".into(), |d| d.display().to_string())
            );
            continue;
        }
        let planned = match plan(exp, &opts.plan) {
            Ok(planned) => planned,
            // A shard holds part of the sweeps a selection is chosen from: merge, then rerun.
            Err(e) if e.downcast_ref::<Waiting>().is_some() => {
                say!("{}: not planned: {e}", exp.name());
                continue;
            }
            Err(e) => return Err(e),
        };
        if lines.iter().any(|l| l.experiment == exp.name() && l.waiting.is_some()) {
            let todo: Vec<&PlannedRun> = planned.iter().filter(|r| r.done.is_none()).collect();
            progress.add(todo.len(), todo.iter().map(|r| estimated_seconds(&r.config)).sum());
        }
        let mut done = run_experiment_with(exp, opts, Some(&data), Some(&mut progress))?;
        if !done.executed.is_empty() {
            done.figures.push(report::write(&opts.plan.results_dir)?);
        }
        done.print(exp.name());
    }
    progress.finish();
    report::write(&opts.plan.results_dir)
}

/// Merges the results directories `sources` (shards' `--results-dir`s) into `results_dir` by run
/// id, redrawing the figures of every experiment that gained runs, then REPORT.md.
pub fn merge(results_dir: &Path, sources: &[PathBuf]) -> Result<Vec<(String, usize)>> {
    let mut merged = Vec::new();
    for source in sources {
        anyhow::ensure!(source.is_dir(), "cannot merge {}: no such directory", source.display());
        let holds_results = registry().iter().any(|e| Store::new(source, e.name()).path("runs").exists());
        anyhow::ensure!(
            holds_results,
            "cannot merge {}: it holds no results (no <experiment>/runs.parquet for any of {})",
            source.display(),
            registry().iter().map(|e| e.name()).collect::<Vec<_>>().join(", ")
        );
        for exp in registry() {
            let theirs = Store::new(source, exp.name());
            if theirs.path("runs").exists() {
                let ours = Store::new(results_dir, exp.name());
                let n = ours.merge_from(&theirs)?;
                exp.figures(&ours)?;
                merged.push((format!("{} from {}", exp.name(), source.display()), n));
            }
        }
    }
    // The merged sweeps may now be complete: what waited for them can be planned.
    for profile in [Profile::Smoke, Profile::Quick, Profile::Paper] {
        for name in update_selections(results_dir, profile)? {
            merged.push((format!("the selection {name} ({} profile)", profile.name()), 1));
        }
    }
    report::write(results_dir)?;
    Ok(merged)
}

/// How many distinct runs each profile plans for `exp` (without overrides); `None` while its
/// sweeps wait for a selection.
pub fn runs_per_profile(exp: &dyn Experiment, results_dir: &Path) -> Vec<(Profile, Option<usize>)> {
    [Profile::Smoke, Profile::Quick, Profile::Paper]
        .into_iter()
        .map(|p| {
            let runs = exp.sweeps(p, results_dir).ok().map(|sweeps| {
                let hashes: BTreeSet<String> = sweeps
                    .iter()
                    .flat_map(|s| s.runs())
                    .map(|(_, c)| config_hash(exp.trainer(), &exp.training_config(&c)))
                    .collect();
                hashes.len()
            });
            (p, runs)
        })
        .collect()
}

impl Report {
    /// What one experiment did, as `replicate run` and `reproduce-all` print it.
    pub fn print(&self, name: &str) {
        say!(
            "{name}: {} runs executed, {} already recorded, {:.1}s",
            self.executed.len(),
            self.cached.len(),
            self.seconds
        );
        for (id, status) in &self.not_finished {
            say!("  {id}: {status}");
        }
        for f in &self.figures {
            say!("  wrote {}", f.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::find;

    /// The leaderboard's settings for every profile, as its board needs them.
    fn record_leaderboard_selections(dir: &Path) {
        let values: Map<String, Value> = serde_json::from_str(
            r#"{"contrastive_lambda": 0.05, "center_lambda": 0.01, "sphere_m": 4, "cosface_margin": 0.35, "arcface_margin": 0.5}"#,
        )
        .unwrap();
        for profile in ["smoke", "quick", "paper"] {
            let selection = Selection {
                name: "leaderboard-settings".into(),
                profile: profile.into(),
                values: values.clone(),
                source: "the papers' values".into(),
            };
            Selections::open(dir).put(&selection).unwrap();
        }
    }

    /// Adding a seed axis relabels lsoftmax's runs ("m=1" → "m=1,seed=1") but not their configs:
    /// the recorded run must still count as done, and keep its id when forced.
    #[test]
    fn recorded_runs_are_found_by_config_even_when_relabelled() {
        let dir = std::env::temp_dir().join(format!("replicate-plan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exp = find("lsoftmax").unwrap();
        let sweep = exp.sweeps(Profile::Quick, &dir).unwrap().remove(0);
        let (label, config) = sweep.runs().remove(0);
        assert_eq!(label, "m=1,seed=1");
        let hash = config_hash(exp.name(), &config);
        let manifest = crate::results::Manifest::new("m=1-old", exp.name(), "quick", &hash, 1, "Cpu");
        let mut summary =
            vec![("label".into(), "m=1".into()), ("status".into(), crate::results::STATUS_FINISHED.into())];
        summary.extend(config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))));
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
        assert!(planned[1..].iter().all(|r| r.done.is_none() && r.recorded.is_none()));
        // run_experiment relabels exactly the recorded runs whose stored label differs.
        assert_eq!(planned[0].recorded, Some((Some("m=1".to_string()), hash)));
        assert!(planned[0].identity_changed());
        opts.force = true;
        let forced = plan(exp, &opts).unwrap();
        assert_eq!((forced[0].run_id.as_str(), forced[0].done.as_deref()), ("m=1-old", None));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Figures keep the latest run of each label, so two runs of one plan must never share one.
    #[test]
    fn every_plan_labels_its_runs_distinctly() {
        let dir = std::env::temp_dir().join(format!("replicate-labels-{}", std::process::id()));
        record_leaderboard_selections(&dir);
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
        let base: Map<String, Value> = serde_json::from_str(r#"{"lambda": 0.0, "seed": 1}"#).unwrap();
        let runs = crate::experiments::Sweep { base, axes: Vec::new() }.axis("lambda", &[0.0, 0.1]).runs();
        assert_eq!(config_hash("e", &runs[0].1), config_hash("e", &runs[0].1));
        assert_ne!(config_hash("e", &runs[0].1), config_hash("e", &runs[1].1));
        assert_ne!(config_hash("e", &runs[0].1), config_hash("f", &runs[0].1));
    }

    /// The leaderboard's runs were recorded with `lambda_source` in their hash and its methods'
    /// settings typed as constants. Moving those into the config and the description out of the
    /// hash keeps every such run: it is found by its config columns (the new keys by their recorded
    /// defaults), its hash is rewritten once, and a run trained with another λ is not mistaken for it.
    #[test]
    fn runs_recorded_before_the_leaderboard_gained_its_settings_stay_recorded() {
        let dir = std::env::temp_dir().join(format!("replicate-migrate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let exp = find("leaderboard").unwrap();
        record_leaderboard_selections(&dir);
        let opts = PlanOptions::new(Profile::Quick, &dir);
        let contrastive =
            plan(exp, &opts).unwrap().into_iter().find(|r| r.label == "method=contrastive,seed=1").unwrap();
        let mut old = contrastive.config.clone();
        for key in ["verification", "center", "triplet", "lsoftmax_annealing", "lsoftmax_m"] {
            old.remove(key);
        }
        let old_hash = config_hash(exp.name(), &old);
        assert_ne!(old_hash, contrastive.config_hash);
        let store = Store::new(&dir, exp.name());
        let record = |id: &str, config: &Map<String, Value>| {
            let mut summary =
                vec![("label".into(), contrastive.label.clone().into()), ("status".into(), STATUS_FINISHED.into())];
            summary.extend(config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))));
            let manifest = Manifest::new(id, exp.name(), "quick", &old_hash, 1, "Cpu");
            let curves = vec![vec![("step".to_string(), Cell::I64(1))]];
            store.record(&RunRecord { manifest, summary, tables: vec![("curves".into(), curves)] }).unwrap();
        };
        record("contrastive-old", &old);
        let mut other_lambda = old.clone();
        other_lambda.insert("contrastive_lambda".into(), Value::from(0.5));
        record("contrastive-other-lambda", &other_lambda);
        let planned = plan(exp, &opts).unwrap();
        let found: Vec<&PlannedRun> = planned.iter().filter(|r| r.done.is_some()).collect();
        assert_eq!(found.len(), 1, "only the run with the planned λ is the planned run");
        assert_eq!(found[0].run_id, "contrastive-old");
        assert!(found[0].identity_changed());
        assert_eq!(update_identities(&store, &planned).unwrap(), 1);
        let runs = store.load("runs").unwrap();
        let row = runs.records().find(|r| r.run_id().unwrap() == "contrastive-old").unwrap();
        assert_eq!(row.text("config_hash").unwrap(), contrastive.config_hash);
        let manifests = crate::results::read_parquet_metadata(&store.path("curves")).unwrap();
        assert!(manifests.iter().any(|(_, v)| v.contains(&contrastive.config_hash)), "the curves' manifest follows");
        let again = plan(exp, &opts).unwrap();
        assert_eq!(update_identities(&store, &again).unwrap(), 0, "migrated once");
        // Rewording the description retrains nothing.
        let mut reworded = again.iter().find(|r| r.run_id == "contrastive-old").unwrap().config.clone();
        reworded.insert("lambda_source".into(), Value::from("another sentence"));
        assert_eq!(config_hash(exp.name(), &exp.training_config(&reworded)), contrastive.config_hash);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A test experiment: `x` swept over 0.5 and 0.7, trained by `trainer`; a named one's runs
    /// also carry a `method`, a key that names them without being part of their training (as the
    /// LFW leaderboard's).
    struct Dummy(&'static str, &'static str, bool);

    impl Experiment for Dummy {
        fn name(&self) -> &'static str {
            self.0
        }
        fn about(&self) -> &'static str {
            "a test experiment"
        }
        fn trainer(&self) -> &'static str {
            self.1
        }
        fn sweeps(&self, _: Profile, _: &Path) -> Result<Vec<crate::experiments::Sweep>> {
            let mut base: Map<String, Value> = serde_json::from_str(r#"{"seed": 1, "x": 0.5}"#).unwrap();
            if self.2 {
                base.insert("method".into(), Value::from("plain"));
            }
            Ok(vec![crate::experiments::Sweep { base, axes: Vec::new() }.axis("x", &[0.5, 0.7])])
        }
        fn training_config(&self, config: &Map<String, Value>) -> Map<String, Value> {
            let mut training = config.clone();
            training.remove("method");
            training
        }
        fn check(&self, _: &Map<String, Value>) -> Result<()> {
            Ok(())
        }
        fn run(&self, _: &RunContext, _: &Map<String, Value>) -> Result<crate::experiments::RunOutcome> {
            unreachable!("these tests never train")
        }
        fn figures(&self, _: &Store) -> Result<Vec<PathBuf>> {
            Ok(Vec::new())
        }
    }

    static FIRST: Dummy = Dummy("first", "shared-trainer", false);
    static SECOND: Dummy = Dummy("second", "shared-trainer", false);
    static OTHER: Dummy = Dummy("other", "another-trainer", false);
    static NAMED: Dummy = Dummy("named", "shared-trainer", true);

    /// Two experiments of one trainer share a recorded run: the second copies the first's rows
    /// instead of training; an experiment of another trainer does not.
    #[test]
    fn experiments_of_one_trainer_share_recorded_runs() {
        let dir = std::env::temp_dir().join(format!("replicate-share-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let all: [&'static dyn Experiment; 3] = [&FIRST, &SECOND, &OTHER];
        let opts = PlanOptions::new(Profile::Quick, &dir);
        let first = plan_among(&FIRST, &opts, &all).unwrap();
        let run = &first[0];
        let mut summary = vec![("label".into(), run.label.clone().into()), ("status".into(), STATUS_FINISHED.into())];
        summary.extend(run.config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))));
        let manifest = Manifest::new(&run.run_id, "first", "quick", &run.config_hash, 1, "Cpu");
        let curves = vec![vec![("step".to_string(), Cell::I64(1))], vec![("step".to_string(), Cell::I64(2))]];
        Store::new(&dir, "first")
            .record(&RunRecord { manifest, summary, tables: vec![("curves".into(), curves)] })
            .unwrap();

        let second = plan_among(&SECOND, &opts, &all).unwrap();
        assert_eq!(second[0].run_id, run.run_id);
        assert_eq!((second[0].done.as_deref(), second[0].shared_from), (Some(STATUS_FINISHED), Some("first")));
        assert_eq!((second[1].done.as_deref(), second[1].shared_from), (None, None), "x = 0.7 was never trained");
        let other = plan_among(&OTHER, &opts, &all).unwrap();
        assert!(other.iter().all(|r| r.done.is_none()), "another trainer's runs are not this one's");

        let store = Store::new(&dir, "second");
        assert_eq!(copy_shared(&store, &dir, &second).unwrap(), 1);
        assert_eq!(store.load("curves").unwrap().rows.len(), 2);
        let again = plan_among(&SECOND, &opts, &all).unwrap();
        assert_eq!((again[0].done.as_deref(), again[0].shared_from), (Some(STATUS_FINISHED), None), "now its own");

        // A copy gains the config keys that name a run here without changing its training.
        let with_named: [&'static dyn Experiment; 2] = [&FIRST, &NAMED];
        let named = plan_among(&NAMED, &opts, &with_named).unwrap();
        assert_eq!(named[0].shared_from, Some("first"));
        let store = Store::new(&dir, "named");
        assert_eq!(copy_shared(&store, &dir, &named).unwrap(), 1);
        let runs = store.load("runs").unwrap();
        assert_eq!(runs.rows.len(), 1);
        assert_eq!(crate::results::Table::get(&runs.rows[0], "method").and_then(Cell::as_str), Some("plain"));
        assert_eq!(
            crate::results::Table::get(&runs.rows[0], "x").and_then(Cell::as_f64),
            Some(0.5),
            "its own columns kept"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Records every planned run of `experiment` on the smoke profile whose position `keep`s, as
    /// finished, with its config columns and the metric `metric` gives its config.
    fn record_plan(
        dir: &Path,
        experiment: &str,
        keep: impl Fn(usize) -> bool,
        metric: impl Fn(&Map<String, Value>) -> (String, Cell),
    ) {
        let exp = find(experiment).unwrap();
        let store = Store::new(dir, experiment);
        let plan_dir = dir.parent().unwrap().join("plan-source");
        for (i, run) in plan(exp, &PlanOptions::new(Profile::Smoke, &plan_dir)).unwrap().iter().enumerate() {
            if !keep(i) {
                continue;
            }
            let mut summary =
                vec![("label".into(), run.label.clone().into()), ("status".into(), STATUS_FINISHED.into())];
            summary.extend(run.config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))));
            summary.push(metric(&run.config));
            let manifest = Manifest::new(&run.run_id, experiment, "smoke", &run.config_hash, run.seed, "Cpu");
            store.record(&RunRecord { manifest, summary, tables: Vec::new() }).unwrap();
        }
    }

    /// On the leaderboard's validation split each method's favoured setting scores best.
    fn validation_metric(config: &Map<String, Value>) -> (String, Cell) {
        let number = |key: &str| config.get(key).and_then(Value::as_f64);
        let favoured = match config["method"].as_str().unwrap() {
            "contrastive" => number("contrastive_lambda") == Some(0.01),
            "center" => number("center_lambda") == Some(0.1),
            "sphereface" => number("sphere_m") == Some(2.0),
            "cosface" => number("additive_margin") == Some(0.35),
            "arcface" => number("additive_margin") == Some(0.3),
            other => panic!("{other} has nothing to choose"),
        };
        ("held_out_val_at_far_1e-3".into(), Cell::F64(if favoured { 0.5 } else { 0.4 }))
    }

    /// The leaderboard chooses its settings on its own validation split (digits 0-4 → 5-6), once
    /// every validation run is recorded, and only then plans the board (digits 0-6 → 7-9) with
    /// them; shards that hold part of the validation runs plan no board, and their merge plans the
    /// board one machine plans.
    #[test]
    fn the_leaderboard_chooses_on_its_validation_split_even_across_shards() {
        let root = std::env::temp_dir().join(format!("replicate-selection-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (whole, shard_a, shard_b, merged) =
            (root.join("whole"), root.join("a"), root.join("b"), root.join("merged"));
        let leaderboard = find("leaderboard").unwrap();
        let split_of = |r: &PlannedRun| r.config["split"].as_str().unwrap().to_string();
        let board = |dir: &Path| -> Vec<PlannedRun> {
            let planned = plan(leaderboard, &PlanOptions::new(Profile::Smoke, dir)).unwrap();
            planned.into_iter().filter(|r| split_of(r) == "test").collect()
        };
        let validation = plan(leaderboard, &PlanOptions::new(Profile::Smoke, &whole)).unwrap();
        assert_eq!(validation.len(), 12, "3 + 3 λ, 2 + 2 + 2 margins, one smoke seed");
        assert!(validation.iter().all(|r| split_of(r) == "validation"));
        assert!(board(&whole).is_empty(), "nothing chosen yet");

        record_plan(&whole, "leaderboard", |i| i > 0, validation_metric);
        assert!(update_selections(&whole, Profile::Smoke).unwrap().is_empty(), "one validation run missing");
        record_plan(&whole, "leaderboard", |i| i == 0, validation_metric);
        assert_eq!(update_selections(&whole, Profile::Smoke).unwrap(), ["leaderboard-settings"]);
        assert!(update_selections(&whole, Profile::Smoke).unwrap().is_empty(), "recorded once");
        let planned = board(&whole);
        assert_eq!(planned.len(), 27, "nine methods × three seeds");
        let setting = |method: &str, key: &str| {
            let run = planned.iter().find(|r| r.config["method"] == method).unwrap();
            run.config[key].as_f64().unwrap()
        };
        assert_eq!(setting("contrastive", "contrastive_lambda"), 0.01);
        assert_eq!(setting("center", "center_lambda"), 0.1);
        assert_eq!(setting("sphereface", "sphere_m"), 2.0);
        assert_eq!(setting("cosface", "additive_margin"), 0.35);
        assert_eq!(setting("arcface", "additive_margin"), 0.3);

        for (dir, half) in [(&shard_a, 0), (&shard_b, 1)] {
            record_plan(dir, "leaderboard", |i| i % 2 == half, validation_metric);
            assert!(update_selections(dir, Profile::Smoke).unwrap().is_empty());
            assert!(board(dir).is_empty(), "a shard with half the validation runs must not choose");
        }
        for dir in [&shard_a, &shard_b] {
            Store::new(&merged, "leaderboard").merge_from(&Store::new(dir, "leaderboard")).unwrap();
        }
        assert_eq!(update_selections(&merged, Profile::Smoke).unwrap(), ["leaderboard-settings"]);
        let hashes = |p: &[PlannedRun]| p.iter().map(|r| r.config_hash.clone()).collect::<Vec<_>>();
        assert_eq!(hashes(&board(&merged)), hashes(&planned), "the merge plans the runs one machine plans");
        std::fs::remove_dir_all(root).unwrap();
    }

    /// Records `runs` of `experiment` as finished, with the metric `metric` gives each config.
    fn record_runs(dir: &Path, experiment: &str, runs: &[PlannedRun], metric: impl Fn(&Map<String, Value>) -> f64) {
        let store = Store::new(dir, experiment);
        for run in runs {
            let mut summary =
                vec![("label".into(), run.label.clone().into()), ("status".into(), STATUS_FINISHED.into())];
            summary.extend(run.config.iter().map(|(k, v)| (k.clone(), Cell::from_json(v))));
            summary.push(("test_accuracy".into(), Cell::F64(metric(&run.config))));
            let manifest = Manifest::new(&run.run_id, experiment, "smoke", &run.config_hash, run.seed, "Cpu");
            store.record(&RunRecord { manifest, summary, tables: Vec::new() }).unwrap();
        }
    }

    /// leaderboard-lfw plans its View 1 sweeps first; once their choice and deepid2-lfw's are
    /// recorded it plans the nine methods on View 2, copying the softmax and contrastive folds
    /// deepid2-lfw trained (same trainer, same training config) and training the rest. A
    /// selection recorded before the successors joined (no margins) plans only the first five.
    #[test]
    fn leaderboard_lfw_chooses_on_view1_and_shares_view2_runs_with_deepid2_lfw() {
        let dir = std::env::temp_dir().join(format!("replicate-leaderboard-lfw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let opts = PlanOptions::new(Profile::Smoke, &dir);
        let (leaderboard, deepid2) = (find("leaderboard-lfw").unwrap(), find("deepid2-lfw").unwrap());
        let view1 = plan(leaderboard, &opts).unwrap();
        assert_eq!(view1.len(), 11, "three center-loss λ and two margins each of four methods, one seed on smoke");
        assert!(view1.iter().all(|r| r.done.is_none() && r.config["split"] == "view1"));
        record_runs(&dir, "deepid2-lfw", &plan(deepid2, &opts).unwrap(), |c| {
            if c["lambda"].as_f64() == Some(1.0) {
                0.9
            } else {
                0.8
            }
        });
        // The center λ = 1e-2, L-Softmax's m = 2, SphereFace's m = 2, CosFace's 0.2 and ArcFace's
        // 0.5 score best on View 1.
        record_runs(&dir, "leaderboard-lfw", &view1, |c| {
            let (number, method) = (|k: &str| c.get(k).and_then(Value::as_f64), c["method"].as_str());
            let best = number("center_lambda") == Some(1e-2)
                || number("lsoftmax_m") == Some(2.0)
                || (method == Some("sphereface") && number("sphere_m") == Some(2.0))
                || (method == Some("cosface") && number("additive_margin") == Some(0.2))
                || (method == Some("arcface") && number("additive_margin") == Some(0.5));
            if best {
                0.85
            } else {
                0.75
            }
        });
        let chosen = update_selections(&dir, Profile::Smoke).unwrap();
        assert!(
            chosen.contains(&"leaderboard-lfw-settings") && chosen.contains(&"deepid2-lfw-best-lambda"),
            "{chosen:?}"
        );
        let view2_of_deepid2: Vec<PlannedRun> =
            plan(deepid2, &opts).unwrap().into_iter().filter(|r| r.done.is_none()).collect();
        assert_eq!(view2_of_deepid2.len(), 30);
        record_runs(&dir, "deepid2-lfw", &view2_of_deepid2, |_| 0.8);

        let planned = plan(leaderboard, &opts).unwrap();
        assert_eq!(planned.len(), 11 + 9 * 10);
        let of = |method: &'static str| {
            planned.iter().filter(move |r| r.config["method"] == method && r.config["split"] != "view1")
        };
        for method in ["softmax", "contrastive"] {
            assert_eq!(of(method).count(), 10);
            assert!(of(method).all(|r| r.shared_from == Some("deepid2-lfw")), "{method} is deepid2-lfw's");
        }
        assert!(of("contrastive").all(|r| r.config["lambda"].as_f64() == Some(1.0)), "deepid2-lfw's λ");
        for method in ["triplet", "center", "lsoftmax", "normface", "sphereface", "cosface", "arcface"] {
            assert_eq!(of(method).count(), 10, "{method}");
            assert!(of(method).all(|r| r.done.is_none() && r.shared_from.is_none()), "{method} trains here");
        }
        let all_of = |method, key: &str, value: f64| of(method).all(|r| r.config[key].as_f64() == Some(value));
        assert!(all_of("center", "center_lambda", 1e-2) && all_of("lsoftmax", "lsoftmax_m", 2.0));
        assert!(all_of("sphereface", "sphere_m", 2.0));
        assert!(all_of("cosface", "additive_margin", 0.2) && all_of("arcface", "additive_margin", 0.5));
        assert!(of("normface").all(|r| r.config["margin_loss"] == "normface"));
        assert!(planned.iter().all(|r| r.label.starts_with("method=")), "labels name the method");

        // A selection without the margins (recorded before the successors joined the board).
        let mut old =
            Selections::open(&dir).get(crate::experiments::leaderboard_lfw::SELECTION, "smoke").unwrap().unwrap();
        old.values.retain(|k, _| k == "center_lambda" || k == "lsoftmax_m");
        Selections::open(&dir).put(&old).unwrap();
        let planned = plan(leaderboard, &opts).unwrap();
        assert_eq!(planned.len(), 11 + 5 * 10, "the successors' View 2 waits for their margins");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Planned values and the columns runs.parquet reads back as agree: a λ column with "inf"
    /// among its values is text, integers may come back as floats, lists are JSON text.
    #[test]
    fn recorded_rows_match_their_planned_config_through_the_stored_types() {
        let training: Map<String, Value> =
            serde_json::from_str(r#"{"lambda": 0.0001, "seed": 2, "steps": [5, 8], "rule": "adaptive"}"#).unwrap();
        let row = |lambda: Cell, seed: Cell| {
            vec![
                ("lambda".to_string(), lambda),
                ("seed".to_string(), seed),
                ("steps".to_string(), Cell::Str("[5,8]".into())),
                ("rule".to_string(), Cell::Str("adaptive".into())),
            ]
        };
        let none = Map::new();
        assert!(holds(&row(Cell::Str("0.0001".into()), Cell::I64(2)), &training, &none));
        assert!(holds(&row(Cell::F64(1e-4), Cell::F64(2.0)), &training, &none));
        assert!(!holds(&row(Cell::F64(1e-3), Cell::I64(2)), &training, &none));
        assert!(!holds(&row(Cell::F64(1e-4), Cell::I64(3)), &training, &none));
        let mut old = row(Cell::F64(1e-4), Cell::I64(2));
        old.retain(|(k, _)| k != "rule");
        assert!(!holds(&old, &training, &none), "a key the row lacks needs a recorded default");
        let defaults: Map<String, Value> = serde_json::from_str(r#"{"rule": "adaptive"}"#).unwrap();
        assert!(holds(&old, &training, &defaults));
        let other: Map<String, Value> = serde_json::from_str(r#"{"rule": "fixed"}"#).unwrap();
        assert!(!holds(&old, &training, &other));
    }
}
