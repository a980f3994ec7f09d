//! `facenet-lfw`: FaceNet's triplet loss with online mining (Schroff et al., CVPR 2015, Sec. 3.1-3.2)
//! on real faces, LFW only: unit-length embeddings of the face backbone, squared L2 distance,
//! margin α = 0.2, batches of `classes_per_batch` people × 4 images. Each mining rule trains on
//! View 1 over seeds; semi-hard and the best other rule of View 1 then train once per View 2
//! fold. The claims: semi-hard negatives train where the hardest negatives collapse (f(x) → a
//! constant); VAL at FAR = 1e-3 is reported beside accuracy.

pub mod claims;
mod figures;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::faces::{
    check_batches, face_defaults, rescore_faces, train_on_faces, view2_splits, FaceHead, FaceSettings, PairScores,
    ProtocolSplit, Stabilisers,
};
use super::setup::{parse, Common};
use super::{Chosen, Experiment, Profile, RunContext, RunOutcome, SelectionRule, Sweep, Weights};
use crate::data::Dataset;
use crate::losses::{Distance, Mining};
use crate::objectives::TripletSettings;
use crate::results::{Selections, Store, STATUS_COLLAPSED};
use crate::verdict::Section;

const SELECTION: &str = "facenet-lfw-best-other-mining";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub face: FaceSettings,
    #[serde(flatten)]
    pub triplet: TripletSettings,
    /// People per batch, each with batch_size / classes_per_batch images.
    pub classes_per_batch: usize,
    /// A run whose embeddings' mean pairwise squared distance (2 when spread over the sphere)
    /// ends below this has collapsed.
    pub collapse_below: f64,
}

/// The LFW defaults with P × K = 32 × 4 batches, so only people with four or more images train.
pub fn config(profile: Profile) -> Config {
    let (common, face) = face_defaults(profile);
    let smoke = profile == Profile::Smoke;
    Config {
        common,
        face: FaceSettings { min_images: if smoke { face.min_images } else { 4 }, ..face },
        triplet: TripletSettings { margin: 0.2, mining: Mining::SemiHard, distance: Distance::SquaredEuclidean },
        classes_per_batch: if smoke { 4 } else { 32 },
        collapse_below: 0.05,
    }
}

pub struct FaceNetLfw;

impl Experiment for FaceNetLfw {
    fn name(&self) -> &'static str {
        "facenet-lfw"
    }

    fn trainer(&self) -> &'static str {
        super::faces::TRAINER
    }

    fn about(&self) -> &'static str {
        "FaceNet's triplet mining rules on LFW faces (View 1, seeds), then semi-hard and the best other rule on View 2"
    }

    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Lfw]
    }

    /// View 1: every mining rule over the profile's seeds. View 2 (once View 1's best rule other
    /// than semi-hard is recorded): semi-hard and that rule, one training per fold.
    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>> {
        let base = config(profile);
        let rules: Vec<Value> = Mining::ALL.iter().map(|m| Value::from(m.name())).collect();
        let view1 = Sweep::new(&base).axis("mining", &rules).over_seeds(profile);
        let Some(selection) = Selections::open(results_dir).get(SELECTION, profile.name())? else {
            return Ok(vec![view1]);
        };
        let other = selection.values.get("mining").cloned().unwrap_or(Value::from("batch_hard"));
        let view2 = Sweep::new(&base).axis("mining", &[Value::from("semi_hard"), other]).axis("split", &view2_splits());
        Ok(vec![view1, view2])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        c.common.check()?;
        c.face.check()?;
        c.triplet.check()?;
        check_batches(&c.common, c.classes_per_batch)
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let (trained, _) =
            train_on_faces(&cfg.common, &cfg.face, FaceHead::Embedding, cfg.classes_per_batch, ctx, |_, _| {
                Ok(cfg.triplet.objective())
            })?;
        let spread: Vec<f64> = trained
            .training
            .curves()
            .iter()
            .filter_map(|r| r.values.iter().find(|(n, _)| n == "mean_pairwise_distance").map(|v| v.1))
            .collect();
        let final_spread = spread.last().copied().unwrap_or(f64::NAN);
        let mut outcome = trained.outcome(&cfg.face, ctx, |out, scores| {
            measure_val(out, scores, &trained.split);
            if final_spread < cfg.collapse_below {
                out.status = STATUS_COLLAPSED.into();
                out.note = format!(
                    "{}: the embeddings' mean pairwise squared distance fell to {final_spread:.4} (< {}): f(x) collapsed \
                     towards a constant",
                    ctx.run_label, cfg.collapse_below
                );
            }
            Ok(())
        })?;
        outcome.metrics.push(("final_mean_pairwise_distance".into(), final_spread.into()));
        outcome
            .metrics
            .push(("min_mean_pairwise_distance".into(), spread.iter().copied().fold(f64::INFINITY, f64::min).into()));
        Ok(outcome)
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let cfg: Config = parse(config)?;
        rescore_faces((&cfg.common, &cfg.face), FaceHead::Embedding, Stabilisers::default(), ctx, weights, measure_val)
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?)
    }

    fn selection(&self) -> Option<SelectionRule> {
        Some(SelectionRule { name: SELECTION, from: &["facenet-lfw"], choose: choose_best_other })
    }
}

/// View 1's best mining rule other than semi-hard, by mean test accuracy over seeds (a
/// collapsed run counts at chance).
fn choose_best_other(results_dir: &Path) -> Result<Chosen> {
    let runs = Store::new(results_dir, "facenet-lfw").current_runs()?;
    let acc = claims::view1_by_rule(&runs)?;
    let best = Mining::ALL
        .iter()
        .filter(|m| **m != Mining::SemiHard)
        .filter_map(|m| acc.mean(claims::rule_key(*m)).map(|mean| (*m, mean)))
        .fold(
            None,
            |best: Option<(Mining, f64)>, (m, a)| if best.is_none_or(|b| a > b.1) { Some((m, a)) } else { best },
        );
    let Some((rule, mean)) = best else {
        anyhow::bail!("facenet-lfw has no finished View 1 run of a rule other than semi-hard")
    };
    let mut values = Map::new();
    values.insert("mining".into(), Value::from(rule.name()));
    Ok((
        values,
        format!(
            "facenet-lfw View 1: the rule other than semi-hard with the best mean test accuracy ({:.2} %)",
            100.0 * mean
        ),
    ))
}

/// FaceNet's measure: the validation rate at a false accept rate of 1e-3 on the scored pairs.
fn measure_val(out: &mut RunOutcome, scores: &PairScores, split: &ProtocolSplit) {
    let (val, far) = scores.val_at_far(split, 1e-3);
    out.metrics.push(("val_at_far_1e-3".into(), val.into()));
    out.metrics.push(("far_at_the_1e-3_threshold".into(), far.into()));
}
