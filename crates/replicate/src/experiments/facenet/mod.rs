//! `facenet`: triplet loss with online mining, Schroff et al., CVPR 2015. Embeddings on the
//! unit hypersphere (L2-normalised), squared L2 distance, margin α = 0.2, batches of P digits ×
//! K images. Digits 0-6 train; verification is measured on the unseen 7-9. The claims: semi-hard
//! negatives train well while the hardest negatives can collapse training early (f(x) → a
//! constant); VAL at FAR = 1e-3 is nearly flat over the embedding dimension (Table 5).

pub mod claims;
mod figures;
mod table;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::setup::{
    check_classes_per_batch, finish_run, folds_before_the_key, lenetspp_2d, measure_weights, parse,
    section_with_earlier_folds, short_quick, train_or_diverge, Common, VerificationFolds, VerificationSet, ALL_DIGITS,
    FOLDS, HELD_OUT_DIGITS, TRAIN_DIGITS,
};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep, Weights};
use crate::data::Split;
use crate::losses::{Distance, Mining};
use crate::nn::{HeadKind, Model};
use crate::objectives::TripletSettings;
use crate::results::{Store, STATUS_COLLAPSED};
use crate::train::embed;
use crate::verdict::Section;

pub use claims::dimension_table;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub triplet: TripletSettings,
    pub classes_per_batch: usize,
    /// A run whose mean pairwise squared distance (unit vectors: 2 when spread out) ends
    /// below this has collapsed.
    pub collapse_below: f64,
    /// Held-out test images whose every pair is scored for VAL at FAR (0: all).
    pub val_images: usize,
    /// Same and different pairs in the balanced lists for 10-fold accuracy.
    pub verification_pairs: usize,
    /// How the verification pairs fall into their 10 folds: image-disjoint sets (no image in two
    /// folds); runs recorded before this key used pair blocks ([`Experiment::recorded_defaults`]).
    pub verification_folds: VerificationFolds,
}

pub fn config(profile: Profile) -> Config {
    let smoke = profile == Profile::Smoke;
    let base = short_quick(lenetspp_2d(profile), profile, 200);
    Config {
        common: Common {
            feature_dim: 64,
            batch_size: if smoke { 35 } else { 140 },
            plot_points: 0,
            base_lr: 0.05,
            ..base
        },
        triplet: TripletSettings { margin: 0.2, mining: Mining::SemiHard, distance: Distance::SquaredEuclidean },
        classes_per_batch: 7,
        collapse_below: 0.05,
        val_images: if smoke { 300 } else { 1500 },
        verification_pairs: if smoke { 300 } else { 3000 },
        verification_folds: VerificationFolds::ImageDisjoint,
    }
}

pub struct FaceNet;

impl Experiment for FaceNet {
    fn name(&self) -> &'static str {
        "facenet"
    }

    fn about(&self) -> &'static str {
        "FaceNet: triplet loss with semi-hard vs other mining rules, and the embedding-dimension table"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        let base = config(profile);
        let mining: Vec<Value> = Mining::ALL.iter().map(|m| Value::from(m.name())).collect();
        Ok(vec![
            Sweep::new(&base).axis("mining", &mining).over_seeds(profile),
            Sweep::new(&base).axis("feature_dim", &[8usize, 16, 32, 64, 128]).over_seeds(profile),
        ])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        c.common.check()?;
        c.triplet.check()?;
        check_classes_per_batch(c.classes_per_batch)
    }

    fn recorded_defaults(&self) -> Map<String, Value> {
        folds_before_the_key()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let c = &cfg.common;
        let data = ctx.data.mnist()?;
        let model = c.model(HeadKind::Embedding, ctx)?;
        let train_pool = c.train_pool(&data.train, &TRAIN_DIGITS);
        let mut sampler = c.class_balanced(&data.train, &train_pool, cfg.classes_per_batch)?;
        let mut objective = cfg.triplet.objective();
        let every_pair = every_held_out_pair(&cfg, &data.test);
        let mut hook = |model: &crate::nn::Model, _step: u64| -> Result<Vec<(String, f64)>> {
            let e = embed(model, &data.test, &every_pair.indices, ctx.device)?;
            let d = every_pair.pairs.squared_distances(&e.embedding, e.dim);
            let val = crate::metrics::val_at_far_in(&d, &every_pair.pairs.same, &every_pair.fold, 1e-3, FOLDS).val;
            Ok(vec![("held_out_val_at_far_1e-3".into(), val)])
        };
        let training = train_or_diverge(c, &model, &mut objective, &data.train, sampler.as_mut(), ctx, &mut hook)?;
        let spread: Vec<f64> = training
            .curves()
            .iter()
            .filter_map(|r| r.values.iter().find(|(n, _)| n == "mean_pairwise_distance").map(|v| v.1))
            .collect();
        let final_spread = spread.last().copied().unwrap_or(f64::NAN);
        let min_spread = spread.iter().copied().fold(f64::INFINITY, f64::min);
        let mut outcome = finish_run(&training, |out| {
            evaluate(&cfg, &model, ctx, out)?;
            if final_spread < cfg.collapse_below {
                out.status = STATUS_COLLAPSED.into();
                out.note = format!(
                    "{}: the mean pairwise squared distance of the embeddings fell to {final_spread:.4} (< {}): f(x) \
                     collapsed towards a constant",
                    ctx.run_label, cfg.collapse_below
                );
            }
            Ok(())
        })?;
        outcome.metrics.push(("final_mean_pairwise_distance".into(), final_spread.into()));
        outcome.metrics.push(("min_mean_pairwise_distance".into(), min_spread.into()));
        Ok(outcome)
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let cfg: Config = parse(config)?;
        let model = cfg.common.model(HeadKind::Embedding, ctx)?;
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

/// Every pair of the held-out test images that VAL is measured on, cut into folds as the config says.
fn every_held_out_pair(cfg: &Config, test: &Split) -> VerificationSet {
    VerificationSet::all_pairs(test, &HELD_OUT_DIGITS, cfg.val_images, cfg.verification_folds)
}

/// A trained embedding's measurements: VAL and ROC on every held-out pair, 10-fold accuracy on
/// balanced held-out pairs and on all ten digits, and retrieval.
fn evaluate(cfg: &Config, model: &Model, ctx: &RunContext, out: &mut RunOutcome) -> Result<()> {
    let c = &cfg.common;
    let data = ctx.data.mnist()?;
    let every_pair = every_held_out_pair(cfg, &data.test);
    let balanced_pairs = |digits: &[u8]| {
        VerificationSet::balanced(&data.test, digits, c.test_images, cfg.verification_pairs, cfg.verification_folds)
    };
    let balanced = balanced_pairs(&HELD_OUT_DIGITS);
    let h = embed(model, &data.test, &every_pair.indices, ctx.device)?;
    out.metrics.extend(every_pair.metrics(&h.embedding, h.dim, "held_out"));
    let b = embed(model, &data.test, &balanced.indices, ctx.device)?;
    let accuracy = balanced.metrics(&b.embedding, b.dim, "held_out_balanced");
    out.metrics.extend(accuracy.into_iter().filter(|(n, _)| n.contains("accuracy")));
    let all = balanced_pairs(&ALL_DIGITS);
    let a = embed(model, &data.test, &all.indices, ctx.device)?;
    out.metrics.extend(all.metrics(&a.embedding, a.dim, "all_digits"));
    let r = crate::metrics::retrieval(&h.embedding, h.dim, &h.labels);
    out.metrics.push(("precision_at_1".into(), r.precision_at_1.into()));
    out.metrics.push(("map_at_r".into(), r.map_at_r.into()));
    let d = every_pair.pairs.squared_distances(&h.embedding, h.dim);
    let roc = crate::metrics::roc(&d, &every_pair.pairs.same, 200)
        .iter()
        .map(|&(far, val, t)| {
            vec![("far".into(), far.into()), ("val".into(), val.into()), ("threshold".into(), t.into())]
        })
        .collect();
    out.tables.push(("roc".into(), roc));
    Ok(())
}
