//! Results tables under `results/<experiment>/`: `runs.parquet` (one row per run),
//! `curves.parquet` (one row per logging step), `features.parquet` (a fixed subsample of
//! features per run) and experiment-specific tables. Every write is atomic and keyed by run_id,
//! so an interrupted sweep resumes and shards merge by run_id.

pub mod selections;
pub mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use polars::prelude::DataFrame;

pub use selections::{Selection, Selections};
pub use table::{read_parquet, read_parquet_metadata, write_parquet, Cell, Record, Row, Table};

/// Statuses a run can end with; all three count as done (the same config gives the same result).
pub const STATUS_FINISHED: &str = "finished";
pub const STATUS_DIVERGED: &str = "diverged";
pub const STATUS_COLLAPSED: &str = "collapsed";

/// The version of the results tables' layout that this build writes (runs.parquet's
/// `schema_version`; rows without the column are version 1). Version 3: each recorded run keeps
/// its final weights in `<experiment>/weights/` (the tables' columns are those of version 2).
pub const SCHEMA_VERSION: u64 = 3;

/// Provenance of one run, stored in runs.parquet and in each file's key-value metadata.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub experiment: String,
    pub profile: String,
    pub config_hash: String,
    pub seed: u64,
    pub git_commit: String,
    pub git_dirty: bool,
    pub crate_versions: String,
    pub rustc: String,
    pub device: String,
    pub threads: usize,
    pub finished_at_unix: u64,
    /// The CPU's model name: floats round differently across CPUs (gemm picks its microkernel by
    /// the instruction set), so a number is reproducible bit for bit only on the same kind of CPU.
    #[serde(default)]
    pub cpu: String,
    /// The CPU's vector extensions that the kernels may use (e.g. "avx2 fma avx512f").
    #[serde(default)]
    pub cpu_features: String,
    /// The instruction set the kernels' matrix products ran on (`avx512`, `avx2`, `scalar`:
    /// the widest the CPU has unless `REPLICATE_ISA` forced a narrower one); empty before it
    /// was recorded.
    #[serde(default)]
    pub isa: String,
    /// [`SCHEMA_VERSION`] of the build that recorded the run (0 in manifests from before it).
    #[serde(default)]
    pub schema_version: u64,
    /// [`crate::nn::kernels::KERNEL_REVISION`] of the build that recorded the run (0 in
    /// manifests from before it, which ran revision 1).
    #[serde(default)]
    pub kernel_revision: u64,
}

impl Manifest {
    pub fn new(run_id: &str, experiment: &str, profile: &str, config_hash: &str, seed: u64, device: &str) -> Self {
        let (git_commit, git_dirty) = git_state().clone();
        Manifest {
            run_id: run_id.into(),
            experiment: experiment.into(),
            profile: profile.into(),
            config_hash: config_hash.into(),
            seed,
            git_commit,
            git_dirty,
            crate_versions: format!("replicate {}, {}", env!("CARGO_PKG_VERSION"), env!("REPLICATE_DEP_VERSIONS")),
            rustc: env!("REPLICATE_RUSTC").into(),
            device: device.into(),
            threads: rayon::current_num_threads(),
            finished_at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            cpu: crate::util::cpu_model(),
            cpu_features: crate::util::cpu_features(),
            isa: crate::nn::kernels::isa::isa().name().into(),
            schema_version: SCHEMA_VERSION,
            kernel_revision: crate::nn::kernels::KERNEL_REVISION,
        }
    }

    /// The manifest's fields as leading columns of runs.parquet.
    pub fn row(&self) -> Row {
        vec![
            ("run_id".into(), self.run_id.clone().into()),
            ("experiment".into(), self.experiment.clone().into()),
            ("profile".into(), self.profile.clone().into()),
            ("config_hash".into(), self.config_hash.clone().into()),
            ("seed".into(), self.seed.into()),
            ("git_commit".into(), self.git_commit.clone().into()),
            ("git_dirty".into(), self.git_dirty.into()),
            ("crate_versions".into(), self.crate_versions.clone().into()),
            ("rustc".into(), self.rustc.clone().into()),
            ("device".into(), self.device.clone().into()),
            ("threads".into(), self.threads.into()),
            ("finished_at_unix".into(), self.finished_at_unix.into()),
            ("cpu".into(), self.cpu.clone().into()),
            ("cpu_features".into(), self.cpu_features.clone().into()),
            ("isa".into(), self.isa.clone().into()),
            ("schema_version".into(), self.schema_version.into()),
            ("kernel_revision".into(), self.kernel_revision.into()),
        ]
    }
}

/// The commit and whether crates/ or the Cargo files differ from it, read once per process.
/// `run_experiment` reads it before training: a run records the tree it was started from, not
/// whatever is checked in when it finishes minutes later.
pub fn git_state() -> &'static (String, bool) {
    static STATE: OnceLock<(String, bool)> = OnceLock::new();
    STATE.get_or_init(|| {
        let Ok(root) = crate::util::project_root() else { return ("unknown".into(), false) };
        let run = |args: &[&str]| {
            std::process::Command::new("git")
                .args(args)
                .current_dir(&root)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let commit = run(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
        // Results files change with every run; only source changes make a build "dirty".
        let dirty = run(&["status", "--porcelain", "--untracked-files=no", "--", "crates", "Cargo.toml", "Cargo.lock"])
            .map(|s| !s.is_empty())
            .unwrap_or(false);
        (commit, dirty)
    })
}

/// runs.parquet's column naming the commit whose evaluation last scored a run again from its
/// weights (`replicate rescore`), where that changed a number; empty for runs scored as trained.
pub const RESCORED_WITH: &str = "rescored_with";

/// A measurement that scoring again changed: (column, before, after); None where there was no
/// number.
pub type Change = (String, Option<f64>, Option<f64>);

/// The folder of an experiment's results that holds the checkpoints of runs not yet recorded.
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// The folder of an experiment's results that holds each recorded run's final weights (out of
/// git: they are megabytes per run, and rebuilt by retraining).
pub const WEIGHTS_DIR: &str = "weights";

/// What a checkpoint must have been written by to be resumed: the run, the build (the commit,
/// and the binary itself when the tree has uncommitted changes) and the kernels' instruction set
/// (which decides the rounding).
pub fn checkpoint_identity(run_id: &str) -> String {
    let (commit, dirty) = git_state();
    let build = if *dirty {
        let binary = std::env::current_exe().and_then(std::fs::metadata);
        let stamp =
            binary.ok().and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        format!(" (uncommitted changes, binary of {})", stamp.map(|d| d.as_nanos()).unwrap_or(0))
    } else {
        String::new()
    };
    format!("{run_id} at {commit}{build} on {}", crate::nn::kernels::isa::isa().name())
}

/// Everything one finished run adds to its experiment's tables.
pub struct RunRecord {
    pub manifest: Manifest,
    /// The row of runs.parquet after the manifest's columns: config fields, status, metrics.
    pub summary: Row,
    /// Rows for the other tables, by file stem (curves, features, …); each row gets run_id first.
    pub tables: Vec<(String, Vec<Row>)>,
}

/// A run already in runs.parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRun {
    pub run_id: String,
    pub status: String,
    /// The label it was recorded under (a sweep may label the same config differently later).
    pub label: Option<String>,
    pub config_hash: String,
    /// Its whole runs.parquet row (the config columns among them).
    pub row: Row,
}

/// The result tables of one experiment.
pub struct Store {
    dir: PathBuf,
}

const MANIFESTS_KEY: &str = "replicate.manifests";

impl Store {
    pub fn new(results_dir: &Path, experiment: &str) -> Store {
        Store { dir: results_dir.join(experiment) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The results directory this experiment's folder lies in (its sibling experiments' too).
    pub fn results_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(Path::new("."))
    }

    pub fn path(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.parquet"))
    }

    /// The rows of a table, or an empty table if it does not exist yet; the table's `source` is
    /// its path, so a missing column names the file.
    pub fn load(&self, table: &str) -> Result<Table> {
        let path = self.path(table);
        let source = path.display().to_string();
        if !path.exists() {
            return Ok(Table::new(source, Vec::new()));
        }
        let rows = Table::from_frame(&read_parquet(&path)?).with_context(|| format!("reading {source}"))?.rows;
        Ok(Table::new(source, rows))
    }

    /// Removes the temporaries that killed writers left in this experiment's directory (see
    /// [`crate::util::remove_stale_temporaries`]); live writers' stay.
    pub fn remove_stale_temporaries(&self) -> Result<usize> {
        let mut removed = crate::util::remove_stale_temporaries(&self.dir)?;
        for folder in [CHECKPOINTS_DIR, WEIGHTS_DIR] {
            let folder = self.dir.join(folder);
            if folder.is_dir() {
                removed += crate::util::remove_stale_temporaries(&folder)?;
            }
        }
        Ok(removed)
    }

    /// Where a recorded run's final weights are (safetensors, by parameter name).
    pub fn weights_path(&self, run_id: &str) -> PathBuf {
        self.dir.join(WEIGHTS_DIR).join(format!("{run_id}.safetensors"))
    }

    /// Writes a run's final weights (temporary file + rename), with the run and its config hash
    /// in the file's metadata.
    pub fn write_weights(&self, manifest: &Manifest, weights: &[(String, candle_core::Tensor)]) -> Result<PathBuf> {
        let path = self.weights_path(&manifest.run_id);
        let metadata = std::collections::HashMap::from([
            ("run_id".to_string(), manifest.run_id.clone()),
            ("config_hash".to_string(), manifest.config_hash.clone()),
            ("git_commit".to_string(), manifest.git_commit.clone()),
        ]);
        let bytes = safetensors::serialize(weights.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
            .with_context(|| format!("cannot encode the weights {}", path.display()))?;
        std::fs::create_dir_all(path.parent().expect("weights live in a folder"))
            .with_context(|| format!("cannot create {}", self.dir.join(WEIGHTS_DIR).display()))?;
        crate::util::atomic_write(&path, &bytes)
            .with_context(|| format!("cannot write the weights {}", path.display()))?;
        Ok(path)
    }

    /// A recorded run's final weights; an error says how to get them back when there are none.
    pub fn read_weights(&self, run_id: &str) -> Result<std::collections::HashMap<String, candle_core::Tensor>> {
        let path = self.weights_path(run_id);
        anyhow::ensure!(
            path.exists(),
            "{} does not exist: run {run_id} was recorded before runs kept their weights, or elsewhere; retrain it \
             (`replicate verify` does) to get them",
            path.display()
        );
        candle_core::safetensors::load(&path, &candle_core::Device::Cpu)
            .with_context(|| format!("cannot read the weights {}", path.display()))
    }

    /// Where a run of this experiment keeps its checkpoint until it is recorded.
    pub fn checkpoint_path(&self, run_id: &str) -> PathBuf {
        self.dir.join(CHECKPOINTS_DIR).join(format!("{run_id}.safetensors"))
    }

    /// Fails, before any training, unless this directory can be created and written and every
    /// table already in it reads back with a runs table's columns: a problem found after hours of
    /// training would lose them.
    pub fn check_writable_and_readable(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create the results directory {}", self.dir.display()))?;
        let probe = crate::util::temporary(&self.dir.join("write-probe"), "");
        std::fs::write(&probe, b"probe")
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(|| format!("cannot write in the results directory {}", self.dir.display()))?;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if name.starts_with('.') || path.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let table = read_parquet(&path).with_context(|| {
                format!("{} is damaged: move it away (or restore it from git) and rerun", path.display())
            })?;
            if name == "runs.parquet" {
                for column in ["run_id", "status", "config_hash"] {
                    anyhow::ensure!(
                        table.column(column).is_ok(),
                        "{} is not a replicate runs table (it has no column {column:?}): move it away and rerun",
                        path.display()
                    );
                }
            }
        }
        Ok(())
    }

    /// The runs that figures and the report show: those of the most thorough profile recorded
    /// (paper, else quick, else smoke), so a smoke run never mixes into a quick figure; and for
    /// each run label the most recently recorded run, so a sweep re-run with changed settings
    /// replaces the old one in the figures (the old rows stay in the table as history).
    pub fn current_runs(&self) -> Result<Table> {
        Ok(Self::current_of(&self.load("runs")?))
    }

    /// [`Store::current_runs`] of a runs table already loaded.
    pub fn current_of(runs: &Table) -> Table {
        let rank = |r: &Row| match Table::get(r, "profile").and_then(Cell::as_str) {
            Some("paper") => 3,
            Some("quick") => 2,
            Some("smoke") => 1,
            _ => 0,
        };
        let best = runs.rows.iter().map(rank).max().unwrap_or(0);
        let when = |r: &Row| Table::get(r, "finished_at_unix").and_then(Cell::as_f64).unwrap_or(0.0);
        let label = |r: &Row| Table::get(r, "label").and_then(Cell::as_str).map(str::to_string);
        let candidates: Vec<&Row> = runs.rows.iter().filter(|r| rank(r) == best).collect();
        let rows = candidates
            .iter()
            .filter(|r| !candidates.iter().any(|o| label(o) == label(r) && when(o) > when(r)))
            .map(|r| (*r).clone())
            .collect();
        Table::new(runs.source.clone(), rows)
    }

    /// Every run in runs.parquet with its stored columns. The runner matches them to planned
    /// runs by their config columns, not by the stored hash, so that a change of what the hash
    /// covers keeps every recorded run (see `runner::plan`).
    pub fn recorded(&self) -> Result<Vec<RecordedRun>> {
        let runs = self.load("runs")?;
        runs.records()
            .map(|r| {
                Ok(RecordedRun {
                    run_id: r.run_id()?.to_string(),
                    status: r.status()?.to_string(),
                    label: r.str("label")?.map(str::to_string),
                    config_hash: r.text("config_hash")?.to_string(),
                    row: r.row.clone(),
                })
            })
            .collect()
    }

    /// Replaces this run's rows in every table it touches; runs.parquet is written last, so a
    /// run counts as done only once all its tables are on disk.
    pub fn record(&self, run: &RunRecord) -> Result<()> {
        // One writer at a time reads, changes and writes this directory's tables.
        let _lock = crate::util::lock_dir(&self.dir).with_context(|| format!("cannot lock {}", self.dir.display()))?;
        for (name, rows) in &run.tables {
            let rows: Vec<Row> = rows
                .iter()
                .map(|r| {
                    let mut row: Row = vec![("run_id".into(), run.manifest.run_id.clone().into())];
                    row.extend(r.iter().cloned());
                    row
                })
                .collect();
            self.upsert(name, &run.manifest, rows)?;
        }
        let mut summary = run.manifest.row();
        summary.extend(run.summary.iter().cloned());
        self.upsert("runs", &run.manifest, vec![summary])
    }

    fn upsert(&self, table: &str, manifest: &Manifest, rows: Vec<Row>) -> Result<()> {
        let path = self.path(table);
        let mut existing = self.load(table)?;
        existing.rows.retain(|r| Table::get(r, "run_id").and_then(Cell::as_str) != Some(manifest.run_id.as_str()));
        existing.rows.extend(rows);
        existing.rows.sort_by(|a, b| {
            let key = |r: &Row| Table::get(r, "run_id").and_then(Cell::as_str).map(str::to_string).unwrap_or_default();
            key(a).cmp(&key(b))
        });
        let mut manifests = self.manifests(&path)?;
        manifests
            .retain(|id, _| existing.rows.iter().any(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(id)));
        manifests.insert(manifest.run_id.clone(), serde_json::to_value(manifest)?);
        self.write(table, &existing, &manifests)
    }

    fn write(&self, table: &str, rows: &Table, manifests: &BTreeMap<String, serde_json::Value>) -> Result<()> {
        let metadata = vec![
            (MANIFESTS_KEY.to_string(), serde_json::to_string(manifests)?),
            ("replicate.table".to_string(), table.to_string()),
        ];
        write_parquet(&self.path(table), &mut rows.to_frame()?, metadata)
    }

    /// Replaces a recorded run's measurements in runs.parquet with `metrics` (adding the columns it
    /// lacks); every other column, table and manifest stays. When a value changed, the row's
    /// `rescored_with` names `commit`, the build whose evaluation the numbers now come from.
    /// Returns (column, before, after) for every value that changed, bit for bit.
    pub fn rescore_run(&self, run_id: &str, metrics: &[(String, Cell)], commit: &str) -> Result<Vec<Change>> {
        let _lock = crate::util::lock_dir(&self.dir).with_context(|| format!("cannot lock {}", self.dir.display()))?;
        let mut runs = self.load("runs")?;
        let row = runs
            .rows
            .iter_mut()
            .find(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(run_id))
            .with_context(|| format!("{} has no run {run_id}", self.path("runs").display()))?;
        let mut changes = Vec::new();
        for (name, value) in metrics {
            // parquet stores a NaN measurement as null: both are "no number".
            let bits = |c: Option<&Cell>| c.and_then(Cell::as_f64).filter(|x| !x.is_nan()).map(f64::to_bits);
            match row.iter_mut().find(|(n, _)| n == name) {
                Some((_, cell)) if bits(Some(cell)) == bits(Some(value)) && cell.as_str() == value.as_str() => {}
                Some((_, cell)) => {
                    changes.push((name.clone(), cell.as_f64(), value.as_f64()));
                    *cell = value.clone();
                }
                None => {
                    changes.push((name.clone(), None, value.as_f64()));
                    row.push((name.clone(), value.clone()));
                }
            }
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        match row.iter_mut().find(|(n, _)| n == RESCORED_WITH) {
            Some((_, cell)) => *cell = commit.to_string().into(),
            None => row.push((RESCORED_WITH.into(), commit.to_string().into())),
        }
        let manifests = self.manifests(&self.path("runs"))?;
        self.write("runs", &runs, &manifests)?;
        Ok(changes)
    }

    /// Gives recorded runs (run_id → label and config hash) the labels the sweep now uses for
    /// their configs and the hashes the planner now computes for them. A sweep that gains an axis
    /// labels `m=1` as `m=1,seed=1`; left alone, the old label would stay current in
    /// [`Store::current_runs`] beside the run that later retrains its slot. A hash changes when
    /// what it covers changes (a description taken out, a constant moved into the config); the
    /// manifests in every table's metadata follow. Returns how many runs changed.
    pub fn update_identity(&self, identities: &BTreeMap<String, (String, String)>) -> Result<usize> {
        let path = self.path("runs");
        if !path.exists() {
            return Ok(0);
        }
        let _lock = crate::util::lock_dir(&self.dir).with_context(|| format!("cannot lock {}", self.dir.display()))?;
        let mut runs = self.load("runs")?;
        let mut changed = BTreeMap::new();
        for row in &mut runs.rows {
            let Some((label, hash)) =
                Table::get(row, "run_id").and_then(Cell::as_str).and_then(|id| identities.get(id))
            else {
                continue;
            };
            let mut differs = false;
            for (name, wanted) in [("label", label), ("config_hash", hash)] {
                if let Some((_, cell)) = row.iter_mut().find(|(n, _)| n == name) {
                    if cell.as_str() != Some(wanted.as_str()) {
                        *cell = wanted.clone().into();
                        differs = true;
                    }
                }
            }
            if differs {
                let id = Table::get(row, "run_id").and_then(Cell::as_str).unwrap_or_default().to_string();
                changed.insert(id, hash.clone());
            }
        }
        if changed.is_empty() {
            return Ok(0);
        }
        for entry in std::fs::read_dir(&self.dir)? {
            let other = entry?.path();
            let stem = other.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            if stem == "runs" || other.extension().is_none_or(|e| e != "parquet") {
                continue;
            }
            let mut manifests = self.manifests(&other)?;
            if rehash(&mut manifests, &changed) {
                self.write(&stem, &self.load(&stem)?, &manifests)?;
            }
        }
        let mut manifests = self.manifests(&path)?;
        rehash(&mut manifests, &changed);
        self.write("runs", &runs, &manifests)?;
        Ok(changed.len())
    }

    fn manifests(&self, path: &Path) -> Result<BTreeMap<String, serde_json::Value>> {
        if !path.exists() {
            return Ok(BTreeMap::new());
        }
        let kv = read_parquet_metadata(path)?;
        Ok(kv
            .iter()
            .find(|(k, _)| k == MANIFESTS_KEY)
            .and_then(|(_, v)| serde_json::from_str(v).ok())
            .unwrap_or_default())
    }

    /// Merges another results directory's tables for this experiment into this one, by run_id
    /// (for sweeps split over several machines with `--shard`).
    pub fn merge_from(&self, other: &Store) -> Result<usize> {
        let ids: Vec<String> = other.recorded()?.into_iter().map(|r| r.run_id).collect();
        for id in &ids {
            self.copy_run(other, id, &[])?;
        }
        Ok(ids.len())
    }

    /// Copies one recorded run, with its rows of every table, its manifest and its weights, from another store
    /// (a shard's, or another experiment's that trained the same config). `columns` are config
    /// values of this experiment that its row gains where the other store's row has no such
    /// column (a key that names the run here but does not change its training, as `method`).
    pub fn copy_run(&self, other: &Store, run_id: &str, columns: &[(String, Cell)]) -> Result<()> {
        let runs = other.load("runs")?;
        let run = runs
            .rows
            .iter()
            .find(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(run_id))
            .with_context(|| format!("{} has no run {run_id}", other.path("runs").display()))?;
        let manifest_json = other
            .manifests(&other.path("runs"))?
            .remove(run_id)
            .with_context(|| format!("run {run_id} of {} has no manifest", other.path("runs").display()))?;
        let manifest: Manifest = serde_json::from_value(manifest_json)?;
        let mut tables = Vec::new();
        for entry in std::fs::read_dir(other.dir())? {
            let path = entry?.path();
            let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            if path.extension().is_some_and(|e| e == "parquet") && stem != "runs" {
                let rows = Table::from_frame(&read_parquet(&path)?)?
                    .rows
                    .into_iter()
                    .filter(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(run_id))
                    .map(|r| r.into_iter().filter(|(n, _)| n != "run_id").collect())
                    .collect();
                tables.push((stem, rows));
            }
        }
        // By name, not position: runs recorded before a manifest field existed have fewer columns.
        let manifest_columns: Vec<String> = manifest.row().into_iter().map(|(n, _)| n).collect();
        let mut summary: Vec<(String, Cell)> =
            run.iter().filter(|(n, _)| !manifest_columns.contains(n)).cloned().collect();
        for (name, cell) in columns {
            if !summary.iter().any(|(n, _)| n == name) {
                summary.push((name.clone(), cell.clone()));
            }
        }
        // The weights first, so that a recorded copy has them wherever the original does
        // (`replicate rescore` scores a copied run from them).
        let weights = other.weights_path(run_id);
        if weights.exists() {
            let to = self.weights_path(run_id);
            std::fs::create_dir_all(to.parent().expect("weights live in a folder"))
                .with_context(|| format!("cannot create {}", self.dir.join(WEIGHTS_DIR).display()))?;
            let bytes =
                std::fs::read(&weights).with_context(|| format!("cannot read the weights {}", weights.display()))?;
            crate::util::atomic_write(&to, &bytes)
                .with_context(|| format!("cannot write the weights {}", to.display()))?;
        }
        self.record(&RunRecord { manifest, summary, tables })
    }
}

/// Sets the config hash of the manifests of `changed` runs (run_id → hash); whether any changed.
fn rehash(manifests: &mut BTreeMap<String, serde_json::Value>, changed: &BTreeMap<String, String>) -> bool {
    let mut any = false;
    for (id, hash) in changed {
        if let Some(serde_json::Value::Object(m)) = manifests.get_mut(id) {
            if m.get("config_hash").and_then(serde_json::Value::as_str) != Some(hash) {
                m.insert("config_hash".into(), hash.clone().into());
                any = true;
            }
        }
    }
    any
}

/// Finished results as polars DataFrames, for notebooks and users.
pub struct Results {
    store: Store,
}

impl Results {
    /// The tables of `experiment` under `results_dir` (the project's `results/` by default).
    pub fn open(results_dir: &Path, experiment: &str) -> Results {
        Results { store: Store::new(results_dir, experiment) }
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    pub fn exists(&self) -> bool {
        self.store.path("runs").exists()
    }

    /// Any table by name: "runs", "curves", "features", or an experiment's own.
    pub fn table(&self, name: &str) -> Result<DataFrame> {
        let path = self.store.path(name);
        if !path.exists() {
            anyhow::bail!(
                "{} does not exist: run `replicate run {}` first",
                path.display(),
                self.store.dir.file_name().map(|s| s.to_string_lossy()).unwrap_or_default()
            );
        }
        read_parquet(&path)
    }

    pub fn runs(&self) -> Result<DataFrame> {
        self.table("runs")
    }

    pub fn curves(&self) -> Result<DataFrame> {
        self.table("curves")
    }

    pub fn features(&self) -> Result<DataFrame> {
        self.table("features")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(store: &Store, run_id: &str, label: &str, profile: &str, at: u64, accuracy: f64) {
        let mut manifest = Manifest::new(run_id, "e", profile, run_id, 1, "Cpu");
        manifest.finished_at_unix = at;
        let summary = vec![
            ("label".into(), label.into()),
            ("status".into(), STATUS_FINISHED.into()),
            ("accuracy".into(), accuracy.into()),
        ];
        store
            .record(&RunRecord {
                manifest,
                summary,
                tables: vec![("curves".into(), vec![vec![("step".into(), 1u64.into())]])],
            })
            .unwrap();
    }

    /// An empty store of experiment "e" in a fresh temporary directory.
    fn temp_store(name: &str) -> (PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("replicate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::new(&dir, "e");
        (dir, store)
    }

    fn current_ids(store: &Store) -> Vec<String> {
        let mut ids: Vec<String> = store
            .current_runs()
            .unwrap()
            .rows
            .iter()
            .filter_map(|r| Some(Table::get(r, "run_id")?.as_str()?.to_string()))
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn figures_see_the_best_profile_and_the_latest_run_of_each_label() {
        let (dir, store) = temp_store("store");
        record(&store, "m=1-aaaa", "m=1", "quick", 10, 0.90);
        record(&store, "m=1-bbbb", "m=1", "quick", 20, 0.95);
        record(&store, "m=2-cccc", "m=2", "quick", 15, 0.97);
        record(&store, "m=1-dddd", "m=1", "smoke", 30, 0.10);
        assert_eq!(current_ids(&store), ["m=1-bbbb", "m=2-cccc"]);
        assert_eq!(store.recorded().unwrap().len(), 4, "every run stays recorded");
        assert_eq!(store.load("curves").unwrap().rows.len(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A run recorded as `m=1` before the sweep gained a seed axis is relabelled `m=1,seed=1`,
    /// so the run that later retrains that slot replaces it in the figures.
    #[test]
    fn relabelled_runs_are_replaced_by_later_runs_of_their_new_label() {
        let (dir, store) = temp_store("relabel");
        record(&store, "m=1-old", "m=1", "quick", 10, 0.90);
        record(&store, "m=2,seed=1-aaaa", "m=2,seed=1", "quick", 11, 0.91);
        let identities: BTreeMap<String, (String, String)> = [
            ("m=1-old", "m=1,seed=1", "m=1-old"),
            ("m=2,seed=1-aaaa", "m=2,seed=1", "m=2,seed=1-aaaa"),
            ("absent", "x", "y"),
        ]
        .map(|(a, b, c)| (a.to_string(), (b.to_string(), c.to_string())))
        .into();
        assert_eq!(store.update_identity(&identities).unwrap(), 1);
        assert_eq!(store.update_identity(&identities).unwrap(), 0, "already relabelled");
        record(&store, "m=1,seed=1-new", "m=1,seed=1", "quick", 20, 0.95);
        assert_eq!(current_ids(&store), ["m=1,seed=1-new", "m=2,seed=1-aaaa"]);
        assert_eq!(store.recorded().unwrap().len(), 3, "the old run stays in the table");
        assert!(store.manifests(&store.path("runs")).unwrap().contains_key("m=1-old"), "its manifest too");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
