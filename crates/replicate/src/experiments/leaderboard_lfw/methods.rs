//! The two leaderboard-lfw methods that no other LFW experiment trains, on the face backbone with
//! DeepID2's batches (64 people × 2 images), LFW's protocol and the same budget:
//! * softmax + λ·center loss (Wen et al., ECCV 2016, Sec. 3.2, Eqs. 2-4), a center per training
//!   person, the paper's update with α = 0.5;
//! * L-Softmax (Liu et al., ICML 2016, Sec. 3.2) over the training people, λ annealed by the
//!   authors' schedule with the floor their README advises for hard data sets (λ_min = 5).

use anyhow::Result;

use crate::experiments::faces::{check_batches, train_on_faces, FaceHead, FaceSettings};
use crate::experiments::setup::Common;
use crate::experiments::{center_loss, deepid2_lfw, Profile, RunContext, RunOutcome};
use crate::nn::Head;
use crate::objectives::{CenterSettings, LSoftmaxLoss, LambdaAnnealing};

/// The center-loss weights tried on View 1: three decades around the paper's 0.003 for faces,
/// the grid deepid2-lfw uses for λ (our features reach a norm of ~30, not the paper's scale).
pub const CENTER_LAMBDAS: [f64; 3] = [1e-3, 1e-2, 0.1];

/// L-Softmax's margins tried on View 1: the authors' CIFAR-10 (2) and MNIST (4) settings.
pub const LSOFTMAX_MARGINS: [usize; 2] = [2, 4];

/// The authors' README: λ_min "5-10 for hard" data sets (0 for MNIST and CIFAR-10).
const LSOFTMAX_LAMBDA_MIN: f64 = 5.0;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CenterConfig {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub face: FaceSettings,
    /// The center loss's weight λ.
    pub center_lambda: f64,
    #[serde(flatten)]
    pub center: CenterSettings,
    /// People per batch, each with batch_size / classes_per_batch images.
    pub classes_per_batch: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LsoftmaxConfig {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub face: FaceSettings,
    /// The angular margin m (1 is softmax).
    pub lsoftmax_m: usize,
    #[serde(flatten)]
    pub annealing: LambdaAnnealing,
    /// People per batch, each with batch_size / classes_per_batch images.
    pub classes_per_batch: usize,
}

/// deepid2-lfw's run (backbone, data, batches, budget) with a center loss in place of the
/// verification signal.
pub fn center_config(profile: Profile) -> CenterConfig {
    let base = deepid2_lfw::config(profile);
    CenterConfig {
        common: base.common,
        face: base.face,
        center_lambda: CENTER_LAMBDAS[0],
        center: center_loss::config(profile).center,
        classes_per_batch: base.classes_per_batch,
    }
}

/// deepid2-lfw's run with an L-Softmax head in place of the linear classifier.
pub fn lsoftmax_config(profile: Profile) -> LsoftmaxConfig {
    let base = deepid2_lfw::config(profile);
    LsoftmaxConfig {
        common: base.common,
        face: base.face,
        lsoftmax_m: LSOFTMAX_MARGINS[1],
        annealing: LambdaAnnealing { lambda_min: LSOFTMAX_LAMBDA_MIN, ..LambdaAnnealing::authors() },
        classes_per_batch: base.classes_per_batch,
    }
}

impl CenterConfig {
    pub fn check(&self) -> Result<()> {
        self.common.check()?;
        self.face.check()?;
        self.center.check()?;
        anyhow::ensure!(self.center_lambda >= 0.0, "center_lambda must be ≥ 0, got {}", self.center_lambda);
        check_batches(&self.common, self.classes_per_batch)
    }
}

impl LsoftmaxConfig {
    pub fn check(&self) -> Result<()> {
        self.common.check()?;
        self.face.check()?;
        self.annealing.check()?;
        anyhow::ensure!(
            (1..=4).contains(&self.lsoftmax_m),
            "lsoftmax_m must be 1, 2, 3 or 4 (the authors' SINGLE…QUADRUPLE), got {}",
            self.lsoftmax_m
        );
        check_batches(&self.common, self.classes_per_batch)
    }
}

/// The last logged value of a training curve (NaN when it was never logged).
pub(super) fn last_logged(trained: &crate::experiments::setup::Training, name: &str) -> f64 {
    let curves = trained.curves();
    curves.last().and_then(|c| c.values.iter().find(|(n, _)| n == name)).map_or(f64::NAN, |v| v.1)
}

pub fn run_center(ctx: &RunContext, cfg: &CenterConfig) -> Result<RunOutcome> {
    let c = &cfg.common;
    let (trained, _) = train_on_faces(c, &cfg.face, FaceHead::Classifier, cfg.classes_per_batch, ctx, |_, people| {
        Ok(cfg.center.objective(
            cfg.center_lambda,
            people,
            c.feature_dim,
            c.train_config().lr,
            c.momentum,
            ctx.device,
        )?)
    })?;
    let mut outcome = trained.outcome(&cfg.face, ctx, |_, _| Ok(()))?;
    outcome.metrics.push(("final_center_loss".into(), last_logged(&trained.training, "center_loss").into()));
    outcome.metrics.push(("final_softmax_loss".into(), last_logged(&trained.training, "softmax_loss").into()));
    Ok(outcome)
}

pub fn run_lsoftmax(ctx: &RunContext, cfg: &LsoftmaxConfig) -> Result<RunOutcome> {
    let c = &cfg.common;
    let head = FaceHead::LSoftmax { m: cfg.lsoftmax_m };
    let schedule = cfg.annealing.schedule(c.iterations);
    let (trained, _) = train_on_faces(c, &cfg.face, head, cfg.classes_per_batch, ctx, |model, _| {
        let Head::LSoftmax(layer) = &model.head else { anyhow::bail!("an L-Softmax run needs its head") };
        Ok(LSoftmaxLoss { layer: layer.clone(), schedule })
    })?;
    let mut outcome = trained.outcome(&cfg.face, ctx, |_, _| Ok(()))?;
    outcome.metrics.push(("final_lambda".into(), last_logged(&trained.training, "lambda").into()));
    outcome.metrics.push(("lambda_gamma".into(), schedule.gamma.into()));
    Ok(outcome)
}
