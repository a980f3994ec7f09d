//! Checkpoints: what a run needs to go on where it stopped, in one safetensors file put in
//! place atomically. Tensors: the model's parameters (`param/<name>`), the optimiser's
//! velocities (`velocity/<position>`) and the objective's own state (`objective/<name>`);
//! metadata: the step, the curves so far, the sampler's position and generator, as JSON with
//! every float kept as its bits (JSON text does not round-trip every f64). A run resumed from a
//! checkpoint gives the tables a run that was never stopped gives (tests/reliability.rs kills runs
//! after every write).

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::CurveRow;
use crate::data::BatchSampler;
use crate::nn::Model;
use crate::objectives::Objective;
use crate::optim::Sgd;

const STATE_KEY: &str = "replicate.checkpoint";

/// Where one run keeps its checkpoint, whose it is, and how often it is taken.
pub struct Checkpoint {
    path: PathBuf,
    /// The run and the build that wrote it: a checkpoint of another run or another commit is
    /// not resumed (the code that continues it must be the code that started it).
    identity: String,
    every: Duration,
    last: Cell<Instant>,
}

/// Where training stood when a checkpoint was taken (at a logged step: nothing is half-averaged).
pub(super) struct Position {
    pub step: u64,
    pub images: u64,
    pub train_seconds: f64,
    pub curves: Vec<CurveRow>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    identity: String,
    step: u64,
    images: u64,
    train_seconds: u64,
    sampler: serde_json::Value,
    curves: Vec<SavedCurve>,
}

/// A curve row with its floats as bits.
#[derive(Serialize, Deserialize)]
struct SavedCurve {
    step: u64,
    epoch: u64,
    lr: u64,
    values: Vec<(String, u64)>,
}

impl Checkpoint {
    /// A checkpoint at `path`, taken when `every` has passed since the last one (zero: at every
    /// logged step).
    pub fn new(path: PathBuf, identity: String, every: Duration) -> Self {
        Checkpoint { path, identity, every, last: Cell::new(Instant::now()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the checkpoint (the run is recorded, or starts over).
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub(super) fn due(&self) -> bool {
        self.last.get().elapsed() >= self.every
    }

    pub(super) fn save(
        &self,
        model: &Model,
        optimiser: &Sgd,
        objective: &dyn Objective,
        sampler: &dyn BatchSampler,
        at: &Position,
    ) -> Result<()> {
        let cpu = |t: &Tensor| -> candle_core::Result<Tensor> { t.to_device(&Device::Cpu)?.contiguous() };
        let mut tensors: Vec<(String, Tensor)> = Vec::new();
        for (name, weight) in model.weights()? {
            tensors.push((format!("param/{name}"), weight));
        }
        for (i, v) in optimiser.velocities() {
            tensors.push((format!("velocity/{i}"), cpu(v)?));
        }
        for (name, t) in objective.state()? {
            tensors.push((format!("objective/{name}"), cpu(&t)?));
        }
        let saved = Saved {
            identity: self.identity.clone(),
            step: at.step,
            images: at.images,
            train_seconds: at.train_seconds.to_bits(),
            sampler: sampler.state(),
            curves: at.curves.iter().map(SavedCurve::of).collect(),
        };
        let metadata = HashMap::from([(STATE_KEY.to_string(), serde_json::to_string(&saved)?)]);
        let bytes = safetensors::serialize(tensors, Some(metadata))
            .with_context(|| format!("cannot encode the checkpoint {}", self.path.display()))?;
        crate::util::atomic_write(&self.path, &bytes)
            .with_context(|| format!("cannot write the checkpoint {}", self.path.display()))?;
        self.last.set(Instant::now());
        Ok(())
    }

    /// Puts the saved state into the model, optimiser, objective and sampler, and returns where
    /// training stood; `None` when there is no checkpoint to resume. A checkpoint that is damaged
    /// or another run's is said so, removed, and the run starts from step 0.
    pub(super) fn resume(
        &self,
        model: &Model,
        optimiser: &mut Sgd,
        objective: &mut dyn Objective,
        sampler: &mut dyn BatchSampler,
    ) -> Result<Option<Position>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read the checkpoint {}", self.path.display())),
        };
        let (saved, tensors) = match self.decode(&bytes, model) {
            Ok(decoded) => decoded,
            Err(why) => {
                eprintln!("not resuming from {}: {why}; training from step 0", self.path.display());
                self.remove()?;
                return Ok(None);
            }
        };
        // Past this point a failure would leave the run half-restored: the checkpoint goes, so the
        // next attempt trains from the start instead of failing the same way.
        let restored = (|| -> Result<()> {
            sampler.restore(&saved.sampler).map_err(anyhow::Error::msg)?;
            let mut own = HashMap::new();
            let mut velocities = Vec::new();
            for (name, t) in &tensors {
                if let Some(n) = name.strip_prefix("objective/") {
                    own.insert(n.to_string(), t.clone());
                } else if let Some(i) = name.strip_prefix("velocity/") {
                    velocities.push((i.parse::<usize>()?, t.clone()));
                }
            }
            objective.restore(&own)?;
            optimiser.set_velocities(&model.params, velocities)?;
            for p in model.params.iter() {
                p.var.set(&tensors[&format!("param/{}", p.name)])?;
            }
            Ok(())
        })();
        if let Err(e) = restored {
            self.remove()?;
            anyhow::bail!(
                "the checkpoint {} does not fit this run ({e:#}); removed it: run again to train from step 0",
                self.path.display()
            );
        }
        self.last.set(Instant::now());
        Ok(Some(Position {
            step: saved.step,
            images: saved.images,
            train_seconds: f64::from_bits(saved.train_seconds),
            curves: saved.curves.into_iter().map(SavedCurve::row).collect(),
        }))
    }

    /// The saved state and tensors, checked against this run before anything is changed.
    fn decode(&self, bytes: &[u8], model: &Model) -> Result<(Saved, HashMap<String, Tensor>), String> {
        let (_, metadata) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| format!("it is damaged ({e})"))?;
        let json = metadata.metadata().as_ref().and_then(|m| m.get(STATE_KEY)).ok_or("it holds no training state")?;
        let saved: Saved = serde_json::from_str(json).map_err(|e| format!("its training state is damaged ({e})"))?;
        if saved.identity != self.identity {
            return Err(format!("it was written by {:?}, this is {:?}", saved.identity, self.identity));
        }
        let device = model.params.iter().next().map(|p| p.var.device().clone()).unwrap_or(Device::Cpu);
        let tensors =
            candle_core::safetensors::load_buffer(bytes, &device).map_err(|e| format!("it is damaged ({e})"))?;
        for p in model.params.iter() {
            let want = p.var.as_tensor();
            match tensors.get(&format!("param/{}", p.name)) {
                Some(t) if t.dims() == want.dims() && t.dtype() == want.dtype() => {}
                Some(t) => {
                    return Err(format!(
                        "its {} is {:?} {:?}, the model's {:?} {:?}",
                        p.name,
                        t.dtype(),
                        t.dims(),
                        want.dtype(),
                        want.dims()
                    ))
                }
                None => return Err(format!("it has no parameter {}", p.name)),
            }
        }
        Ok((saved, tensors))
    }
}

impl SavedCurve {
    fn of(row: &CurveRow) -> Self {
        SavedCurve {
            step: row.step,
            epoch: row.epoch.to_bits(),
            lr: row.lr.to_bits(),
            values: row.values.iter().map(|(n, v)| (n.clone(), v.to_bits())).collect(),
        }
    }

    fn row(self) -> CurveRow {
        CurveRow {
            step: self.step,
            epoch: f64::from_bits(self.epoch),
            lr: f64::from_bits(self.lr),
            values: self.values.into_iter().map(|(n, v)| (n, f64::from_bits(v))).collect(),
        }
    }
}
