//! The one training loop. An experiment supplies an [`Objective`] (its loss terms, and any state
//! it updates outside autograd); the trainer does the batching, the optimiser, the schedule,
//! periodic evaluation, logging, progress, checkpoints and the divergence check.

pub mod checkpoint;

use std::time::Instant;

use candle_core::{Device, Result as CResult};

use crate::data::{BatchSampler, Images, Split};
use crate::nn::Model;
use crate::objectives::{LossTerms, Objective};
use crate::optim::{MultiStep, Sgd, SgdConfig};
use crate::progress::Progress;

pub use checkpoint::Checkpoint;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub iterations: u64,
    pub lr: MultiStep,
    pub sgd: SgdConfig,
    /// Steps between rows of curves.parquet (the row holds the means over those steps).
    pub log_every: u64,
    /// Steps between calls of the evaluation hook (0: only at the end).
    pub eval_every: u64,
}

/// One row of curves.parquet.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveRow {
    pub step: u64,
    pub epoch: f64,
    pub lr: f64,
    /// Loss terms and statistics, averaged over the logging interval; evaluation values at eval steps.
    pub values: Vec<(String, f64)>,
}

/// Training stopped because a number went bad.
#[derive(Debug, thiserror::Error)]
#[error("diverged at step {step}: {reason} (loss terms: {terms})")]
pub struct Diverged {
    pub step: u64,
    pub reason: String,
    pub terms: String,
    /// Curves logged before the divergence.
    pub curves: Vec<CurveRow>,
}

/// A finished training run.
pub struct Trained {
    pub curves: Vec<CurveRow>,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Evaluation during training: named values, logged into the curves at that step.
pub type EvalHook<'a> = dyn FnMut(&Model, u64) -> anyhow::Result<Vec<(String, f64)>> + 'a;

/// Where the batches come from: the images of `images` at the indices `sampler` draws.
pub struct Feed<'a> {
    pub images: &'a dyn Images,
    pub sampler: &'a mut dyn BatchSampler,
}

/// How a run shows and keeps its progress: the progress bar's label, and the checkpoint it
/// resumes from and saves to (none: it starts at step 0 and saves nothing).
pub struct Tracking<'a> {
    pub label: &'a str,
    pub checkpoint: Option<&'a Checkpoint>,
}

/// Trains `model` with `objective` on the batches of `feed`, from the checkpoint if there is one.
pub fn train(
    model: &Model,
    objective: &mut dyn Objective,
    feed: Feed<'_>,
    cfg: &TrainConfig,
    device: &Device,
    eval: &mut EvalHook<'_>,
    tracking: &Tracking<'_>,
) -> anyhow::Result<Trained> {
    let Feed { images: source, sampler } = feed;
    let mut optimiser = Sgd::new(cfg.sgd, &model.params);
    let mut curves = Vec::new();
    let mut sums: Vec<(String, f64)> = Vec::new();
    let mut interval = 0u64;
    let mut progress = Progress::new(tracking.label, cfg.iterations);
    let start = Instant::now();
    // Evaluation and checkpoint writing are not training time.
    let mut other_seconds = 0.0;
    let mut images = 0u64;
    let mut first_step = 0;
    let mut earlier_seconds = 0.0;
    if let Some(checkpoint) = tracking.checkpoint {
        if let Some(at) = checkpoint.resume(model, &mut optimiser, objective, sampler)? {
            eprintln!(
                "{}: resuming at step {} of {} from {}",
                tracking.label,
                at.step,
                cfg.iterations,
                checkpoint.path().display()
            );
            (first_step, images, earlier_seconds, curves) = (at.step, at.images, at.train_seconds, at.curves);
            progress.update(first_step, "resumed");
        }
    }
    for step in first_step..cfg.iterations {
        let lr = cfg.lr.at(step);
        let indices = sampler.next_batch();
        images += indices.len() as u64;
        let (x, y) = source.training_batch(&indices, step, device)?;
        let out = model.forward_train(&x)?;
        let LossTerms { terms, stats } = objective.loss(&out, &y, step)?;
        let mut scalars: Vec<(&'static str, f64)> = Vec::with_capacity(terms.len() + stats.len() + 1);
        for (name, t) in &terms {
            scalars.push((name, t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?));
        }
        let describe = |s: &[(&str, f64)]| s.iter().map(|(n, v)| format!("{n}={v:.6}")).collect::<Vec<_>>().join(", ");
        let bad = scalars.iter().find(|(_, v)| !v.is_finite()).map(|(n, v)| format!("{n} is {v}"));
        if let Some(reason) = bad.or_else(|| objective.diverged(&scalars)) {
            progress.finish();
            return Err(Diverged { step, reason, terms: describe(&scalars), curves }.into());
        }
        if let Some(logits) = &out.logits {
            let predicted = logits.argmax(1)?;
            let correct = predicted.eq(&y)?.to_dtype(candle_core::DType::F64)?.mean_all()?.to_scalar::<f64>()?;
            scalars.push(("train_accuracy", correct));
        }
        scalars.extend(stats.iter().copied());
        let grads = terms[0].1.backward()?;
        optimiser.step(&model.params, &grads, lr)?;
        objective.after_step(&out, &y, step)?;
        drop(grads);

        for (name, v) in &scalars {
            match sums.iter_mut().find(|(n, _)| n == name) {
                Some((_, s)) => *s += v,
                None => sums.push((name.to_string(), *v)),
            }
        }
        interval += 1;
        let last = step + 1 == cfg.iterations;
        let log_now = (step + 1) % cfg.log_every.max(1) == 0 || last;
        let eval_now = last || (cfg.eval_every > 0 && (step + 1) % cfg.eval_every == 0);
        if log_now || eval_now {
            let mut values: Vec<(String, f64)> = sums.iter().map(|(n, s)| (n.clone(), s / interval as f64)).collect();
            if let Some(reason) = first_bad_parameter(model)? {
                progress.finish();
                return Err(Diverged { step, reason, terms: describe(&scalars), curves }.into());
            }
            if eval_now {
                let t = Instant::now();
                values.extend(eval(model, step + 1)?);
                other_seconds += t.elapsed().as_secs_f64();
            }
            let message = values
                .iter()
                .filter(|(n, _)| n == "loss" || n.ends_with("accuracy"))
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect::<Vec<_>>()
                .join(" ");
            progress.update(step + 1, &format!("lr {lr:.2e} {message}"));
            curves.push(CurveRow { step: step + 1, epoch: sampler.epochs(), lr, values });
            sums.clear();
            interval = 0;
            match tracking.checkpoint {
                Some(checkpoint) if !last && checkpoint.due() => {
                    let t = Instant::now();
                    let train_seconds = earlier_seconds + start.elapsed().as_secs_f64() - other_seconds;
                    let at = checkpoint::Position { step: step + 1, images, train_seconds, curves: curves.clone() };
                    checkpoint.save(model, &optimiser, objective, sampler, &at)?;
                    other_seconds += t.elapsed().as_secs_f64();
                }
                _ => {}
            }
        }
    }
    progress.finish();
    let seconds = earlier_seconds + start.elapsed().as_secs_f64() - other_seconds;
    Ok(Trained { curves, seconds, images_per_second: images as f64 / seconds.max(1e-9) })
}

fn first_bad_parameter(model: &Model) -> CResult<Option<String>> {
    for p in model.params.iter() {
        let s = p.var.as_tensor().sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        if !s.is_finite() {
            return Ok(Some(format!("parameter {} holds non-finite values", p.name)));
        }
    }
    Ok(None)
}

/// Features (and prediction logits) of `indices` in batches, without keeping any graph.
pub struct Embedded {
    pub dim: usize,
    pub features: Vec<f32>,
    pub embedding: Vec<f32>,
    pub logits: Option<Vec<f32>>,
    pub labels: Vec<u8>,
}

pub fn embed(model: &Model, split: &Split, indices: &[usize], device: &Device) -> CResult<Embedded> {
    let dim = model.config.feature_dim;
    let mut out = Embedded { dim, features: Vec::new(), embedding: Vec::new(), logits: None, labels: Vec::new() };
    for chunk in indices.chunks(500) {
        let (x, _) = split.batch(chunk, device)?;
        let o = model.forward(&x)?;
        out.features.extend(o.features.detach().flatten_all()?.to_vec1::<f32>()?);
        out.embedding.extend(o.embedding.detach().flatten_all()?.to_vec1::<f32>()?);
        if let Some(l) = o.logits {
            out.logits.get_or_insert_with(Vec::new).extend(l.detach().flatten_all()?.to_vec1::<f32>()?);
        }
        out.labels.extend(chunk.iter().map(|&i| split.labels[i]));
    }
    Ok(out)
}

impl Embedded {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.logits.as_ref().map(|l| l.len() / self.len().max(1)).unwrap_or(0)
    }

    /// Predicted class of each sample (arg max of the logits).
    pub fn predictions(&self) -> Option<Vec<usize>> {
        let c = self.num_classes();
        self.logits.as_ref().map(|l| {
            l.chunks(c)
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
                        .0
                })
                .collect()
        })
    }
}
