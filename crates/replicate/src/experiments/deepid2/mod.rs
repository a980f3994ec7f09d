//! `deepid2`: joint identification-verification, Sun et al., NIPS 2014 (the λ sweep). Training
//! minimises Ident + λ·Verif: softmax over the training identities plus the contrastive loss on
//! every pair of the batch (same identity ½d², different ½max(0, m − d)²). Digits are
//! identities: the head trains on 0-6, verification is tested on pairs of the unseen 7-9. The
//! claim: verification peaks at an intermediate λ (≈ 0.05 in the paper), worse at λ = 0
//! (identification only) and λ = ∞ (verification only).

pub mod claims;
mod figures;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::setup::{
    check_classes_per_batch, classifier_accuracy, compactness_metrics, feature_rows, finish_run, folds_before_the_key,
    lambda_values, lenetspp_2d, maybe_infinite, measure_weights, parse, plot_sample, section_with_earlier_folds,
    short_quick, train_or_diverge, Common, VerificationFolds, VerificationSet, ALL_DIGITS, FOLDS, HELD_OUT_DIGITS,
    TRAIN_DIGITS,
};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep, Weights};
use crate::data::Split;
use crate::nn::{HeadKind, Model};
use crate::objectives::VerificationSettings;
use crate::results::Store;
use crate::train::embed;
use crate::verdict::Section;

/// Digits shown in the PCA figure: three training and the three held-out identities.
const PCA_DIGITS: [u8; 6] = [4, 5, 6, 7, 8, 9];

pub const LAMBDAS: [f64; 8] = [0.0, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 1.0, f64::INFINITY];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    /// Weight of the verification signal; "inf" trains on verification alone.
    #[serde(with = "maybe_infinite")]
    pub lambda: f64,
    #[serde(flatten)]
    pub verification: VerificationSettings,
    /// Identities per batch (each with batch_size / classes_per_batch images).
    pub classes_per_batch: usize,
    /// Same and different pairs in each verification list.
    pub verification_pairs: usize,
    /// How the verification pairs fall into their 10 folds: image-disjoint sets (no image in two
    /// folds); runs recorded before this key used pair blocks ([`Experiment::recorded_defaults`]).
    pub verification_folds: VerificationFolds,
}

pub fn config(profile: Profile) -> Config {
    let smoke = profile == Profile::Smoke;
    let base = short_quick(lenetspp_2d(profile), profile, 200);
    let common = Common {
        feature_dim: 16,
        batch_size: if smoke { 35 } else { 126 },
        plot_points: if smoke { 120 } else { 1200 },
        ..base
    };
    Config {
        common,
        lambda: 0.0,
        verification: VerificationSettings::adaptive(if smoke { 5 } else { 50 }),
        classes_per_batch: 7,
        verification_pairs: if smoke { 300 } else { 3000 },
        verification_folds: VerificationFolds::ImageDisjoint,
    }
}

pub struct DeepId2;

impl Experiment for DeepId2 {
    fn name(&self) -> &'static str {
        "deepid2"
    }

    fn about(&self) -> &'static str {
        "DeepID2: softmax + λ·contrastive verification, λ swept from 0 to ∞, verified on unseen digits"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        Ok(vec![Sweep::new(&config(profile)).axis("lambda", &lambda_values(&LAMBDAS)).over_seeds(profile)])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        c.common.check()?;
        anyhow::ensure!(c.lambda >= 0.0, "lambda must be ≥ 0 or inf, got {}", c.lambda);
        c.verification.check()?;
        check_classes_per_batch(c.classes_per_batch)
    }

    fn recorded_defaults(&self) -> Map<String, Value> {
        folds_before_the_key()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let c = &cfg.common;
        let data = ctx.data.mnist()?;
        let model = c.model(HeadKind::Linear { classes: TRAIN_DIGITS.len() }, ctx)?;
        let train_pool = c.train_pool(&data.train, &TRAIN_DIGITS);
        let mut sampler = c.class_balanced(&data.train, &train_pool, cfg.classes_per_batch)?;
        let mut objective = cfg.verification.objective(cfg.lambda);
        let (held_out, _) = verification_sets(&cfg, &data.test);
        let mut hook = |model: &crate::nn::Model, _step: u64| -> Result<Vec<(String, f64)>> {
            let e = embed(model, &data.test, &held_out.indices, ctx.device)?;
            let d = held_out.pairs.squared_distances(&e.features, e.dim);
            let accuracy = crate::metrics::kfold_accuracy_in(&d, &held_out.pairs.same, &held_out.fold, FOLDS).mean;
            Ok(vec![("held_out_verification_accuracy".into(), accuracy)])
        };
        let training = train_or_diverge(c, &model, &mut objective, &data.train, sampler.as_mut(), ctx, &mut hook)?;
        let mut outcome = finish_run(&training, |out| evaluate(&cfg, &model, ctx, out))?;
        outcome.metrics.push(("final_margin".into(), objective.margin.into()));
        Ok(outcome)
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let cfg: Config = parse(config)?;
        let model = cfg.common.model(HeadKind::Linear { classes: TRAIN_DIGITS.len() }, ctx)?;
        measure_weights(&model, weights, |model, out| evaluate(&cfg, model, ctx, out))
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        let runs = store.load("runs")?;
        section_with_earlier_folds(&Store::current_of(&runs), &runs, claims::section)
    }
}

/// Balanced pairs of the held-out digits and of all ten, cut into folds as the config says.
fn verification_sets(cfg: &Config, test: &Split) -> (VerificationSet, VerificationSet) {
    let set = |digits: &[u8]| {
        VerificationSet::balanced(test, digits, cfg.common.test_images, cfg.verification_pairs, cfg.verification_folds)
    };
    (set(&HELD_OUT_DIGITS), set(&ALL_DIGITS))
}

/// A trained model's measurements: verification on the held-out digits and on all ten,
/// identification and compactness on the training digits' test images, and the PCA sample.
fn evaluate(cfg: &Config, model: &Model, ctx: &RunContext, out: &mut RunOutcome) -> Result<()> {
    let c = &cfg.common;
    let data = ctx.data.mnist()?;
    let (held_out, all) = verification_sets(cfg, &data.test);
    let h = embed(model, &data.test, &held_out.indices, ctx.device)?;
    out.metrics.extend(held_out.metrics(&h.features, h.dim, "held_out"));
    let a = embed(model, &data.test, &all.indices, ctx.device)?;
    out.metrics.extend(all.metrics(&a.features, a.dim, "all_digits"));
    let seen = embed(model, &data.test, &c.test_pool(&data.test, &TRAIN_DIGITS), ctx.device)?;
    let ident = if cfg.lambda.is_infinite() { f64::NAN } else { classifier_accuracy(&seen)? };
    out.metrics.push(("identification_accuracy".into(), ident.into()));
    out.metrics.extend(compactness_metrics(&seen));
    let held = crate::metrics::compactness(&h.features, h.dim, &h.labels);
    out.metrics.push(("held_out_r_ratio".into(), held.ratio.into()));
    let plot = plot_sample(&c.test_pool(&data.test, &PCA_DIGITS), c.plot_points, "plot-pca");
    let p = embed(model, &data.test, &plot, ctx.device)?;
    out.tables.push(("features".into(), feature_rows("test", &p, &plot, c.plot_points)));
    Ok(())
}
