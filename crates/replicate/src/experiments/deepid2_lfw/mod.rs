//! `deepid2-lfw`: DeepID2's λ sweep (Sun et al., NIPS 2014, Sec. 4.1, Fig. 3) on real faces, LFW
//! only. Training minimises Ident + λ·Verif over the training people (softmax plus the contrastive
//! loss on every pair of a batch of `classes_per_batch` people × 2 images); faces are compared
//! by the cosine of flip-averaged features. The sweep runs on View 1 (LFW's development view,
//! where settings are chosen); λ = 0, the best interior λ of View 1 and λ = ∞ then train once per
//! View 2 fold. The claim: verification accuracy is an inverted U over λ.

pub mod claims;
mod figures;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::faces::{
    check_batches, face_defaults, rescore_faces, train_on_faces, view2_splits, FaceHead, FaceSettings, ProtocolSplit,
    Stabilisers,
};
use super::setup::{lambda_values, maybe_infinite, parse, Common};
use super::{Chosen, Experiment, Profile, RunContext, RunOutcome, SelectionRule, Sweep, Weights};
use crate::data::Dataset;
use crate::objectives::VerificationSettings;
use crate::results::{Row, Selections, Store};
use crate::verdict::Section;

/// λ on View 1: 0 (identification only), four decades, ∞ (verification only). The paper's 0.05
/// is relative to its features' scale; ours grow to a norm of ~30 under softmax, so the
/// verification term ½d² matches the softmax loss's size near λ = 1e-3 and dominates by λ = 1.
pub const LAMBDAS: [f64; 6] = [0.0, 1e-3, 1e-2, 0.1, 1.0, f64::INFINITY];

/// People drawn in the PCA figure: the training people with the most images.
pub const PCA_PEOPLE: usize = 6;

/// The selection that carries View 1's best λ to View 2 (and to leaderboard-lfw).
pub const SELECTION: &str = "deepid2-lfw-best-lambda";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub face: FaceSettings,
    /// Weight of the verification signal; "inf" trains on verification alone.
    #[serde(with = "maybe_infinite")]
    pub lambda: f64,
    #[serde(flatten)]
    pub verification: VerificationSettings,
    /// People per batch, each with batch_size / classes_per_batch images.
    pub classes_per_batch: usize,
}

pub fn config(profile: Profile) -> Config {
    let (common, face) = face_defaults(profile);
    let verification = VerificationSettings::adaptive(if profile == Profile::Smoke { 4 } else { 50 });
    let classes_per_batch = if profile == Profile::Smoke { 8 } else { 64 };
    Config { common, face, lambda: 0.0, verification, classes_per_batch }
}

pub struct DeepId2Lfw;

impl Experiment for DeepId2Lfw {
    fn name(&self) -> &'static str {
        "deepid2-lfw"
    }

    fn trainer(&self) -> &'static str {
        super::faces::TRAINER
    }

    fn about(&self) -> &'static str {
        "DeepID2's λ sweep on LFW faces (View 1, seeds), then λ = 0, the best λ and ∞ on View 2's ten folds"
    }

    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Lfw]
    }

    /// View 1: every λ over the profile's seeds. View 2 (once View 1's best λ is recorded): λ = 0,
    /// that λ and ∞, one training per fold (the folds are the replicates: one seed).
    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>> {
        let base = config(profile);
        let view1 = Sweep::new(&base).axis("lambda", &lambda_values(&LAMBDAS)).over_seeds(profile);
        let Some(selection) = Selections::open(results_dir).get(SELECTION, profile.name())? else {
            return Ok(vec![view1]);
        };
        let best = selection.values.get("lambda").cloned().unwrap_or(Value::from(0.0));
        let view2 = Sweep::new(&base)
            .axis("lambda", &[Value::from(0.0), best, Value::from("inf")])
            .axis("split", &view2_splits());
        Ok(vec![view1, view2])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        c.common.check()?;
        c.face.check()?;
        anyhow::ensure!(c.lambda >= 0.0, "lambda must be ≥ 0 or inf, got {}", c.lambda);
        c.verification.check()?;
        check_batches(&c.common, c.classes_per_batch)
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let (trained, objective) =
            train_on_faces(&cfg.common, &cfg.face, FaceHead::Classifier, cfg.classes_per_batch, ctx, |_, _| {
                Ok(cfg.verification.objective(cfg.lambda))
            })?;
        let mut outcome = trained.outcome(&cfg.face, ctx, |out, _| {
            out.tables.push(("pca".into(), pca_rows(&trained.model, trained.lfw, &trained.split, &cfg, ctx)?));
            Ok(())
        })?;
        outcome.metrics.push(("final_margin".into(), objective.margin.into()));
        Ok(outcome)
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let cfg: Config = parse(config)?;
        rescore_faces(
            (&cfg.common, &cfg.face),
            FaceHead::Classifier,
            Stabilisers::default(),
            ctx,
            weights,
            |_, _, _| {},
        )
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?)
    }

    fn selection(&self) -> Option<SelectionRule> {
        Some(SelectionRule { name: SELECTION, from: &["deepid2-lfw"], choose: choose_best_lambda })
    }
}

/// The best interior λ of View 1 by mean test accuracy over seeds.
fn choose_best_lambda(results_dir: &Path) -> Result<Chosen> {
    let runs = Store::new(results_dir, "deepid2-lfw").current_runs()?;
    let view1 = claims::view1_accuracy(&runs)?;
    let Some((lambda, mean)) = view1.best_interior() else {
        anyhow::bail!("deepid2-lfw has no finished View 1 run with 0 < λ < ∞ to choose from")
    };
    let mut values = Map::new();
    values.insert("lambda".into(), Value::from(lambda));
    Ok((values, format!("deepid2-lfw View 1: the interior λ with the best mean test accuracy ({:.2} %)", 100.0 * mean)))
}

/// The first two principal components of the flip-averaged unit features of the [`PCA_PEOPLE`]
/// training people with the most images (up to `plot_points` / [`PCA_PEOPLE`] images each):
/// person, pc0, pc1.
fn pca_rows(
    model: &crate::nn::Model,
    lfw: &crate::data::Lfw,
    split: &ProtocolSplit,
    cfg: &Config,
    ctx: &RunContext,
) -> Result<Vec<Row>> {
    let mut people = split.training_people.clone();
    people.sort_by_key(|&p| (std::cmp::Reverse(lfw.counts[p as usize]), p));
    people.truncate(PCA_PEOPLE);
    let per_person = cfg.common.plot_points / PCA_PEOPLE;
    let images: Vec<usize> = people.iter().flat_map(|&p| lfw.images_of(&[p]).into_iter().take(per_person)).collect();
    let faces = crate::data::FaceImages::new(lfw, cfg.face.window(), &split.training_people, None);
    let dim = cfg.common.feature_dim;
    let features = super::faces::face_features(model, &faces, &images, cfg.face.flip_average, ctx.device)?;
    let unit = crate::metrics::verification::unit_rows(&features, dim);
    let projected = crate::metrics::pca_project(&unit, dim, 2);
    Ok(images
        .iter()
        .zip(projected)
        .map(|(&i, p)| {
            vec![
                ("person".into(), lfw.names[lfw.labels[i] as usize].clone().into()),
                ("pc0".into(), p[0].into()),
                ("pc1".into(), p[1].into()),
            ]
        })
        .collect())
}
