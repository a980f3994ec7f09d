//! `leaderboard`: every loss on the same network, data, batches and budget, measured the same
//! way — the comparison the four papers make only in words, and L-Softmax's successors (NormFace,
//! SphereFace, CosFace, ArcFace). LeNets++ with a 64-D feature, digits 0-6 for training and the
//! unseen 7-9 for verification and retrieval, 7 digits × 18 images per batch for every method,
//! three seeds. Each method's settings come from its paper's own config (`<paper>::config`);
//! what a method has to choose (DeepID2's and center loss's λ, the successors' margins) is chosen
//! on a validation split of the training digits (`selection`), never on 7-9.

pub mod claims;
mod config;
mod figures;
mod selection;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::setup::{
    compactness_metrics, finish_run, measure_weights, parse, plot_sample, seeds, train_or_diverge_with, VerificationSet,
};
use super::{Experiment, Profile, RunContext, RunOutcome, SelectionRule, Sweep, Weights};
use crate::nn::Model;
use crate::results::{Selections, Store};
use crate::train::embed;
use crate::verdict::Section;

pub use claims::{aggregate, Method};
use config::sweep_of;
pub use config::{config, Config};
pub use selection::SELECTION;
use selection::{choose_on_validation, selection_key, DigitSplit};

pub struct Leaderboard;

impl Experiment for Leaderboard {
    fn name(&self) -> &'static str {
        "leaderboard"
    }

    fn about(&self) -> &'static str {
        "every loss on the same 64-D LeNets++, data and budget, over 3 seeds, L-Softmax's successors among them (λ and margins chosen on a validation split)"
    }

    /// The validation split's sweeps of every setting a method chooses; then, once they have
    /// chosen, the board: every method over three seeds with those settings.
    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>> {
        let validation = Config { split: DigitSplit::Validation, classes_per_batch: 5, ..config(profile, None) };
        let mut sweeps: Vec<Sweep> = selection::chosen()
            .into_iter()
            .map(|(method, key, values)| sweep_of(&validation, method).axis(key, &values).axis("seed", seeds(profile)))
            .collect();
        let Some(chosen) = Selections::open(results_dir).get(SELECTION, profile.name())? else { return Ok(sweeps) };
        let board = config(profile, Some(&chosen));
        for method in Method::ALL {
            let margin = chosen.values.get(&selection_key(method, "additive_margin")).and_then(Value::as_f64);
            let cfg = Config { additive_margin: margin.unwrap_or(board.additive_margin), ..board.clone() };
            sweeps.push(sweep_of(&cfg, method).axis("seed", &[1u64, 2, 3]));
        }
        Ok(sweeps)
    }

    fn selection(&self) -> Option<SelectionRule> {
        Some(SelectionRule { name: SELECTION, from: &["leaderboard"], choose: choose_on_validation })
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        c.common.check()?;
        c.verification.check()?;
        c.center.check()?;
        c.triplet.check()?;
        c.lsoftmax_annealing.check()?;
        c.sphere_annealing.check()?;
        anyhow::ensure!((1..=4).contains(&c.lsoftmax_m), "lsoftmax_m must be 1, 2, 3 or 4, got {}", c.lsoftmax_m);
        if let Some(loss) = c.method.margin_loss() {
            let margin = loss.angular_margin(c.scale, c.additive_margin, false, c.sphere_m, &c.sphere_annealing);
            margin.context("a successor has a margin")?.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        super::setup::check_max_grad_norm(c.max_grad_norm)?;
        let digits = c.split.train_digits().len();
        anyhow::ensure!(
            (2..=digits).contains(&c.classes_per_batch),
            "classes_per_batch must be 2..={digits} (the training digits {}), got {}",
            c.split.words(),
            c.classes_per_batch
        );
        Ok(())
    }

    fn training_config(&self, config: &Map<String, Value>) -> Map<String, Value> {
        config::training_config(config)
    }

    fn recorded_defaults(&self) -> Map<String, Value> {
        config::recorded_defaults()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let c = &cfg.common;
        let data = ctx.data.mnist()?;
        let digits = cfg.split.train_digits();
        let model = config::model(&cfg, ctx)?;
        let mut objective = config::objective(&cfg, &model.head, ctx.device)?;
        let train_pool = c.train_pool(&data.train, digits);
        let mut sampler = c.class_balanced(&data.train, &train_pool, cfg.classes_per_batch)?;
        let mut no_evaluation = |_: &crate::nn::Model, _| Ok(Vec::new());
        let mut train_config = c.train_config();
        if cfg.method.margin_loss().is_some() {
            train_config.sgd.max_grad_norm = cfg.max_grad_norm;
        }
        let training = train_or_diverge_with(
            &train_config,
            &model,
            objective.as_mut(),
            &data.train,
            sampler.as_mut(),
            ctx,
            &mut no_evaluation,
        )?;
        finish_run(&training, |out| evaluate(&cfg, &model, ctx, out))
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let cfg: Config = parse(config)?;
        let model = config::model(&cfg, ctx)?;
        measure_weights(&model, weights, |model, out| evaluate(&cfg, model, ctx, out))
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?, &store.load("runs")?)
    }
}

/// The board's measurements of a trained model: identification on the training digits' test
/// images, then verification and retrieval on the held-out digits.
fn evaluate(cfg: &Config, model: &Model, ctx: &RunContext, out: &mut RunOutcome) -> Result<()> {
    let c = &cfg.common;
    let data = ctx.data.mnist()?;
    let (digits, held_out) = (cfg.split.train_digits(), cfg.split.held_out_digits());
    let train_pool = c.train_pool(&data.train, digits);
    // Identification on the test images of the training digits: the classifier, or for
    // the triplet embedding the nearest class mean of training embeddings.
    let seen = embed(model, &data.test, &c.test_pool(&data.test, digits), ctx.device)?;
    let predictions = match seen.predictions() {
        Some(p) => p,
        None => {
            let sample = plot_sample(&train_pool, 5000, "leaderboard-means");
            let t = embed(model, &data.train, &sample, ctx.device)?;
            let (means, _) = crate::metrics::class_means(&t.embedding, t.dim, &t.labels, digits.len());
            let means: Vec<f32> = means.iter().map(|&v| v as f32).collect();
            crate::metrics::nearest_center(&seen.embedding, seen.dim, &means)
        }
    };
    out.metrics.push(("identification_accuracy".into(), crate::metrics::accuracy(&predictions, &seen.labels).into()));
    out.metrics.extend(compactness_metrics(&seen));
    // Verification and retrieval compare directions (cosine), the usual score for
    // softmax-trained face features and what FaceNet's unit embedding does by construction:
    // raw L2 would penalise losses whose feature norms carry confidence, not identity
    // (L-Softmax's). Raw L2 is kept under `held_out_l2_*`.
    let keep = |metrics: Vec<(String, crate::results::Cell)>, part: &str| {
        metrics.into_iter().filter(|(n, _)| n.contains(part)).collect::<Vec<_>>()
    };
    let balanced =
        VerificationSet::balanced(&data.test, held_out, c.test_images, cfg.verification_pairs, cfg.verification_folds);
    let b = embed(model, &data.test, &balanced.indices, ctx.device)?;
    let b_unit = crate::metrics::unit_rows(&b.embedding, b.dim);
    out.metrics.extend(keep(balanced.metrics(&b_unit, b.dim, "held_out_balanced"), "accuracy"));
    out.metrics.extend(keep(balanced.metrics(&b.embedding, b.dim, "held_out_l2_balanced"), "accuracy"));
    let every_pair = VerificationSet::all_pairs(&data.test, held_out, cfg.val_images, cfg.verification_folds);
    let h = embed(model, &data.test, &every_pair.indices, ctx.device)?;
    let h_unit = crate::metrics::unit_rows(&h.embedding, h.dim);
    out.metrics.extend(keep(every_pair.metrics(&h_unit, h.dim, "held_out"), "val_at_far"));
    out.metrics.extend(keep(every_pair.metrics(&h.embedding, h.dim, "held_out_l2"), "val_at_far"));
    let r = crate::metrics::retrieval(&h_unit, h.dim, &h.labels);
    out.metrics.push(("precision_at_1".into(), r.precision_at_1.into()));
    out.metrics.push(("map_at_r".into(), r.map_at_r.into()));
    Ok(())
}
