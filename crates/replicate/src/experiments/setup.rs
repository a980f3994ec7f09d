//! What every experiment shares, so that no paper module imports another: the backbone and
//! training settings (and the caffe-face solver most papers start from), the digit sets, building
//! the model and sampler, training with divergence recorded, the rows a run writes, and reading
//! the recorded runs back for figures and claims.

use anyhow::{Context, Result};
use rand::seq::SliceRandom;

use crate::data::{BatchSampler, ClassBalancedBatches, Images, Mnist, ShuffledBatches, Split};
use crate::nn::{BackboneConfig, HeadKind, Kernels, Model};
use crate::objectives::Objective;
use crate::optim::{MultiStep, SgdConfig};
use crate::results::{Cell, Record, Row, Table, STATUS_DIVERGED, STATUS_FINISHED};
use crate::train::{embed, train, CurveRow, Diverged, Embedded, EvalHook, Feed, Tracking, TrainConfig};
use crate::util::rng_for;

use super::{Profile, RunContext, RunOutcome};

/// Every MNIST digit: the classes of the softmax papers' 2-D experiments.
pub const ALL_DIGITS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Settings every experiment has; experiments flatten this into their own config.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Common {
    pub seed: u64,
    /// Channel multiplier of LeNets++ (1.0 = the paper's 32/64/128).
    pub width: f64,
    pub feature_dim: usize,
    /// Images per batch (for P×K batches: classes_per_batch × per_class when those are set).
    pub batch_size: usize,
    pub iterations: u64,
    pub base_lr: f64,
    pub lr_gamma: f64,
    pub lr_milestones: Vec<u64>,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Training images drawn from the 60,000 (0 = all): small only for smoke runs.
    pub train_images: usize,
    /// Test images used for the final metrics (0 = all 10,000).
    pub test_images: usize,
    /// Samples per split stored in features.parquet for the figures.
    pub plot_points: usize,
    pub log_every: u64,
    pub eval_every: u64,
    pub kernels: Kernels,
}

impl Common {
    /// The ranges every run must respect, checked before any training.
    pub fn check(&self) -> Result<()> {
        anyhow::ensure!(self.batch_size >= 1, "batch_size must be at least 1, got 0");
        anyhow::ensure!(self.iterations >= 1, "iterations must be at least 1, got 0 (a run must train)");
        anyhow::ensure!(
            self.width > 0.0 && self.width.is_finite(),
            "width must be a positive number, got {}",
            self.width
        );
        anyhow::ensure!(self.feature_dim >= 1, "feature_dim must be at least 1, got 0");
        anyhow::ensure!(self.base_lr > 0.0, "base_lr must be > 0, got {}", self.base_lr);
        anyhow::ensure!(self.lr_gamma > 0.0, "lr_gamma must be > 0, got {}", self.lr_gamma);
        anyhow::ensure!((0.0..1.0).contains(&self.momentum), "momentum must lie in [0, 1), got {}", self.momentum);
        anyhow::ensure!(self.weight_decay >= 0.0, "weight_decay must be ≥ 0, got {}", self.weight_decay);
        anyhow::ensure!(self.log_every >= 1, "log_every must be at least 1, got 0");
        anyhow::ensure!(
            self.lr_milestones.windows(2).all(|w| w[0] < w[1]),
            "lr_milestones must rise, got {:?}",
            self.lr_milestones
        );
        Ok(())
    }

    pub fn backbone(&self) -> BackboneConfig {
        BackboneConfig::lenetspp(self.width, self.feature_dim)
    }

    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            iterations: self.iterations,
            lr: MultiStep { base: self.base_lr, gamma: self.lr_gamma, milestones: self.lr_milestones.clone() },
            sgd: SgdConfig { momentum: self.momentum, weight_decay: self.weight_decay, max_grad_norm: 0.0 },
            log_every: self.log_every,
            eval_every: self.eval_every,
        }
    }

    pub fn model(&self, head: HeadKind, ctx: &RunContext) -> Result<Model> {
        Ok(Model::new(self.backbone(), head, self.seed, self.kernels, ctx.device)?)
    }

    /// Indices of the training images of `classes` (all 60,000, or a seeded subset of `train_images`).
    pub fn train_pool(&self, split: &Split, classes: &[u8]) -> Vec<usize> {
        let mut pool = split.indices_of(classes);
        if self.train_images > 0 && self.train_images < pool.len() {
            pool.shuffle(&mut rng_for(self.seed, "train-subset"));
            pool.truncate(self.train_images);
            pool.sort_unstable();
        }
        pool
    }

    /// The first `test_images` test images of `classes` (a fixed prefix: the same for every run).
    pub fn test_pool(&self, split: &Split, classes: &[u8]) -> Vec<usize> {
        let mut pool = split.indices_of(classes);
        if self.test_images > 0 {
            pool.truncate(self.test_images);
        }
        pool
    }

    pub fn shuffled(&self, pool: Vec<usize>) -> Box<dyn BatchSampler> {
        Box::new(ShuffledBatches::new(pool, self.batch_size, rng_for(self.seed, "batches")))
    }

    pub fn class_balanced(
        &self,
        split: &Split,
        pool: &[usize],
        classes_per_batch: usize,
    ) -> Result<Box<dyn BatchSampler>> {
        let labels: Vec<u32> = pool.iter().map(|&i| split.labels[i] as u32).collect();
        let per_class = (self.batch_size / classes_per_batch.max(1)).max(2);
        Ok(Box::new(
            ClassBalancedBatches::new(pool, &labels, classes_per_batch, per_class, rng_for(self.seed, "batches"))
                .map_err(anyhow::Error::msg)?,
        ))
    }
}

/// The caffe-face MNIST solver (PAPERS.md §3.3) on LeNets++ with a 2-D feature: batch 128, lr
/// 0.01, momentum 0.9, weight decay 5e-4, lr × 0.8 at 5k and 8k, 10k iterations; sized down by
/// the profile. Every paper's config starts from it.
pub fn lenetspp_2d(profile: Profile) -> Common {
    let paper = Common {
        seed: 1,
        width: 1.0,
        feature_dim: 2,
        batch_size: 128,
        iterations: 10_000,
        base_lr: 0.01,
        lr_gamma: 0.8,
        lr_milestones: vec![5_000, 8_000],
        momentum: 0.9,
        weight_decay: 5e-4,
        train_images: 0,
        test_images: 0,
        plot_points: 5_000,
        log_every: 100,
        eval_every: 1_000,
        kernels: crate::nn::Kernels::Fast,
    };
    match profile {
        Profile::Paper => paper,
        Profile::Quick => Common {
            width: 0.5,
            iterations: 1_500,
            lr_milestones: vec![1_000, 1_300],
            plot_points: 3_000,
            log_every: 50,
            eval_every: 250,
            ..paper
        },
        Profile::Smoke => Common {
            width: 0.25,
            batch_size: 32,
            iterations: 30,
            lr_milestones: vec![20],
            train_images: 2_000,
            test_images: 500,
            plot_points: 300,
            log_every: 10,
            eval_every: 0,
            ..paper
        },
    }
}

/// The seeds every setting is trained with: three wherever a claim is decided (a 95 % t interval
/// needs at least two, a verdict three), one in the smoke profile, which only checks that every
/// stage runs.
pub fn seeds(profile: Profile) -> &'static [u64] {
    match profile {
        Profile::Smoke => &[1],
        Profile::Quick | Profile::Paper => &[1, 2, 3],
    }
}

/// The quick profile's shorter schedule for the higher-dimensional embeddings (they learn faster
/// than the 2-D ones): 600 iterations with steps at 400 and 520; other profiles unchanged.
pub fn short_quick(common: Common, profile: Profile, eval_every: u64) -> Common {
    match profile {
        Profile::Quick => Common { iterations: 600, lr_milestones: vec![400, 520], eval_every, ..common },
        _ => common,
    }
}

/// A run's config map as an experiment's typed config; a bad value names the valid ones.
pub fn parse<T: serde::de::DeserializeOwned>(config: &serde_json::Map<String, serde_json::Value>) -> Result<T> {
    Ok(serde_json::from_value(serde_json::Value::Object(config.clone()))?)
}

/// What an experiment's [`super::Experiment::rescore`] returns: `model` given the recorded
/// `weights`, then measured by `evaluate` as a run of it is at its end.
pub fn measure_weights(
    model: &crate::nn::Model,
    weights: &super::Weights,
    evaluate: impl FnOnce(&crate::nn::Model, &mut RunOutcome) -> Result<()>,
) -> Result<Option<RunOutcome>> {
    model.set_weights(weights)?;
    let mut out = RunOutcome::unmeasured();
    evaluate(model, &mut out)?;
    Ok(Some(out))
}

/// Gradient clipping's threshold: a norm, or 0 for none.
pub fn check_max_grad_norm(max_grad_norm: f64) -> Result<()> {
    anyhow::ensure!(max_grad_norm >= 0.0, "max_grad_norm must be ≥ 0 (0: no clipping), got {max_grad_norm}");
    Ok(())
}

/// P × K batches need 2..=7 of the training digits.
pub fn check_classes_per_batch(n: usize) -> Result<()> {
    anyhow::ensure!(
        (2..=TRAIN_DIGITS.len()).contains(&n),
        "classes_per_batch must be 2..={} (the training digits), got {n}",
        TRAIN_DIGITS.len()
    );
    Ok(())
}

/// How a training run ended.
pub enum Training {
    /// `weights`: the model's parameters at the end, kept beside the results (see
    /// [`crate::results::Store::write_weights`]) so that runs can be scored again.
    Finished {
        curves: Vec<CurveRow>,
        seconds: f64,
        images_per_second: f64,
        weights: Vec<(String, candle_core::Tensor)>,
    },
    Diverged {
        curves: Vec<CurveRow>,
        note: String,
    },
}

impl Training {
    pub fn curves(&self) -> &[CurveRow] {
        match self {
            Training::Finished { curves, .. } | Training::Diverged { curves, .. } => curves,
        }
    }
}

/// Trains, turning a divergence into a recorded outcome rather than an error.
pub fn train_or_diverge(
    common: &Common,
    model: &Model,
    objective: &mut dyn Objective,
    images: &dyn Images,
    sampler: &mut dyn BatchSampler,
    ctx: &RunContext,
    eval: &mut EvalHook<'_>,
) -> Result<Training> {
    train_or_diverge_with(&common.train_config(), model, objective, images, sampler, ctx, eval)
}

/// [`train_or_diverge`] with a training config of its own (gradient clipping, say).
pub fn train_or_diverge_with(
    config: &TrainConfig,
    model: &Model,
    objective: &mut dyn Objective,
    images: &dyn Images,
    sampler: &mut dyn BatchSampler,
    ctx: &RunContext,
    eval: &mut EvalHook<'_>,
) -> Result<Training> {
    match train(
        model,
        objective,
        Feed { images, sampler },
        config,
        ctx.device,
        eval,
        &Tracking { label: &ctx.progress_label, checkpoint: ctx.checkpoint.as_ref() },
    ) {
        Ok(t) => Ok(Training::Finished {
            curves: t.curves,
            seconds: t.seconds,
            images_per_second: t.images_per_second,
            weights: model.weights()?,
        }),
        Err(e) => match e.downcast::<Diverged>() {
            Ok(d) => Ok(Training::Diverged { note: format!("{}: {d}", ctx.run_label), curves: d.curves }),
            Err(other) => Err(other),
        },
    }
}

/// Test accuracy of a classifier on a fixed subset of test images, for the curves.
pub fn accuracy_hook<'a>(
    data: &'a Mnist,
    indices: Vec<usize>,
    ctx: &'a RunContext<'a>,
) -> impl FnMut(&Model, u64) -> Result<Vec<(String, f64)>> + 'a {
    move |model: &Model, _step| {
        let e = embed(model, &data.test, &indices, ctx.device)?;
        Ok(match e.predictions() {
            Some(p) => vec![("test_accuracy".to_string(), crate::metrics::accuracy(&p, &e.labels))],
            None => Vec::new(),
        })
    }
}

/// Rows of curves.parquet: step, epoch, lr, then every logged value.
pub fn curve_rows(curves: &[CurveRow]) -> Vec<Row> {
    curves
        .iter()
        .map(|c| {
            let mut row: Row =
                vec![("step".into(), c.step.into()), ("epoch".into(), c.epoch.into()), ("lr".into(), c.lr.into())];
            row.extend(c.values.iter().map(|(n, v)| (n.clone(), Cell::F64(*v))));
            row
        })
        .collect()
}

/// Rows of features.parquet for the first `n` samples of an embedding: split, index, label, f0…
pub fn feature_rows(split: &str, e: &Embedded, indices: &[usize], n: usize) -> Vec<Row> {
    (0..e.len().min(n))
        .map(|i| {
            let mut row: Row = vec![
                ("split".into(), split.into()),
                ("index".into(), indices[i].into()),
                ("label".into(), e.labels[i].into()),
            ];
            row.extend(
                e.features[i * e.dim..(i + 1) * e.dim]
                    .iter()
                    .enumerate()
                    .map(|(d, &v)| (format!("f{d}"), Cell::F64(v as f64))),
            );
            row
        })
        .collect()
}

/// A series' (x, y) points and the ± error bar of each.
pub type PointsWithErrors = (Vec<(f64, f64)>, Vec<f64>);

/// A series' points from table rows (x = the row's position, y in percent) and, with
/// `std_column`, its ± error bars; rows lacking the value are skipped for both, so every error
/// bar stays on its point.
pub fn percent_points<'a>(
    rows: impl IntoIterator<Item = Record<'a>>,
    column: &str,
    std_column: Option<&str>,
) -> Result<PointsWithErrors> {
    let mut points = Vec::new();
    let mut errors = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        let Some(y) = row.f64(column)? else { continue };
        points.push((i as f64, 100.0 * y));
        if let Some(std) = std_column {
            errors.push(100.0 * row.f64(std)?.unwrap_or(0.0));
        }
    }
    Ok((points, errors))
}

/// One run per value of `key` (the lowest seed when there are several; finished runs first),
/// sorted by that value.
pub fn first_of_each<'a>(rows: impl IntoIterator<Item = Record<'a>>, key: &str) -> Result<Vec<(f64, Record<'a>)>> {
    let mut rows: Vec<(bool, i64, Record<'a>)> = rows
        .into_iter()
        .map(|r| Ok((!r.finished()?, r.f64("seed")?.map(|s| s as i64).unwrap_or(0), r)))
        .collect::<Result<_>>()?;
    rows.sort_by_key(|(unfinished, seed, _)| (*unfinished, *seed));
    let mut out: Vec<(f64, Record<'a>)> = Vec::new();
    for (_, _, row) in rows {
        let Some(value) = row.f64(key)? else { continue };
        if !out.iter().any(|(v, _)| *v == value) {
            out.push((value, row));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(out)
}

/// The rows of `table` that belong to one run.
pub fn rows_of<'a>(table: &'a Table, run_id: &'a str) -> impl Iterator<Item = Record<'a>> + 'a {
    table.records().filter(move |r| r.run_id().ok() == Some(run_id))
}

/// (x, y) of every row of one run that has both columns (curves, ROC points).
pub fn series_of(table: &Table, run_id: &str, x: &str, y: &str) -> Result<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    for r in rows_of(table, run_id) {
        if let (Some(x), Some(y)) = (r.f64(x)?, r.f64(y)?) {
            out.push((x, y));
        }
    }
    Ok(out)
}

/// (f0, f1, label) of one run's features in one split.
pub fn points_2d(features: &Table, run_id: &str, split: &str) -> Result<Vec<(f32, f32, u8)>> {
    let mut out = Vec::new();
    for r in rows_of(features, run_id) {
        if r.str("split")? == Some(split) {
            out.push((r.num("f0")? as f32, r.num("f1")? as f32, r.num("label")? as u8));
        }
    }
    Ok(out)
}

/// A number of a row formatted for a report table; empty when the run has no value (diverged).
pub fn shown(row: Record, column: &str, format: impl Fn(f64) -> String) -> Result<String> {
    Ok(row.f64(column)?.map(format).unwrap_or_default())
}

/// An x axis for a λ sweep: log10 λ for positive finite λ, with 0 one decade below the smallest
/// and ∞ one decade above the largest, set apart at the ends; labelled ticks on every decade.
/// Returns the position of each λ and the ticks.
pub fn lambda_axis(lambdas: &[f64]) -> (Vec<f64>, Vec<(f64, String)>) {
    let finite: Vec<f64> = lambdas.iter().copied().filter(|l| *l > 0.0 && l.is_finite()).collect();
    let lo = finite.iter().map(|l| l.log10().floor()).fold(f64::INFINITY, f64::min);
    let hi = finite.iter().map(|l| l.log10().ceil()).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) };
    let position = |l: f64| {
        if l == 0.0 {
            lo - 1.0
        } else if l.is_infinite() {
            hi + 1.0
        } else {
            l.log10()
        }
    };
    let mut ticks = Vec::new();
    if lambdas.contains(&0.0) {
        ticks.push((lo - 1.0, "0".to_string()));
    }
    let mut decade = lo;
    while decade <= hi {
        let k = decade as i32;
        let label = match k {
            ..=-3 => format!("1e{k}"),
            -2 => "0.01".into(),
            -1 => "0.1".into(),
            _ => format!("{}", 10u64.pow(k as u32)),
        };
        ticks.push((decade, label));
        decade += 1.0;
    }
    if lambdas.iter().any(|l| l.is_infinite()) {
        ticks.push((hi + 1.0, "∞".to_string()));
    }
    (lambdas.iter().map(|&l| position(l)).collect(), ticks)
}

#[cfg(test)]
mod lambda_axis_tests {
    #[test]
    fn lambda_axes_are_logarithmic_with_zero_and_infinity_set_apart() {
        let (x, ticks) = super::lambda_axis(&[0.0, 1e-4, 0.05, 1.0, f64::INFINITY]);
        assert_eq!(x[0], -5.0);
        assert!((x[2] - 0.05f64.log10()).abs() < 1e-12);
        assert_eq!(x[4], 1.0);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "1e-4", "1e-3", "0.01", "0.1", "1", "∞"]);
        assert!(ticks.iter().all(|t| t.0.fract() == 0.0), "ticks on whole numbers");
    }
}

/// The class names of the ten digits, for figure legends.
pub fn digit_names() -> Vec<String> {
    ALL_DIGITS.iter().map(|d| d.to_string()).collect()
}

/// A fixed, seeded subsample of `pool` (the same points for every run of a given seed).
pub fn plot_sample(pool: &[usize], n: usize, purpose: &str) -> Vec<usize> {
    let mut sample = pool.to_vec();
    sample.shuffle(&mut rng_for(0, purpose));
    sample.truncate(n);
    sample
}

/// Standard summary columns of a finished or diverged run.
pub fn timing_metrics(training: &Training) -> Vec<(String, Cell)> {
    match training {
        Training::Finished { seconds, images_per_second, curves, .. } => vec![
            ("train_seconds".into(), (*seconds).into()),
            ("images_per_second".into(), (*images_per_second).into()),
            ("steps".into(), curves.last().map(|c| c.step).unwrap_or(0).into()),
        ],
        Training::Diverged { curves, .. } => vec![("steps".into(), curves.last().map(|c| c.step).unwrap_or(0).into())],
    }
}

/// A run's outcome: its timing and curves always, plus what `evaluate` adds once training
/// finished (metrics, tables, and another status such as "collapsed" with its note).
pub fn finish_run(training: &Training, evaluate: impl FnOnce(&mut RunOutcome) -> Result<()>) -> Result<RunOutcome> {
    let mut outcome = RunOutcome {
        status: STATUS_FINISHED.into(),
        note: String::new(),
        metrics: timing_metrics(training),
        tables: vec![("curves".to_string(), curve_rows(training.curves()))],
        weights: Vec::new(),
    };
    match training {
        Training::Diverged { note, .. } => {
            outcome.status = STATUS_DIVERGED.into();
            outcome.note = note.clone();
        }
        Training::Finished { weights, .. } => {
            evaluate(&mut outcome)?;
            outcome.weights = weights.clone();
        }
    }
    Ok(outcome)
}

/// The accuracy of a classifier's predictions on an embedded set (NaN for an empty set, e.g.
/// `plot_points = 0`).
pub fn classifier_accuracy(e: &Embedded) -> Result<f64> {
    if e.is_empty() {
        return Ok(f64::NAN);
    }
    let predictions = e.predictions().context("this run's model has no classifier head to predict with")?;
    Ok(crate::metrics::accuracy(&predictions, &e.labels))
}

/// The compactness columns (intra, inter, R, scatter traces, mean norm).
pub fn compactness_metrics(e: &Embedded) -> Vec<(String, Cell)> {
    let c = crate::metrics::compactness(&e.features, e.dim, &e.labels);
    vec![
        ("intra".into(), c.intra.into()),
        ("inter".into(), c.inter.into()),
        ("r_ratio".into(), c.ratio.into()),
        ("within_trace".into(), c.within_trace.into()),
        ("between_trace".into(), c.between_trace.into()),
        ("mean_feature_norm".into(), c.mean_norm.into()),
        ("radial_fraction".into(), crate::metrics::radial_fraction(&e.features, e.dim, &e.labels).into()),
    ]
}

/// Digits the identification head trains on, and the unseen ones verification is tested on
/// (DeepID2 and FaceNet test on identities disjoint from training).
pub const TRAIN_DIGITS: [u8; 7] = [0, 1, 2, 3, 4, 5, 6];
pub const HELD_OUT_DIGITS: [u8; 3] = [7, 8, 9];

/// The first `limit` test images of `digits` (0: all of them).
fn first_test_images(split: &Split, digits: &[u8], limit: usize) -> Vec<usize> {
    let mut indices = split.indices_of(digits);
    if limit > 0 {
        indices.truncate(limit);
    }
    indices
}

/// How a verification set's pairs fall into its 10 folds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationFolds {
    /// Contiguous blocks of one shuffled pair list. Folds share images, so the spread over folds
    /// measures pair sampling only, and one odd image weighs on every fold.
    PairBlocks,
    /// Pairs drawn within 10 disjoint sets of images (a seeded split of the images), as LFW's
    /// View 2 folds are: no image is in two folds, so a threshold never sees a test image.
    ImageDisjoint,
}

impl VerificationFolds {
    /// The config value (as serde writes it).
    pub const fn name(self) -> &'static str {
        match self {
            VerificationFolds::PairBlocks => "pair_blocks",
            VerificationFolds::ImageDisjoint => "image_disjoint",
        }
    }
}

/// How runs recorded before an experiment gained the `verification_folds` key cut their folds.
pub const FOLDS_BEFORE_THE_KEY: VerificationFolds = VerificationFolds::PairBlocks;

/// A run's `verification_folds` cell, or [`FOLDS_BEFORE_THE_KEY`]'s name where the run predates it.
pub fn recorded_folds(cell: Option<&str>) -> &str {
    cell.unwrap_or(FOLDS_BEFORE_THE_KEY.name())
}

/// Whether a run measured verification on pair-block folds (a run from before the key included).
pub fn on_pair_blocks(r: &Record) -> bool {
    recorded_folds(r.str("verification_folds").ok().flatten()) == VerificationFolds::PairBlocks.name()
}

/// Verification folds: LFW's ten.
pub const FOLDS: usize = 10;

/// How a run's `verification_folds` cell (absent before the key existed: pair blocks) cut its folds, in words.
pub fn folds_in_words(cell: Option<&str>) -> &'static str {
    match recorded_folds(cell) {
        "image_disjoint" => "the folds are ten disjoint sets of images, so no threshold sees a test image",
        _ => "the folds are blocks of one pair list and share images, so their spread measures pair sampling only",
    }
}

/// The report section of an experiment that moved from pair-block to image-disjoint folds, with
/// what its claims read on the earlier, pair-block runs (kept in `all_runs`, the whole runs table)
/// once no current run uses them: the evidence rules ask for the earlier result when a setting
/// changes after it.
pub fn section_with_earlier_folds(
    current: &Table,
    all_runs: &Table,
    section: impl Fn(&Table) -> Result<Option<crate::verdict::Section>>,
) -> Result<Option<crate::verdict::Section>> {
    let Some(mut now) = section(current)? else { return Ok(None) };
    let earlier = all_runs.filter(|r| Ok(on_pair_blocks(&r)))?;
    if earlier.rows.is_empty() || current.records().any(|r| on_pair_blocks(&r)) {
        return Ok(Some(now));
    }
    let Some(before) = section(&earlier)? else { return Ok(Some(now)) };
    let read: Vec<String> =
        before.claims.iter().map(|c| format!("\"{}\": {} (**{}**)", c.claim, c.ours, c.verdict.text())).collect();
    now.body.push_str(&format!(
        "\n**Earlier folds.** These claims were first judged on {} runs whose ten verification folds were blocks of \
         one pair list (sharing images); the folds were then made disjoint in images and every run trained again. \
         On the earlier runs: {}.\n",
        earlier.rows.len(),
        read.join("; ")
    ));
    Ok(Some(now))
}

/// The recorded default of `verification_folds` for experiments that gained the key: their runs
/// recorded before it cut pair blocks.
pub fn folds_before_the_key() -> serde_json::Map<String, serde_json::Value> {
    let before = serde_json::Value::from(FOLDS_BEFORE_THE_KEY.name());
    serde_json::Map::from_iter([("verification_folds".to_string(), before)])
}

/// Test images of some digits, a fixed, seeded list of same/different pairs among them, and
/// each pair's fold.
pub struct VerificationSet {
    pub indices: Vec<usize>,
    pub pairs: crate::data::Pairs,
    pub fold: Vec<usize>,
}

impl VerificationSet {
    /// LFW-style balanced pairs (`pairs` same and `pairs` different) among the first `limit`
    /// test images of `digits` (0: all of them), in `folds`. The list depends only on its arguments.
    pub fn balanced(
        split: &Split,
        digits: &[u8],
        limit: usize,
        pairs: usize,
        folds: VerificationFolds,
    ) -> VerificationSet {
        let indices = first_test_images(split, digits, limit);
        let labels: Vec<u8> = indices.iter().map(|&i| split.labels[i]).collect();
        let purpose = format!("pairs-{digits:?}");
        match folds {
            VerificationFolds::PairBlocks => {
                let pairs = crate::data::Pairs::balanced(&labels, pairs, pairs, &mut rng_for(0, &purpose));
                let fold = crate::metrics::contiguous_folds(pairs.len(), FOLDS);
                VerificationSet { indices, pairs, fold }
            }
            VerificationFolds::ImageDisjoint => {
                let per_fold = pairs / FOLDS;
                Self::within_image_folds(indices, &labels, digits, |f, fold_labels| {
                    crate::data::Pairs::balanced(fold_labels, per_fold, per_fold, &mut rng_for(f as u64, &purpose))
                })
            }
        }
    }

    /// Every pair among the first `limit` test images of `digits` (FaceNet scores all pairs), or
    /// every pair within each of the image folds.
    pub fn all_pairs(split: &Split, digits: &[u8], limit: usize, folds: VerificationFolds) -> VerificationSet {
        let indices = first_test_images(split, digits, limit);
        let labels: Vec<u8> = indices.iter().map(|&i| split.labels[i]).collect();
        match folds {
            VerificationFolds::PairBlocks => {
                let pairs = crate::data::Pairs::all(&labels);
                let fold = crate::metrics::contiguous_folds(pairs.len(), FOLDS);
                VerificationSet { indices, pairs, fold }
            }
            VerificationFolds::ImageDisjoint => Self::within_image_folds(indices, &labels, digits, |_, fold_labels| {
                crate::data::Pairs::all(fold_labels)
            }),
        }
    }

    /// The images split into [`FOLDS`] disjoint sets (a seeded shuffle cut into equal parts), and
    /// the pairs `pairs_of` draws within each set (given its index and its images' labels).
    fn within_image_folds(
        indices: Vec<usize>,
        labels: &[u8],
        digits: &[u8],
        pairs_of: impl Fn(usize, &[u8]) -> crate::data::Pairs,
    ) -> VerificationSet {
        let mut order: Vec<usize> = (0..indices.len()).collect();
        order.shuffle(&mut rng_for(0, &format!("image-folds-{digits:?}")));
        let (mut pairs, mut fold) = (crate::data::Pairs::default(), Vec::new());
        for f in 0..FOLDS {
            let members = &order[f * order.len() / FOLDS..(f + 1) * order.len() / FOLDS];
            let fold_labels: Vec<u8> = members.iter().map(|&p| labels[p]).collect();
            let local = pairs_of(f, &fold_labels);
            pairs.a.extend(local.a.iter().map(|&i| members[i]));
            pairs.b.extend(local.b.iter().map(|&j| members[j]));
            pairs.same.extend(&local.same);
            fold.extend(std::iter::repeat_n(f, local.len()));
        }
        VerificationSet { indices, pairs, fold }
    }

    /// 10-fold accuracy (mean, std) and VAL at FAR 1e-3 and 1e-2, named `<prefix>_…`, from the
    /// squared L2 distances of `features` (rows in the order of `indices`).
    pub fn metrics(&self, features: &[f32], dim: usize, prefix: &str) -> Vec<(String, Cell)> {
        let d = self.pairs.squared_distances(features, dim);
        let (same, fold) = (&self.pairs.same, &self.fold);
        let acc = crate::metrics::kfold_accuracy_in(&d, same, fold, FOLDS);
        let v3 = crate::metrics::val_at_far_in(&d, same, fold, 1e-3, FOLDS);
        let v2 = crate::metrics::val_at_far_in(&d, same, fold, 1e-2, FOLDS);
        vec![
            (format!("{prefix}_verification_accuracy"), acc.mean.into()),
            (format!("{prefix}_verification_accuracy_std"), acc.std.into()),
            (format!("{prefix}_val_at_far_1e-3"), v3.val.into()),
            (format!("{prefix}_val_at_far_1e-3_std"), v3.val_std.into()),
            (format!("{prefix}_val_at_far_1e-2"), v2.val.into()),
        ]
    }
}

/// λ values as config values ("inf" for ∞, which JSON lacks).
pub fn lambda_values(lambdas: &[f64]) -> Vec<serde_json::Value> {
    lambdas.iter().map(|&l| if l.is_infinite() { "inf".into() } else { l.into() }).collect()
}

/// Serialises f64 with ±∞ as the strings "inf" / "-inf" (JSON has no infinity), for λ = ∞.
pub mod maybe_infinite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "inf" } else { "-inf" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Number {
            F(f64),
            S(String),
        }
        match Number::deserialize(d)? {
            Number::F(x) => Ok(x),
            Number::S(s) if s == "inf" || s == "∞" => Ok(f64::INFINITY),
            Number::S(s) if s == "-inf" => Ok(f64::NEG_INFINITY),
            Number::S(s) => Err(serde::de::Error::custom(format!("expected a number or \"inf\", got {s:?}"))),
        }
    }
}

#[cfg(test)]
mod verification_fold_tests {
    use super::*;

    /// 700 test images of digits 0-9 in turn (only the labels matter).
    fn test_split() -> Split {
        Split { images: vec![0; 700 * 784], labels: (0..700).map(|i| (i % 10) as u8).collect() }
    }

    /// The fold each image of `set` falls in, asserting that it falls in one only.
    fn image_folds(set: &VerificationSet) -> std::collections::HashMap<usize, usize> {
        let mut fold_of_image = std::collections::HashMap::new();
        for k in 0..set.pairs.len() {
            for image in [set.pairs.a[k], set.pairs.b[k]] {
                let previous = fold_of_image.insert(image, set.fold[k]);
                assert!(
                    previous.is_none_or(|f| f == set.fold[k]),
                    "image {image} is in folds {previous:?} and {}",
                    set.fold[k]
                );
            }
        }
        fold_of_image
    }

    #[test]
    fn image_disjoint_folds_share_no_image() {
        let split = test_split();
        let digits = [7, 8, 9];
        let every = VerificationSet::all_pairs(&split, &digits, 150, VerificationFolds::ImageDisjoint);
        assert_eq!(every.indices.len(), 150);
        // 15 images per fold, every pair within a fold: 10 × 15·14/2.
        assert_eq!(every.pairs.len(), 1050);
        assert_eq!((0..FOLDS).map(|f| every.fold.iter().filter(|&&g| g == f).count()).collect::<Vec<_>>(), [105; 10]);
        assert_eq!(image_folds(&every).len(), 150, "every image in exactly one fold");
        for k in 0..every.pairs.len() {
            let (a, b) = (every.indices[every.pairs.a[k]], every.indices[every.pairs.b[k]]);
            assert_eq!(every.pairs.same[k], split.labels[a] == split.labels[b]);
        }

        let balanced = VerificationSet::balanced(&split, &digits, 150, 100, VerificationFolds::ImageDisjoint);
        image_folds(&balanced);
        for f in 0..FOLDS {
            let same: Vec<bool> =
                (0..balanced.pairs.len()).filter(|&k| balanced.fold[k] == f).map(|k| balanced.pairs.same[k]).collect();
            assert_eq!(
                (same.iter().filter(|&&s| s).count(), same.iter().filter(|&&s| !s).count()),
                (10, 10),
                "fold {f}"
            );
        }
        let again = VerificationSet::balanced(&split, &digits, 150, 100, VerificationFolds::ImageDisjoint);
        assert_eq!((again.pairs, again.fold), (balanced.pairs, balanced.fold), "seeded");
    }

    #[test]
    fn pair_blocks_keep_the_earlier_pairs_and_contiguous_folds() {
        let split = test_split();
        let set = VerificationSet::balanced(&split, &[7, 8, 9], 150, 100, VerificationFolds::PairBlocks);
        let labels: Vec<u8> = set.indices.iter().map(|&i| split.labels[i]).collect();
        let earlier = crate::data::Pairs::balanced(&labels, 100, 100, &mut rng_for(0, "pairs-[7, 8, 9]"));
        assert_eq!(set.pairs, earlier);
        assert_eq!(set.fold, crate::metrics::contiguous_folds(200, FOLDS));
        assert_eq!(set.fold[..20], [0; 20]);
        // Folds shared images: the reason for the other scheme.
        let shared = image_folds_shared(&set);
        assert!(shared > 0);
    }

    /// How many images appear in more than one fold.
    fn image_folds_shared(set: &VerificationSet) -> usize {
        let mut folds: std::collections::HashMap<usize, std::collections::BTreeSet<usize>> = Default::default();
        for k in 0..set.pairs.len() {
            for image in [set.pairs.a[k], set.pairs.b[k]] {
                folds.entry(image).or_default().insert(set.fold[k]);
            }
        }
        folds.values().filter(|f| f.len() > 1).count()
    }
}

#[cfg(test)]
mod earlier_folds_tests {
    use super::section_with_earlier_folds;
    use crate::results::{Cell, Row, Table};
    use crate::verdict::{Claim, Section, Verdict};

    fn runs(folds: &[Option<&str>]) -> Table {
        let rows: Vec<Row> = folds
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut row: Row = vec![("run_id".into(), Cell::Str(format!("run{i}")))];
                if let Some(f) = f {
                    row.push(("verification_folds".into(), Cell::Str(f.to_string())));
                }
                row
            })
            .collect();
        Table::new("runs", rows)
    }

    /// A section whose one claim counts the runs it was given: reproduced from 3 runs up.
    fn counted(runs: &Table) -> anyhow::Result<Option<Section>> {
        let n = runs.rows.len();
        let verdict = if n >= 3 { Verdict::Reproduced } else { Verdict::Inconclusive };
        let claim = Claim::new("the effect", "paper", format!("{n} runs"), verdict);
        Ok(Some(Section { title: "t".into(), claims: vec![claim], body: "body\n".into() }))
    }

    #[test]
    fn the_earlier_pair_block_runs_are_judged_apart_once_no_current_run_uses_them() {
        let current = runs(&[Some("image_disjoint"), Some("image_disjoint")]);
        // Two rows from before the key (pair blocks by default), one written with it.
        let all = runs(&[Some("image_disjoint"), Some("image_disjoint"), None, None, Some("pair_blocks")]);
        let section = section_with_earlier_folds(&current, &all, counted).unwrap().unwrap();
        assert_eq!(section.claims[0].ours, "2 runs", "the claims read the current runs");
        assert!(section.body.starts_with("body\n"));
        assert!(section.body.contains("first judged on 3 runs"), "{}", section.body);
        assert!(section.body.contains("\"the effect\": 3 runs (**reproduced**)"), "{}", section.body);
    }

    #[test]
    fn nothing_is_added_without_earlier_runs_or_while_current_runs_still_use_pair_blocks() {
        let disjoint = runs(&[Some("image_disjoint")]);
        let alone = section_with_earlier_folds(&disjoint, &disjoint, counted).unwrap().unwrap();
        assert_eq!(alone.body, "body\n");
        let mixed = runs(&[Some("image_disjoint"), None]);
        let all = runs(&[Some("image_disjoint"), None, None]);
        assert_eq!(section_with_earlier_folds(&mixed, &all, counted).unwrap().unwrap().body, "body\n");
    }
}
