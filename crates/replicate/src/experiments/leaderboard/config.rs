//! The leaderboard's run: one config for every method (each run's identity keeps only its own
//! method's settings), and the model and objective each method trains.

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::selection::DigitSplit;
use super::Method;
use crate::experiments::hypersphere::{MarginLoss, MAX_GRAD_NORM, TOY_SCALE};
use crate::experiments::setup::{lenetspp_2d, short_quick, Common, VerificationFolds, FOLDS_BEFORE_THE_KEY};
use crate::experiments::{center_loss, deepid2, facenet, lsoftmax, Profile, RunContext, Sweep};
use crate::losses::{Distance, Mining};
use crate::nn::{BackboneConfig, Head, HeadKind, Model};
use crate::objectives::{
    AngularMarginLoss, CenterSettings, CenterUpdate, LSoftmaxLoss, LambdaAnnealing, Objective, Softmax,
    SphereAnnealing, TripletSettings, VerificationSettings,
};
use crate::results::Selection;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    pub method: Method,
    /// The board (digits 0-6 → 7-9) or the validation split the settings are chosen on.
    pub split: DigitSplit,
    /// DeepID2's verification weight.
    pub contrastive_lambda: f64,
    /// The center-loss weight.
    pub center_lambda: f64,
    /// Where the settings came from: a description, kept out of the run's identity.
    pub lambda_source: String,
    /// Each method's settings, from its paper's config.
    pub verification: VerificationSettings,
    pub center: CenterSettings,
    pub triplet: TripletSettings,
    pub lsoftmax_annealing: LambdaAnnealing,
    pub lsoftmax_m: usize,
    /// s of NormFace, CosFace and ArcFace.
    pub scale: f64,
    /// CosFace's cosine margin, or ArcFace's angular margin in radians.
    pub additive_margin: f64,
    /// SphereFace's integer margin and its λ schedule.
    pub sphere_m: usize,
    pub sphere_annealing: SphereAnnealing,
    /// The successors' clipping of the gradients' global norm (hypersphere's [`MAX_GRAD_NORM`]).
    pub max_grad_norm: f64,
    pub classes_per_batch: usize,
    pub verification_pairs: usize,
    pub val_images: usize,
    /// How the held-out pairs fall into folds: within disjoint sets of images (runs recorded
    /// before, contiguous blocks of the pair list, are not counted as these).
    pub verification_folds: VerificationFolds,
}

/// The leaderboard's base run on `profile` (the board's split), with the settings of `selection`
/// where it has them and the papers' otherwise.
pub fn config(profile: Profile, selection: Option<&Selection>) -> Config {
    let smoke = profile == Profile::Smoke;
    let base = short_quick(lenetspp_2d(profile), profile, 0);
    let chosen = |key: &str, paper: f64| {
        selection.and_then(|s| s.values.get(key)).and_then(serde_json::Value::as_f64).unwrap_or(paper)
    };
    Config {
        common: Common { feature_dim: 64, batch_size: if smoke { 35 } else { 126 }, plot_points: 0, ..base },
        method: Method::Softmax,
        split: DigitSplit::Test,
        contrastive_lambda: chosen("contrastive_lambda", 0.05),
        center_lambda: chosen("center_lambda", 0.01),
        lambda_source: selection.map_or_else(|| "the papers' (nothing chosen yet)".into(), |s| s.source.clone()),
        verification: deepid2::config(profile).verification,
        center: center_loss::config(profile).center,
        triplet: facenet::config(profile).triplet,
        lsoftmax_annealing: lsoftmax::config(profile).annealing,
        lsoftmax_m: 4,
        scale: TOY_SCALE,
        additive_margin: 0.0,
        sphere_m: chosen("sphere_m", 4.0) as usize,
        sphere_annealing: SphereAnnealing::authors(),
        max_grad_norm: MAX_GRAD_NORM,
        classes_per_batch: 7,
        verification_pairs: if smoke { 300 } else { 3000 },
        val_images: if smoke { 300 } else { 1500 },
        verification_folds: VerificationFolds::ImageDisjoint,
    }
}

/// The keys of each method's own settings; a run's identity keeps only its method's.
const METHOD_KEYS: [(Method, &[&str]); 9] = [
    (Method::Softmax, &[]),
    (Method::Contrastive, &["contrastive_lambda", "verification"]),
    (Method::Triplet, &["triplet"]),
    (Method::Center, &["center_lambda", "center"]),
    (Method::Lsoftmax, &["lsoftmax_annealing", "lsoftmax_m"]),
    (Method::NormFace, &["scale", "max_grad_norm"]),
    (Method::SphereFace, &["sphere_m", "sphere_annealing", "max_grad_norm"]),
    (Method::CosFace, &["scale", "additive_margin", "max_grad_norm"]),
    (Method::ArcFace, &["scale", "additive_margin", "max_grad_norm"]),
];

/// `config` as one method's sweep (`method` an axis of one value, so that labels name it).
pub(super) fn sweep_of(config: &Config, method: Method) -> Sweep {
    Sweep::new(&Config { method, ..config.clone() }).axis("method", &[method.name()])
}

/// A run's identity: its config without the other methods' settings and without the source
/// of its settings (words).
pub(super) fn training_config(config: &Map<String, Value>) -> Map<String, Value> {
    let method = config.get("method").and_then(Value::as_str);
    let own: &[&str] = METHOD_KEYS.iter().find(|(m, _)| Some(m.name()) == method).map_or(&[], |(_, keys)| keys);
    let mut training = config.clone();
    training.remove("lambda_source");
    for key in METHOD_KEYS.iter().flat_map(|(_, keys)| keys.iter()).filter(|k| !own.contains(k)) {
        training.remove(*key);
    }
    training
}

/// The settings the runs recorded before they were config keys were trained with (the
/// leaderboard typed them as constants then).
pub(super) fn recorded_defaults() -> Map<String, Value> {
    let verification = VerificationSettings::adaptive(50);
    let triplet = TripletSettings { margin: 0.2, mining: Mining::SemiHard, distance: Distance::SquaredEuclidean };
    let center = CenterSettings { alpha: 0.5, center_update: CenterUpdate::Paper };
    let value = |v: serde_json::Result<Value>| v.expect("settings serialise");
    [
        ("verification", value(serde_json::to_value(verification))),
        ("triplet", value(serde_json::to_value(triplet))),
        ("center", value(serde_json::to_value(center))),
        ("lsoftmax_annealing", value(serde_json::to_value(LambdaAnnealing::authors()))),
        ("lsoftmax_m", Value::from(4)),
        ("split", value(serde_json::to_value(DigitSplit::Test))),
        ("verification_folds", Value::from(FOLDS_BEFORE_THE_KEY.name())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub(super) fn objective(cfg: &Config, head: &Head, device: &candle_core::Device) -> Result<Box<dyn Objective>> {
    let c = &cfg.common;
    if let Some(loss) = cfg.method.margin_loss() {
        let margin = loss
            .angular_margin(cfg.scale, cfg.additive_margin, false, cfg.sphere_m, &cfg.sphere_annealing)
            .context("a successor has a margin")?;
        let weight = head.weight().context("the cosine head has class weights")?.clone();
        let lambda = (loss == MarginLoss::SphereFace).then(|| cfg.sphere_annealing.schedule(c.iterations));
        return Ok(Box::new(AngularMarginLoss { weight, margin, lambda }));
    }
    Ok(match cfg.method {
        Method::Contrastive => Box::new(cfg.verification.objective(cfg.contrastive_lambda)),
        Method::Triplet => Box::new(cfg.triplet.objective()),
        Method::Center => Box::new(cfg.center.objective(
            cfg.center_lambda,
            cfg.split.train_digits().len(),
            c.feature_dim,
            c.train_config().lr,
            c.momentum,
            device,
        )?),
        Method::Lsoftmax => {
            let Head::LSoftmax(layer) = head else { anyhow::bail!("L-Softmax needs its head") };
            Box::new(LSoftmaxLoss { layer: layer.clone(), schedule: cfg.lsoftmax_annealing.schedule(c.iterations) })
        }
        _ => Box::new(Softmax),
    })
}

/// The model a method trains: the cosine head for the successors, with the feature
/// batch-normalised for those that normalise it (as hypersphere's [`MarginConfig::base`]).
///
/// [`MarginConfig::base`]: super::hypersphere::MarginConfig::base
pub(super) fn model(cfg: &Config, ctx: &RunContext) -> Result<Model> {
    let (c, classes) = (&cfg.common, cfg.split.train_digits().len());
    let head = match cfg.method {
        Method::Triplet => HeadKind::Embedding,
        Method::Lsoftmax => HeadKind::LSoftmax { classes, m: cfg.lsoftmax_m },
        m if m.margin_loss().is_some() => HeadKind::Cosine { classes },
        _ => HeadKind::Linear { classes },
    };
    let feature_batch_norm = matches!(cfg.method, Method::NormFace | Method::CosFace | Method::ArcFace);
    let backbone = BackboneConfig { feature_batch_norm, ..c.backbone() };
    Ok(Model::new(backbone, head, c.seed, c.kernels, ctx.device)?)
}
