//! `leaderboard`: every loss on the same network, data, batches and budget, measured the same
//! way — the comparison the four papers make only in words. LeNets++ with a 64-D feature, digits
//! 0-6 for training and the unseen 7-9 for verification and retrieval, 7 digits × 18 images per
//! batch for every method, three seeds. Each method's settings come from its paper's own config
//! (`<paper>::config`), and DeepID2's and center loss's λ are the best of their own sweeps (read
//! from their results when they exist; the papers' values otherwise).

pub mod claims;
mod figures;
mod selection;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::setup::{
    check_classes_per_batch, compactness_metrics, finish_run, lenetspp_2d, parse, plot_sample, short_quick,
    train_or_diverge, Common, VerificationSet, HELD_OUT_DIGITS, TRAIN_DIGITS,
};
use super::{
    center_loss, deepid2, facenet, lsoftmax, Experiment, Profile, RunContext, RunOutcome, SelectionRule, Sweep, Waiting,
};
use crate::losses::{Distance, Mining};
use crate::nn::{Head, HeadKind};
use crate::objectives::{
    CenterSettings, CenterUpdate, LSoftmaxLoss, LambdaAnnealing, Objective, Softmax, TripletSettings,
    VerificationSettings,
};
use crate::results::{Selection, Selections, Store};
use crate::train::embed;
use crate::verdict::Section;

pub use claims::{aggregate, Method};
use selection::choose_lambdas;
pub use selection::LAMBDA_SELECTION;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    pub method: Method,
    /// DeepID2's verification weight (the best of its sweep).
    pub contrastive_lambda: f64,
    /// The center-loss weight (the best of its sweep).
    pub center_lambda: f64,
    /// Where the two λ came from: a description, kept out of the run's identity.
    pub lambda_source: String,
    /// Each method's settings, from its paper's config.
    pub verification: VerificationSettings,
    pub center: CenterSettings,
    pub triplet: TripletSettings,
    pub lsoftmax_annealing: LambdaAnnealing,
    pub lsoftmax_m: usize,
    pub classes_per_batch: usize,
    pub verification_pairs: usize,
    pub val_images: usize,
}

/// The leaderboard's base run on `profile`, with the λ of `selection`.
pub fn config(profile: Profile, selection: &Selection) -> Result<Config> {
    let smoke = profile == Profile::Smoke;
    let base = short_quick(lenetspp_2d(profile), profile, 0);
    let lambda = |key: &str| {
        selection.values.get(key).and_then(Value::as_f64).with_context(|| {
            format!("the selection {:?} ({} profile) has no number {key:?}", selection.name, selection.profile)
        })
    };
    Ok(Config {
        common: Common { feature_dim: 64, batch_size: if smoke { 35 } else { 126 }, plot_points: 0, ..base },
        method: Method::Softmax,
        contrastive_lambda: lambda("contrastive_lambda")?,
        center_lambda: lambda("center_lambda")?,
        lambda_source: selection.source.clone(),
        verification: deepid2::config(profile).verification,
        center: center_loss::config(profile).center,
        triplet: facenet::config(profile).triplet,
        lsoftmax_annealing: lsoftmax::config(profile).annealing,
        lsoftmax_m: 4,
        classes_per_batch: 7,
        verification_pairs: if smoke { 300 } else { 3000 },
        val_images: if smoke { 300 } else { 1500 },
    })
}

/// The keys of each method's own settings; a run's identity keeps only its method's.
const METHOD_KEYS: [(Method, &[&str]); 5] = [
    (Method::Softmax, &[]),
    (Method::Contrastive, &["contrastive_lambda", "verification"]),
    (Method::Triplet, &["triplet"]),
    (Method::Center, &["center_lambda", "center"]),
    (Method::Lsoftmax, &["lsoftmax_annealing", "lsoftmax_m"]),
];

pub struct Leaderboard;

impl Leaderboard {
    fn objective(cfg: &Config, head: &Head, device: &candle_core::Device) -> Result<Box<dyn Objective>> {
        let c = &cfg.common;
        Ok(match cfg.method {
            Method::Softmax => Box::new(Softmax),
            Method::Contrastive => Box::new(cfg.verification.objective(cfg.contrastive_lambda)),
            Method::Triplet => Box::new(cfg.triplet.objective()),
            Method::Center => Box::new(cfg.center.objective(
                cfg.center_lambda,
                TRAIN_DIGITS.len(),
                c.feature_dim,
                c.train_config().lr,
                c.momentum,
                device,
            )?),
            Method::Lsoftmax => {
                let Head::LSoftmax(layer) = head else { anyhow::bail!("L-Softmax needs its head") };
                Box::new(LSoftmaxLoss { layer: layer.clone(), schedule: cfg.lsoftmax_annealing.schedule(c.iterations) })
            }
            Method::NormFace | Method::SphereFace | Method::CosFace | Method::ArcFace => {
                anyhow::bail!("{} is on the LFW leaderboard only (leaderboard-lfw)", cfg.method.name())
            }
        })
    }
}

impl Experiment for Leaderboard {
    fn name(&self) -> &'static str {
        "leaderboard"
    }

    fn about(&self) -> &'static str {
        "every loss on the same 64-D LeNets++, data and budget, over 3 seeds"
    }

    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>> {
        let Some(selection) = Selections::open(results_dir).get(LAMBDA_SELECTION, profile.name())? else {
            let waiting = Waiting {
                experiment: "leaderboard",
                selection: LAMBDA_SELECTION,
                profile: profile.name(),
                from: "deepid2 and center-loss".into(),
            };
            return Err(waiting.into());
        };
        let methods: Vec<Value> = Method::CLASSIC.iter().map(|m| Value::from(m.name())).collect();
        Ok(vec![Sweep::new(&config(profile, &selection)?).axis("method", &methods).axis("seed", &[1u64, 2, 3])])
    }

    fn selection(&self) -> Option<SelectionRule> {
        Some(SelectionRule { name: LAMBDA_SELECTION, from: &["deepid2", "center-loss"], choose: choose_lambdas })
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        anyhow::ensure!(
            Method::CLASSIC.contains(&c.method),
            "method {:?} is on the LFW leaderboard only (leaderboard-lfw); this leaderboard trains {}",
            c.method.name(),
            Method::CLASSIC.map(|m| m.name()).join(", ")
        );
        c.common.check()?;
        c.verification.check()?;
        c.center.check()?;
        c.triplet.check()?;
        c.lsoftmax_annealing.check()?;
        anyhow::ensure!((1..=4).contains(&c.lsoftmax_m), "lsoftmax_m must be 1, 2, 3 or 4, got {}", c.lsoftmax_m);
        check_classes_per_batch(c.classes_per_batch)
    }

    fn training_config(&self, config: &Map<String, Value>) -> Map<String, Value> {
        let method = config.get("method").and_then(Value::as_str);
        let mut training = config.clone();
        training.remove("lambda_source");
        for (m, keys) in METHOD_KEYS {
            if Some(m.name()) != method {
                for key in keys {
                    training.remove(*key);
                }
            }
        }
        training
    }

    /// The settings the runs recorded before they were config keys were trained with (the
    /// leaderboard typed them as constants then).
    fn recorded_defaults(&self) -> Map<String, Value> {
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
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let c = &cfg.common;
        let data = ctx.data.mnist()?;
        let classes = TRAIN_DIGITS.len();
        let head = match cfg.method {
            Method::Triplet => HeadKind::Embedding,
            Method::Lsoftmax => HeadKind::LSoftmax { classes, m: cfg.lsoftmax_m },
            _ => HeadKind::Linear { classes },
        };
        let model = c.model(head, ctx)?;
        let mut objective = Self::objective(&cfg, &model.head, ctx.device)?;
        let train_pool = c.train_pool(&data.train, &TRAIN_DIGITS);
        let mut sampler = c.class_balanced(&data.train, &train_pool, cfg.classes_per_batch)?;
        let mut no_evaluation = |_: &crate::nn::Model, _| Ok(Vec::new());
        let training =
            train_or_diverge(c, &model, objective.as_mut(), &data.train, sampler.as_mut(), ctx, &mut no_evaluation)?;
        finish_run(&training, |out| {
            // Identification on test digits 0-6: the classifier, or for the triplet embedding the
            // nearest class mean of training embeddings.
            let seen = embed(&model, &data.test, &c.test_pool(&data.test, &TRAIN_DIGITS), ctx.device)?;
            let predictions = match seen.predictions() {
                Some(p) => p,
                None => {
                    let sample = plot_sample(&train_pool, 5000, "leaderboard-means");
                    let t = embed(&model, &data.train, &sample, ctx.device)?;
                    let (means, _) = crate::metrics::class_means(&t.embedding, t.dim, &t.labels, classes);
                    let means: Vec<f32> = means.iter().map(|&v| v as f32).collect();
                    crate::metrics::nearest_center(&seen.embedding, seen.dim, &means)
                }
            };
            out.metrics
                .push(("identification_accuracy".into(), crate::metrics::accuracy(&predictions, &seen.labels).into()));
            out.metrics.extend(compactness_metrics(&seen));
            // Verification and retrieval compare directions (cosine), the usual score for
            // softmax-trained face features and what FaceNet's unit embedding does by construction:
            // raw L2 would penalise losses whose feature norms carry confidence, not identity
            // (L-Softmax's). Raw L2 is kept under `held_out_l2_*`.
            let keep = |metrics: Vec<(String, crate::results::Cell)>, part: &str| {
                metrics.into_iter().filter(|(n, _)| n.contains(part)).collect::<Vec<_>>()
            };
            let balanced =
                VerificationSet::balanced(&data.test, &HELD_OUT_DIGITS, c.test_images, cfg.verification_pairs);
            let b = embed(&model, &data.test, &balanced.indices, ctx.device)?;
            let b_unit = crate::metrics::unit_rows(&b.embedding, b.dim);
            out.metrics.extend(keep(balanced.metrics(&b_unit, b.dim, "held_out_balanced"), "accuracy"));
            out.metrics.extend(keep(balanced.metrics(&b.embedding, b.dim, "held_out_l2_balanced"), "accuracy"));
            let every_pair = VerificationSet::all_pairs(&data.test, &HELD_OUT_DIGITS, cfg.val_images);
            let h = embed(&model, &data.test, &every_pair.indices, ctx.device)?;
            let h_unit = crate::metrics::unit_rows(&h.embedding, h.dim);
            out.metrics.extend(keep(every_pair.metrics(&h_unit, h.dim, "held_out"), "val_at_far"));
            out.metrics.extend(keep(every_pair.metrics(&h.embedding, h.dim, "held_out_l2"), "val_at_far"));
            let r = crate::metrics::retrieval(&h_unit, h.dim, &h.labels);
            out.metrics.push(("precision_at_1".into(), r.precision_at_1.into()));
            out.metrics.push(("map_at_r".into(), r.map_at_r.into()));
            Ok(())
        })
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?)
    }
}
