//! `leaderboard-lfw`: every loss on LFW's View 2 with one face backbone, one budget and LFW's
//! protocol, beside raw pixels and uniform LBP (lfw-baselines): softmax, softmax + contrastive
//! (DeepID2), triplet with semi-hard mining (FaceNet), softmax + center loss, L-Softmax, and
//! L-Softmax's successors on normalised class weights: NormFace, SphereFace, CosFace, ArcFace.
//!
//! Settings come from View 1, never from the folds they are scored on: DeepID2's λ from
//! deepid2-lfw's recorded selection, the center-loss λ, L-Softmax's m and the successors'
//! margins from this experiment's own View 1 sweeps (3 seeds), recorded as the selection
//! [`SELECTION`] before any View 2 run of them is planned (a selection recorded before the
//! successors joined has no margins: their View 2 waits until it is chosen again with them).
//! The runs deepid2-lfw and facenet-lfw also plan (softmax is deepid2-lfw's λ = 0, contrastive
//! its best λ, triplet facenet-lfw's semi-hard) have the same trainer and training config, so
//! each trains once and the other experiment copies it.

mod board;
pub mod claims;
mod figures;
pub mod margins;
pub mod methods;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::{Map, Value};

use super::faces::{rescore_faces, view2_splits, FaceHead, FaceSettings, Stabilisers, TRAINER};
use super::hypersphere::{ARCFACE_MARGINS, COSFACE_MARGINS, SPHEREFACE_MARGINS};
use super::leaderboard::Method;
use super::setup::{parse, Common};
use super::Waiting;
use super::{
    deepid2_lfw, facenet_lfw, Chosen, Experiment, Profile, RunContext, RunOutcome, SelectionRule, Sweep, Weights,
};
use crate::data::Dataset;
use crate::results::{Selections, Store};
use crate::verdict::Section;
use margins::{margin_config, MarginFaceConfig};
use methods::{center_config, lsoftmax_config, CenterConfig, LsoftmaxConfig, CENTER_LAMBDAS, LSOFTMAX_MARGINS};

/// The View 1 choices of the center-loss λ, L-Softmax's m and the successors' margins.
pub const SELECTION: &str = "leaderboard-lfw-settings";

/// Each setting chosen on View 1: the method, the config key its sweep varies and the key the
/// selection stores it under. NormFace has nothing to choose.
pub const CHOSEN: [(Method, &str, &str); 5] = [
    (Method::Center, "center_lambda", "center_lambda"),
    (Method::Lsoftmax, "lsoftmax_m", "lsoftmax_m"),
    (Method::SphereFace, "sphere_m", "sphereface_m"),
    (Method::CosFace, "additive_margin", "cosface_margin"),
    (Method::ArcFace, "additive_margin", "arcface_margin"),
];

/// A run's config: the method's own config, named by `method` (which names the run and picks
/// what trains it, but is not part of its training: [`Experiment::training_config`] drops it).
#[derive(serde::Serialize)]
struct Named<'a, T: serde::Serialize> {
    method: &'a str,
    #[serde(flatten)]
    config: &'a T,
}

/// `config` as one method's sweep: `method` an axis of one value, so that labels name it.
fn sweep_of<T: serde::Serialize>(method: Method, config: &T) -> Sweep {
    Sweep::new(&Named { method: method.name(), config }).axis("method", &[method.name()])
}

fn method_of(config: &Map<String, Value>) -> Result<Method> {
    let name = config.get("method").and_then(Value::as_str).context("a leaderboard-lfw run names its method")?;
    Method::ALL.into_iter().find(|m| m.name() == name).with_context(|| {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        format!("unknown method {name:?}; valid methods: {}", names.join(", "))
    })
}

fn without_method(config: &Map<String, Value>) -> Map<String, Value> {
    let mut training = config.clone();
    training.remove("method");
    training
}

pub struct LeaderboardLfw;

impl Experiment for LeaderboardLfw {
    fn name(&self) -> &'static str {
        "leaderboard-lfw"
    }

    fn trainer(&self) -> &'static str {
        TRAINER
    }

    fn about(&self) -> &'static str {
        "every loss on LFW View 2, L-Softmax's successors among them (one face backbone and budget, settings from View 1), beside pixels and LBP"
    }

    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Lfw]
    }

    /// View 1: the center-loss λ and L-Softmax's m over the profile's seeds. View 2 (once those
    /// choices are recorded, and deepid2-lfw's λ): the five methods, one training per fold.
    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Result<Vec<Sweep>> {
        let center = center_config(profile);
        let lsoftmax = lsoftmax_config(profile);
        let margin = |m: Method| margin_config(profile, m);
        let view1 = vec![
            sweep_of(Method::Center, &center).axis("center_lambda", &CENTER_LAMBDAS).over_seeds(profile),
            sweep_of(Method::Lsoftmax, &lsoftmax).axis("lsoftmax_m", &LSOFTMAX_MARGINS).over_seeds(profile),
            sweep_of(Method::SphereFace, &margin(Method::SphereFace)?)
                .axis("sphere_m", &SPHEREFACE_MARGINS)
                .over_seeds(profile),
            sweep_of(Method::CosFace, &margin(Method::CosFace)?)
                .axis("additive_margin", &COSFACE_MARGINS)
                .over_seeds(profile),
            sweep_of(Method::ArcFace, &margin(Method::ArcFace)?)
                .axis("additive_margin", &ARCFACE_MARGINS)
                .over_seeds(profile),
        ];
        let selections = Selections::open(results_dir);
        let Some(own) = selections.get(SELECTION, profile.name())? else { return Ok(view1) };
        let Some(deepid2) = selections.get(deepid2_lfw::SELECTION, profile.name())? else {
            let waiting = Waiting {
                experiment: "leaderboard-lfw",
                selection: deepid2_lfw::SELECTION,
                profile: profile.name(),
                from: "deepid2-lfw".into(),
            };
            return Err(waiting.into());
        };
        let number = |selection: &crate::results::Selection, key: &str| {
            selection.values.get(key).and_then(Value::as_f64).with_context(|| {
                format!("the selection {:?} ({} profile) has no number {key:?}", selection.name, selection.profile)
            })
        };
        let softmax = deepid2_lfw::Config { lambda: 0.0, ..deepid2_lfw::config(profile) };
        let contrastive = deepid2_lfw::Config { lambda: number(&deepid2, "lambda")?, ..softmax.clone() };
        let center = CenterConfig { center_lambda: number(&own, "center_lambda")?, ..center };
        let lsoftmax = LsoftmaxConfig { lsoftmax_m: number(&own, "lsoftmax_m")? as usize, ..lsoftmax };
        let mut view2 = vec![
            sweep_of(Method::Softmax, &softmax),
            sweep_of(Method::Contrastive, &contrastive),
            sweep_of(Method::Triplet, &facenet_lfw::config(profile)),
            sweep_of(Method::Center, &center),
            sweep_of(Method::Lsoftmax, &lsoftmax),
        ];
        if own.values.contains_key("cosface_margin") {
            let normface = margin(Method::NormFace)?;
            let sphereface =
                MarginFaceConfig { sphere_m: number(&own, "sphereface_m")? as usize, ..margin(Method::SphereFace)? };
            let cosface =
                MarginFaceConfig { additive_margin: number(&own, "cosface_margin")?, ..margin(Method::CosFace)? };
            let arcface =
                MarginFaceConfig { additive_margin: number(&own, "arcface_margin")?, ..margin(Method::ArcFace)? };
            view2.extend([
                sweep_of(Method::NormFace, &normface),
                sweep_of(Method::SphereFace, &sphereface),
                sweep_of(Method::CosFace, &cosface),
                sweep_of(Method::ArcFace, &arcface),
            ]);
        }
        Ok(view1.into_iter().chain(view2.into_iter().map(|s| s.axis("split", &view2_splits()))).collect())
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let training = without_method(config);
        match method_of(config)? {
            Method::Softmax | Method::Contrastive => deepid2_lfw::DeepId2Lfw.check(&training),
            Method::Triplet => facenet_lfw::FaceNetLfw.check(&training),
            Method::Center => parse::<CenterConfig>(&training)?.check(),
            Method::Lsoftmax => parse::<LsoftmaxConfig>(&training)?.check(),
            Method::NormFace | Method::SphereFace | Method::CosFace | Method::ArcFace => {
                parse::<MarginFaceConfig>(&training)?.check()
            }
        }
    }

    fn training_config(&self, config: &Map<String, Value>) -> Map<String, Value> {
        without_method(config)
    }

    /// Each method trains as the experiment it shares runs with does (deepid2-lfw, facenet-lfw),
    /// or as [`methods`] says.
    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let training = without_method(config);
        match method_of(config)? {
            Method::Softmax | Method::Contrastive => deepid2_lfw::DeepId2Lfw.run(ctx, &training),
            Method::Triplet => facenet_lfw::FaceNetLfw.run(ctx, &training),
            Method::Center => methods::run_center(ctx, &parse(&training)?),
            Method::Lsoftmax => methods::run_lsoftmax(ctx, &parse(&training)?),
            Method::NormFace | Method::SphereFace | Method::CosFace | Method::ArcFace => {
                margins::run_margin(ctx, &parse(&training)?)
            }
        }
    }

    fn rescore(&self, ctx: &RunContext, config: &Map<String, Value>, weights: &Weights) -> Result<Option<RunOutcome>> {
        let training = without_method(config);
        let rescore = |face: (&Common, &FaceSettings), head, stabilisers| {
            rescore_faces(face, head, stabilisers, ctx, weights, |_, _, _| {})
        };
        match method_of(config)? {
            Method::Softmax | Method::Contrastive => deepid2_lfw::DeepId2Lfw.rescore(ctx, &training, weights),
            Method::Triplet => facenet_lfw::FaceNetLfw.rescore(ctx, &training, weights),
            Method::Center => {
                let c: CenterConfig = parse(&training)?;
                rescore((&c.common, &c.face), FaceHead::Classifier, Stabilisers::default())
            }
            Method::Lsoftmax => {
                let c: LsoftmaxConfig = parse(&training)?;
                rescore((&c.common, &c.face), FaceHead::LSoftmax { m: c.lsoftmax_m }, Stabilisers::default())
            }
            Method::NormFace | Method::SphereFace | Method::CosFace | Method::ArcFace => {
                let c: MarginFaceConfig = parse(&training)?;
                rescore((&c.common, &c.face), FaceHead::Cosine, c.stabilisers())
            }
        }
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        let runs = store.current_runs()?;
        let mut section = claims::section(&runs, &claims::baselines(store)?)?;
        if let Some(section) = &mut section {
            section.body.push_str(&board::learnt_nothing(&runs, &store.load("curves")?)?);
        }
        Ok(section)
    }

    fn selection(&self) -> Option<SelectionRule> {
        Some(SelectionRule { name: SELECTION, from: &["leaderboard-lfw"], choose: choose_settings })
    }
}

/// The values View 1 sweeps for a method's setting in [`CHOSEN`], as its sweep writes them.
fn view1_values(method: Method) -> Vec<Value> {
    fn json<T: serde::Serialize>(values: &[T]) -> Vec<Value> {
        values.iter().map(|v| serde_json::to_value(v).expect("numbers serialise")).collect()
    }
    match method {
        Method::Center => json(&CENTER_LAMBDAS),
        Method::Lsoftmax => json(&LSOFTMAX_MARGINS),
        Method::SphereFace => json(&SPHEREFACE_MARGINS),
        Method::CosFace => json(&COSFACE_MARGINS),
        Method::ArcFace => json(&ARCFACE_MARGINS),
        _ => Vec::new(),
    }
}

/// Each setting of [`CHOSEN`] that View 1 swept: the value with the best mean test accuracy
/// over seeds (a diverged run counts at chance).
fn choose_settings(results_dir: &Path) -> Result<Chosen> {
    let runs = Store::new(results_dir, "leaderboard-lfw").current_runs()?;
    let mut values = Map::new();
    let mut words = Vec::new();
    for (method, key, chosen) in CHOSEN {
        let view1 = claims::view1_of(&runs, method, key)?;
        let Some((value, mean)) = view1.best_where(|_| true) else {
            anyhow::bail!("leaderboard-lfw has no View 1 run of {} to choose {key} from", method.name())
        };
        // The value as View 1's sweep wrote it (an integer stays one).
        let value = view1_values(method).into_iter().find(|v| v.as_f64() == Some(value)).unwrap_or(Value::from(value));
        words.push(format!("{chosen} = {value} ({:.2} %)", 100.0 * mean));
        values.insert(chosen.into(), value);
    }
    Ok((values, format!("leaderboard-lfw View 1, the best mean test accuracy over seeds: {}", words.join(", "))))
}
