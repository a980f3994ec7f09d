//! What the normalised-softmax experiments (`sphereface`, `cosface`, `arcface`) share: LeNets++
//! with a 2-D feature on the first C digits, the cosine head (softmax's linear head for the
//! softmax baseline), one member of the family as the objective, and the measures their
//! figures and claims read (the angular Fisher score, the angle to the class weight, the gaps
//! between rays, whether CosFace's margin is met).

use anyhow::{Context, Result};

use super::seeds::Seeded;
use super::setup::{
    accuracy_hook, classifier_accuracy, feature_rows, finish_run, lenetspp_2d, plot_sample, train_or_diverge_with,
    Common,
};
use super::{Profile, RunContext, RunOutcome};
use crate::losses::AngularMargin;
use crate::nn::{BackboneConfig, HeadKind, Model};
use crate::objectives::{AngularMarginLoss, Objective, Softmax, SphereAnnealing};
use crate::results::{Record, Table};
use crate::train::embed;

/// Which loss a run trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarginLoss {
    /// Plain softmax on a bias-free linear head (CosFace's and ArcFace's baseline).
    Softmax,
    NormFace,
    CosFace,
    ArcFace,
    SphereFace,
}

impl MarginLoss {
    /// The loss's margin from a config's settings: `scale` s (NormFace, CosFace, ArcFace),
    /// `margin` (CosFace's cosine margin or ArcFace's angle), SphereFace's integer `m` with λ at
    /// the start of `annealing`. None for plain softmax.
    pub fn angular_margin(
        self,
        scale: f64,
        margin: f64,
        easy_margin: bool,
        m: usize,
        annealing: &SphereAnnealing,
    ) -> Option<AngularMargin> {
        match self {
            MarginLoss::Softmax => None,
            MarginLoss::NormFace => Some(AngularMargin::NormFace { scale }),
            MarginLoss::CosFace => Some(AngularMargin::CosFace { scale, margin }),
            MarginLoss::ArcFace => Some(AngularMargin::ArcFace { scale, margin, easy_margin }),
            MarginLoss::SphereFace => Some(AngularMargin::SphereFace { m, lambda: annealing.schedule(1).at(0) }),
        }
    }
}

/// A run of the family; configs flatten it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MarginConfig {
    #[serde(flatten)]
    pub common: Common,
    pub loss: MarginLoss,
    /// The first `classes` digits (CosFace's and ArcFace's toys use 8 identities).
    pub classes: usize,
    /// s of NormFace, CosFace and ArcFace.
    pub scale: f64,
    /// CosFace's cosine margin, or ArcFace's angular margin in radians.
    pub margin: f64,
    pub easy_margin: bool,
    /// SphereFace's integer margin.
    pub m: usize,
    #[serde(flatten)]
    pub annealing: SphereAnnealing,
    /// The largest global L2 norm of a step's gradients (0: none), see [`MAX_GRAD_NORM`].
    pub max_grad_norm: f64,
    /// The 2-D feature batch-normalised (insightface's embedding: fc, then BN) instead of through
    /// a PReLU: see [`MarginConfig::base`].
    pub feature_batch_norm: bool,
}

/// s for 2-D features. The papers' s = 64 serves 512-D faces; CosFace's lower bound for 8
/// classes and a target probability of 0.999, (C − 1)/C · ln((C − 1)·P/(1 − P)) = 7.7, is what a
/// 2-D toy needs; 16 is twice that.
pub const TOY_SCALE: f64 = 16.0;

/// The margins the leaderboards choose from, on a split they are not scored on (View 1 on LFW,
/// digits 0-4 → 5-6 on MNIST): CosFace's best (0.35) and 0.2 below it.
pub const COSFACE_MARGINS: [f64; 2] = [0.2, 0.35];

/// ArcFace's margins (radians): the paper's 0.5 and 0.3 below it.
pub const ARCFACE_MARGINS: [f64; 2] = [0.3, 0.5];

/// SphereFace's margins: the paper's 4 and 2.
pub const SPHEREFACE_MARGINS: [usize; 2] = [2, 4];

/// insightface's ArcFace training clips the gradients' global norm at 5. The normalised losses
/// need it here too (with the batch-normalised feature): their gradient into x is proportional
/// to 1/‖x‖, and unclipped first steps throw ‖x‖ from its initial ≈ 0.07 to 10³-10⁶, where the
/// backbone stops learning and the class weights settle on one direction.
pub const MAX_GRAD_NORM: f64 = 5.0;

impl MarginConfig {
    /// LeNets++ with a 2-D feature and the lsoftmax experiment's schedule (caffe-face's solver,
    /// ÷10 at each step on the quick profile), training `loss` on the first `classes` digits.
    /// Losses of the normalised feature (and the softmax they are compared with) get a
    /// batch-normalised feature: LeNets++'s PReLU features start in a narrow cone, on which the
    /// class weights of a cosine loss settle in one direction, where the gradient into the
    /// features vanishes (the loss stays at ln(1 + (C − 1)·e^{sm})); centred by batch norm they
    /// start spread around the origin. SphereFace keeps ‖x‖ in its logits and the PReLU feature.
    pub fn base(profile: Profile, loss: MarginLoss, classes: usize) -> MarginConfig {
        let common = lenetspp_2d(profile);
        let common = if profile == Profile::Quick { Common { lr_gamma: 0.1, ..common } } else { common };
        MarginConfig {
            common,
            loss,
            classes,
            scale: TOY_SCALE,
            margin: 0.0,
            easy_margin: false,
            m: 1,
            annealing: SphereAnnealing::authors(),
            max_grad_norm: MAX_GRAD_NORM,
            feature_batch_norm: loss != MarginLoss::SphereFace,
        }
    }

    /// The margin of the run's objective (None for plain softmax).
    pub fn angular_margin(&self) -> Option<AngularMargin> {
        self.loss.angular_margin(self.scale, self.margin, self.easy_margin, self.m, &self.annealing)
    }

    pub fn check(&self) -> Result<()> {
        self.common.check()?;
        anyhow::ensure!(
            (2..=10).contains(&self.classes),
            "classes must be 2 to 10 (the first digits of MNIST), got {}",
            self.classes
        );
        if let Some(margin) = self.angular_margin() {
            margin.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        crate::experiments::setup::check_max_grad_norm(self.max_grad_norm)?;
        self.annealing.check()
    }

    pub fn digits(&self) -> Vec<u8> {
        (0..self.classes as u8).collect()
    }
}

/// The cosine margin CosFace's claim asks about: the run's own for CosFace, none otherwise.
fn cos_margin(cfg: &MarginConfig) -> Option<f64> {
    (cfg.loss == MarginLoss::CosFace).then_some(cfg.margin)
}

/// Trains and evaluates one run of the family.
pub fn run(ctx: &RunContext, cfg: &MarginConfig) -> Result<RunOutcome> {
    let c = &cfg.common;
    let data = ctx.data.mnist()?;
    let classes = cfg.classes;
    let head = match cfg.loss {
        MarginLoss::Softmax => HeadKind::Linear { classes },
        _ => HeadKind::Cosine { classes },
    };
    let backbone = BackboneConfig { feature_batch_norm: cfg.feature_batch_norm, ..c.backbone() };
    let model = Model::new(backbone, head, c.seed, c.kernels, ctx.device)?;
    let weight = model.head.weight().context("the family's heads have class weights")?.clone();
    let schedule = cfg.annealing.schedule(c.iterations);
    let mut objective: Box<dyn Objective> = match cfg.angular_margin() {
        None => Box::new(Softmax),
        Some(margin) => Box::new(AngularMarginLoss {
            weight: weight.clone(),
            margin,
            lambda: (cfg.loss == MarginLoss::SphereFace).then_some(schedule),
        }),
    };
    let digits = cfg.digits();
    let train_pool = c.train_pool(&data.train, &digits);
    let test_pool = c.test_pool(&data.test, &digits);
    let mut sampler = c.shuffled(train_pool.clone());
    let mut hook = accuracy_hook(data, test_pool.iter().copied().take(1000).collect(), ctx);
    let mut train_config = c.train_config();
    train_config.sgd.max_grad_norm = cfg.max_grad_norm;
    let training = train_or_diverge_with(
        &train_config,
        &model,
        objective.as_mut(),
        &data.train,
        sampler.as_mut(),
        ctx,
        &mut hook,
    )?;
    let curves = training.curves();
    let last = |name: &str| curves.last().and_then(|c| c.values.iter().find(|(n, _)| n == name)).map(|v| v.1);
    let finals: Vec<(String, f64)> = ["loss", "lambda", "target_angle"]
        .iter()
        .filter_map(|name| last(name).map(|v| (format!("final_{name}"), v)))
        .collect();
    let mut outcome = finish_run(&training, |out| {
        let test = embed(&model, &data.test, &test_pool, ctx.device)?;
        let train_sample = plot_sample(&train_pool, c.plot_points, "plot-train");
        let train = embed(&model, &data.train, &train_sample, ctx.device)?;
        let weight: Vec<f32> = weight.flatten_all()?.to_vec1()?;
        let (features, dim, labels) = (&test.features, test.dim, &test.labels);
        let metrics = &mut out.metrics;
        metrics.push(("test_accuracy".into(), classifier_accuracy(&test)?.into()));
        metrics.push(("train_accuracy".into(), classifier_accuracy(&train)?.into()));
        metrics
            .push(("angular_fisher_score".into(), crate::metrics::angular_fisher_score(features, dim, labels).into()));
        let spread = crate::metrics::mean_angle_to_class_weight(features, dim, labels, &weight);
        metrics.push(("mean_angle_to_class_weight".into(), spread.into()));
        metrics.push(("min_class_weight_angle".into(), crate::metrics::min_weight_angle(&weight, dim).into()));
        if let Some(gap) = crate::metrics::min_ray_gap(features, dim, labels, 0.9) {
            metrics.push(("min_ray_gap".into(), gap.into()));
        }
        if let Some(margin) = cos_margin(cfg) {
            let by_class = crate::metrics::margin_met_by_class(features, dim, labels, &weight, margin);
            let worst = by_class.iter().map(|c| c.1).fold(1.0, f64::min);
            let met = by_class.iter().filter(|c| c.1 > 0.5).count();
            metrics.push(("worst_class_margin_met".into(), worst.into()));
            metrics.push(("classes_meeting_margin".into(), (met as u64).into()));
        }
        if c.plot_points > 0 {
            let mut rows = feature_rows("train", &train, &train_sample, c.plot_points);
            rows.extend(feature_rows("test", &test, &test_pool, c.plot_points));
            out.tables.push(("features".into(), rows));
        }
        Ok(())
    })?;
    outcome.metrics.extend(finals.into_iter().map(|(n, v)| (n, v.into())));
    if cfg.loss == MarginLoss::SphereFace {
        outcome.metrics.push(("lambda_gamma".into(), schedule.gamma.into()));
    }
    Ok(outcome)
}

/// The 2-D features of `runs` (title, run) as in the papers' toy figures: training features in
/// the top row, test features in the bottom row, one column per run.
pub fn draw_features(
    store: &crate::results::Store,
    file: &str,
    title: &str,
    runs: &[(String, crate::results::Record)],
) -> Result<Vec<std::path::PathBuf>> {
    use crate::plot::{save, ScatterFigure, ScatterPanel};
    let features = store.load("features")?;
    let mut panels = Vec::new();
    for split in ["train", "test"] {
        for (name, run) in runs {
            let title = match run.f64(&format!("{split}_accuracy"))? {
                Some(a) => format!("{name}, {split} accuracy {}", crate::verdict::fmt_pct(a)),
                None => format!("{name} ({split}): {}", run.status()?),
            };
            let points = super::setup::points_2d(&features, run.run_id()?, split)?;
            panels.push(ScatterPanel { title, points, centers: Vec::new() });
        }
    }
    let classes = runs.iter().filter_map(|(_, r)| r.f64("classes").ok().flatten()).fold(0.0, f64::max) as u8;
    let figure = ScatterFigure {
        title: title.into(),
        panels,
        cols: runs.len().max(1),
        class_names: (0..classes.max(1)).map(|d| d.to_string()).collect(),
    };
    save(&store.dir().join(file), &figure)
}

/// One column of a family experiment's report table: its heading, the metric per setting and
/// seed, and how a value prints.
pub type Column<'a> = (&'a str, super::seeds::Seeded, &'a dyn Fn(f64) -> String);

/// The report table of a family experiment: a row per setting of the first column (named by
/// `name`, with its finished and planned runs), each cell the mean ± sample std over seeds.
pub fn settings_table(first_heading: &str, name: impl Fn(f64) -> String, columns: &[Column]) -> String {
    let mut table = format!("| {first_heading} | runs finished |");
    columns.iter().for_each(|(heading, _, _)| table.push_str(&format!(" {heading} |")));
    table.push_str(&format!("\n|---|---|{}\n", "---|".repeat(columns.len())));
    let Some((_, first, _)) = columns.first() else { return table };
    for setting in &first.settings {
        table.push_str(&format!("| {} | {} of {} |", name(setting.value), setting.seeds.len(), setting.runs));
        for (_, seeded, format) in columns {
            let values: Vec<f64> = seeded.seeds(setting.value).iter().map(|s| s.1).collect();
            let shown = match values.len() {
                0 => "—".into(),
                1 => format(values[0]),
                _ => format!("{} ± {}", format(crate::stats::mean(&values)), format(crate::stats::sample_std(&values))),
            };
            table.push_str(&format!(" {shown} |"));
        }
        table.push('\n');
    }
    table
}

/// How a run's feature and steps differ from plain LeNets++ (see [`MarginConfig::base`]).
pub fn network_note(first: &crate::results::Record) -> Result<String> {
    let clip = first.f64("max_grad_norm")?.unwrap_or(0.0);
    let feature = if matches!(first.cell("feature_batch_norm"), Ok(crate::results::Cell::Bool(true))) {
        "batch-normalised 2-D feature (fc + BN, no PReLU: insightface's embedding)"
    } else {
        "2-D PReLU feature"
    };
    Ok(if clip > 0.0 {
        format!("{feature} and gradients clipped at a global norm of {clip} (as insightface's training)")
    } else {
        feature.to_string()
    })
}

/// A run's place among an experiment's settings (None: not one of them).
pub type SettingOf = fn(&Record) -> Result<Option<f64>>;

/// `metric` of the finished runs per setting, paired by seed; a column no run of the table has
/// (a margin measure of softmax's runs) reads as missing.
pub fn seeded_metric(runs: &Table, setting: SettingOf, metric: &str) -> Result<Seeded> {
    Seeded::collect(runs.records(), setting, |r| Ok(if r.finished()? { r.f64(metric).ok().flatten() } else { None }))
}

/// The run each setting's figure panel shows: its lowest finished seed, settings in order, each
/// named by `name`.
pub fn drawn_runs<'a>(
    runs: &'a Table,
    setting: SettingOf,
    name: fn(f64) -> String,
) -> Result<Vec<(String, Record<'a>)>> {
    let mut out: Vec<(f64, u64, Record)> = Vec::new();
    for r in runs.records() {
        let (Some(s), true) = (setting(&r)?, r.finished()?) else { continue };
        match out.iter_mut().find(|o| o.0 == s) {
            Some(o) if r.seed()? < o.1 => *o = (s, r.seed()?, r),
            Some(_) => {}
            None => out.push((s, r.seed()?, r)),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out.into_iter().map(|(s, _, r)| (name(s), r)).collect())
}
