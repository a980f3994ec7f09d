//! What the LFW experiments that train share: the face settings their configs flatten in, LFW's
//! protocol (who is trained on, which pairs set the threshold, which are scored), the face
//! backbone, flip-averaged cosine features, and the scores of a trained model.
//!
//! The protocol is LFW's (Huang et al., UMass TR 07-49, 2007, Sec. 4), not ours: View 1 (its
//! development view) for sweeps and every choice of setting, training on its 4,038 training
//! people, the threshold from its 2,200 training pairs, scored on its 1,000 test pairs; View 2
//! for headline numbers, one training per fold k on the people of the other nine folds, the
//! threshold from their pairs, scored on fold k's 600. View 1's people also appear in View 2's
//! folds: LFW accepts this. No image of a scored person is ever trained on.

use anyhow::{bail, ensure, Result};
use candle_core::Device;

use super::seeds::Seeded;
use super::setup::{finish_run, train_or_diverge_with, Common, Training};
use super::{Profile, RunContext, RunOutcome};
use crate::data::{Augmentation, ClassBalancedBatches, FaceImages, FacePair, FaceWindow, Images, Lfw};
use crate::nn::{BackboneConfig, HeadKind, Model};
use crate::objectives::Objective;
use crate::plot::{LineChart, Series};
use crate::results::{Cell, Record, Row, Table};
use crate::util::rng_for;
use crate::verdict::fmt_pct;

/// Published View 2 results to set ours beside, with their category; none is on our images or
/// our pipeline. The first five were read on the LFW results page; the last four are recalled
/// by a secondary reading and not checked (../shared/FACES.md), and say so.
pub const ANCHORS: [(&str, &str, &str); 9] = [
    ("Eigenfaces, original images", "60.02 ± 0.79 %", "image-restricted, no outside data"),
    ("Pixels / MKL, funneled", "68.22 ± 0.41 %", "image-restricted, no outside data"),
    ("Nowak, funneled", "73.93 %", "image-restricted, no outside data"),
    ("Hybrid descriptor (LBP family + SIFT), funneled", "78.47 ± 0.51 %", "image-restricted, no outside data"),
    ("V1-like / MKL, funneled", "79.35 ± 0.55 %", "image-restricted, no outside data"),
    ("Convolutional DBN (Huang, Lee, Learned-Miller, CVPR 2012)", "≈ 87.8 % (recalled, not checked)", "not checked"),
    (
        "Fisher Vector Faces (Simonyan et al., BMVC 2013)",
        "87.47 ± 1.49 % (recalled, not checked)",
        "restricted (recalled)",
    ),
    (
        "Fisher Vector Faces (Simonyan et al., BMVC 2013)",
        "93.03 ± 1.05 % (recalled, not checked)",
        "unrestricted (recalled)",
    ),
    ("High-dim LBP + Joint Bayesian, trained on LFW only", "≈ 93.2 % (recalled, not checked)", "not checked"),
];

/// The paragraph and table that set published View 2 results beside ours in REPORT.md.
pub fn published_context() -> String {
    let mut text = String::from(
        "\nPublished View 2 results for context (LFW results page, vis-www.cs.umass.edu/lfw/results.html, mean ± \
         standard error; rows marked recalled were not checked there). Our setting: the shared images are aligned, very \
         likely LFW-a, which that page counts as label-free outside data, so ours is \"unrestricted, label-free outside \
         data\"; rows of stricter categories are marked as such.\n\n| published method | View 2 | category |\n|---|---|---|\n",
    );
    for (method, accuracy, category) in ANCHORS {
        text.push_str(&format!("| {method} | {accuracy} | {category} |\n"));
    }
    text
}

/// The face settings of a run (configs flatten them: keys `input_side`, `crop`, …).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FaceSettings {
    /// The network's input side (a multiple of 8).
    pub input_side: usize,
    /// The centre window of the 64×64 image that is averaged down to `input_side`.
    pub crop: usize,
    /// Training windows move by up to this many pixels each way.
    pub max_shift: usize,
    /// Training images are mirrored half of the time.
    pub flip: bool,
    /// A test feature is the sum of the image's and its mirror's (compared by cosine).
    pub flip_average: bool,
    /// Training people need at least this many images.
    pub min_images: usize,
    /// Training people kept, those with the most images (0 = all): small only for smoke runs.
    pub max_people: usize,
    /// Pairs kept of each list, thresholding and scored (0 = all): small only for smoke runs.
    pub max_pairs: usize,
    /// `view1`, or `fold1` … `fold10`: View 2 with that fold scored.
    pub split: String,
}

impl FaceSettings {
    pub fn check(&self) -> Result<()> {
        self.window().check(self.max_shift).map_err(anyhow::Error::msg)?;
        BackboneConfig::face_cnn(1.0, 1, self.input_side).check()?;
        ensure!(self.min_images >= 1, "min_images must be at least 1, got 0");
        split_fold(&self.split)?;
        Ok(())
    }

    pub fn window(&self) -> FaceWindow {
        FaceWindow { crop: self.crop, side: self.input_side }
    }

    pub fn backbone(&self, common: &Common) -> BackboneConfig {
        BackboneConfig::face_cnn(common.width, common.feature_dim, self.input_side)
    }
}

/// The settings every LFW training starts from: the face backbone at 32×32 from the 64×64
/// images averaged down by 2 (windows shifted by up to 4 of the 64 pixels and mirrored half of
/// the time in training), 1,500 steps of 128 (View 1's training people with two or more images
/// are about 6,700 images: ~29 epochs), lr 0.05 with two ÷10 steps. Paper: 64×64 and 6,000 steps.
/// Smoke: 24 people of 8 or more images at 16×16, 12 steps, 60 pairs of each list.
pub fn face_defaults(profile: Profile) -> (Common, FaceSettings) {
    let common = Common {
        seed: 1,
        width: 1.0,
        feature_dim: 128,
        batch_size: 128,
        iterations: 1_500,
        base_lr: 0.05,
        lr_gamma: 0.1,
        lr_milestones: vec![1_000, 1_300],
        momentum: 0.9,
        weight_decay: 5e-4,
        train_images: 0,
        test_images: 0,
        plot_points: 600,
        log_every: 50,
        eval_every: 500,
        kernels: crate::nn::Kernels::Fast,
    };
    let face = FaceSettings {
        input_side: 32,
        crop: 64,
        max_shift: 4,
        flip: true,
        flip_average: true,
        min_images: 2,
        max_people: 0,
        max_pairs: 0,
        split: "view1".into(),
    };
    match profile {
        Profile::Quick => (common, face),
        Profile::Paper => (
            Common { iterations: 6_000, lr_milestones: vec![4_000, 5_200], ..common },
            FaceSettings { input_side: 64, ..face },
        ),
        Profile::Smoke => (
            Common {
                width: 0.25,
                feature_dim: 16,
                batch_size: 16,
                iterations: 12,
                lr_milestones: vec![8],
                plot_points: 40,
                log_every: 4,
                eval_every: 0,
                ..common
            },
            FaceSettings { input_side: 16, min_images: 8, max_people: 24, max_pairs: 60, ..face },
        ),
    }
}

/// A batch of `classes_per_batch` people needs two or more of them and two or more images each.
pub fn check_batches(common: &Common, classes_per_batch: usize) -> Result<()> {
    ensure!(
        classes_per_batch >= 2 && common.batch_size >= 2 * classes_per_batch,
        "a batch needs at least 2 people of at least 2 images: classes_per_batch = {classes_per_batch} with batch_size = {}",
        common.batch_size
    );
    Ok(())
}

/// `split`'s View 2 fold (0-based), or `None` for View 1; anything else is an error.
pub fn split_fold(split: &str) -> Result<Option<usize>> {
    if split == "view1" {
        return Ok(None);
    }
    match split.strip_prefix("fold").and_then(|k| k.parse::<usize>().ok()) {
        Some(k) if (1..=10).contains(&k) => Ok(Some(k - 1)),
        _ => bail!("split takes view1 or fold1 … fold10 (View 2 with that fold scored), got {split:?}"),
    }
}

/// The trainer every LFW experiment that trains names: their runs share one training procedure,
/// so a run two of them plan (the leaderboard's softmax and deepid2-lfw's λ = 0) trains once.
pub const TRAINER: &str = "lfw-faces";

/// Whether a run trained for View 1 (a run whose split cannot be read counts as not).
pub fn on_view1(r: &Record) -> bool {
    r.text("split").ok().and_then(|s| split_fold(s).ok()).is_some_and(|f| f.is_none())
}

/// A View 2 run's fold, 1-10, as the replicate its comparisons pair by (0 for View 1).
pub fn fold_number(r: &Record) -> Result<u64> {
    Ok(split_fold(r.text("split")?)?.map_or(0, |k| k as u64 + 1))
}

/// A run's test accuracy for the comparisons: measured, or chance (50 %) for a run that left no
/// model to score (diverged): dropping it would favour the method that failed.
pub fn accuracy_or_chance(r: &Record) -> Result<Option<f64>> {
    Ok(Some(r.f64("test_accuracy")?.filter(|a| a.is_finite()).unwrap_or(0.5)))
}

/// The View 2 splits, one training each.
pub fn view2_splits() -> Vec<String> {
    (1..=10).map(|k| format!("fold{k}")).collect()
}

/// One training of LFW's protocol: the people trained on (as classes, in this order), and the
/// pairs, those that set the threshold and those `held_out` that are scored.
pub struct ProtocolSplit {
    pub training_people: Vec<u32>,
    pub training_images: Vec<usize>,
    pub pairs: Vec<FacePair>,
    pub held_out: Vec<bool>,
}

impl ProtocolSplit {
    pub fn new(lfw: &Lfw, face: &FaceSettings) -> Result<ProtocolSplit> {
        // LFW's lists give a fold's same pairs first: a cap keeps half of each kind.
        let cap = |pairs: Vec<FacePair>| match face.max_pairs {
            0 => pairs,
            n => {
                let half = |same: bool| pairs.iter().filter(move |p| p.same == same).take(n.div_ceil(2)).copied();
                half(true).chain(half(false)).collect::<Vec<_>>()
            }
        };
        let (people, thresholding, scored): (Vec<u32>, Vec<FacePair>, Vec<FacePair>) = match split_fold(&face.split)? {
            None => (lfw.view1_train_people.clone(), lfw.view1_train_pairs.clone(), lfw.view1_test_pairs.clone()),
            Some(k) => (
                (0..lfw.view2_fold_people.len())
                    .filter(|&f| f != k)
                    .flat_map(|f| lfw.view2_fold_people[f].clone())
                    .collect(),
                lfw.view2_pairs.iter().filter(|p| p.fold != k).copied().collect(),
                lfw.view2_pairs.iter().filter(|p| p.fold == k).copied().collect(),
            ),
        };
        let mut people: Vec<u32> = people.into_iter().filter(|&p| lfw.counts[p as usize] >= face.min_images).collect();
        if face.max_people > 0 && face.max_people < people.len() {
            // The most photographed people (ties by id), kept in id order.
            people.sort_by_key(|&p| (std::cmp::Reverse(lfw.counts[p as usize]), p));
            people.truncate(face.max_people);
            people.sort_unstable();
        }
        ensure!(
            people.len() >= 2,
            "split {}: only {} training people have at least {} images; lower min_images",
            face.split,
            people.len(),
            face.min_images
        );
        let (thresholding, scored) = (cap(thresholding), cap(scored));
        let held_out = (0..thresholding.len() + scored.len()).map(|i| i >= thresholding.len()).collect();
        let training_images = lfw.images_of(&people);
        Ok(ProtocolSplit {
            training_people: people,
            training_images,
            pairs: thresholding.into_iter().chain(scored).collect(),
            held_out,
        })
    }

    /// The training faces, augmented as `face` says, with `seed`'s augmentation stream.
    pub fn training_faces<'a>(&self, lfw: &'a Lfw, face: &FaceSettings, seed: u64) -> FaceImages<'a> {
        let augmentation = Augmentation { seed, max_shift: face.max_shift, flip: face.flip };
        FaceImages::new(lfw, face.window(), &self.training_people, Some(augmentation))
    }

    /// Every image a pair names, once, in index order.
    pub fn pair_images(&self) -> Vec<usize> {
        let mut images: Vec<usize> = self.pairs.iter().flat_map(|p| [p.a, p.b]).collect();
        images.sort_unstable();
        images.dedup();
        images
    }

    pub fn same(&self) -> Vec<bool> {
        self.pairs.iter().map(|p| p.same).collect()
    }
}

/// A model trained on one split of LFW's protocol.
pub struct FaceTraining<'a> {
    pub lfw: &'a Lfw,
    pub split: ProtocolSplit,
    pub model: Model,
    pub training: Training,
}

/// Which head a face model trains with: a classifier over the training people, an L-Softmax
/// layer over them, class weights for the cosine (normalised-softmax) losses, or an embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceHead {
    Classifier,
    LSoftmax { m: usize },
    Cosine,
    Embedding,
}

/// What the normalised losses need to train (see `hypersphere::MarginConfig::base`): the fc
/// feature batch-normalised instead of through a PReLU, and the gradients' global L2 norm
/// clipped (0: not). Off for every other LFW run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stabilisers {
    pub feature_batch_norm: bool,
    pub max_grad_norm: f64,
}

/// Trains the face backbone with `head` on the split `face` names, on batches of
/// `classes_per_batch` people × batch_size / classes_per_batch images (augmented as `face`
/// says), logging the scored pairs' accuracy at every evaluation. The objective is built by
/// `objective` from the model and the number of training people (a center loss has a center per
/// person), and comes back with the training.
pub fn train_on_faces<'a, O: Objective>(
    common: &Common,
    face: &FaceSettings,
    head: FaceHead,
    classes_per_batch: usize,
    ctx: &'a RunContext<'a>,
    objective: impl FnOnce(&Model, usize) -> Result<O>,
) -> Result<(FaceTraining<'a>, O)> {
    train_on_faces_with(common, face, head, Stabilisers::default(), classes_per_batch, ctx, objective)
}

/// [`train_on_faces`] with the normalised losses' [`Stabilisers`].
pub fn train_on_faces_with<'a, O: Objective>(
    common: &Common,
    face: &FaceSettings,
    head: FaceHead,
    stabilisers: Stabilisers,
    classes_per_batch: usize,
    ctx: &'a RunContext<'a>,
    objective: impl FnOnce(&Model, usize) -> Result<O>,
) -> Result<(FaceTraining<'a>, O)> {
    let lfw = ctx.data.lfw()?;
    let split = ProtocolSplit::new(lfw, face)?;
    let classes = split.training_people.len();
    let model = face_model(common, face, head, stabilisers, classes, ctx.device)?;
    let mut objective = objective(&model, classes)?;
    let faces = split.training_faces(lfw, face, common.seed);
    let labels: Vec<u32> = split.training_images.iter().map(|&i| faces.class(i)).collect();
    let mut sampler = ClassBalancedBatches::new(
        &split.training_images,
        &labels,
        classes_per_batch,
        common.batch_size / classes_per_batch,
        rng_for(common.seed, "batches"),
    )
    .map_err(anyhow::Error::msg)?;
    let mut hook = |model: &Model, _step: u64| -> Result<Vec<(String, f64)>> {
        Ok(vec![("test_accuracy".into(), PairScores::of(model, lfw, &split, face, ctx.device)?.accuracy)])
    };
    let mut train_config = common.train_config();
    train_config.sgd.max_grad_norm = stabilisers.max_grad_norm;
    let training = train_or_diverge_with(&train_config, &model, &mut objective, &faces, &mut sampler, ctx, &mut hook)?;
    Ok((FaceTraining { lfw, split, model, training }, objective))
}

/// The model a face run trains: `face`'s backbone (batch-normalised features where the
/// stabilisers say) and `head` over the `people` it trains on.
fn face_model(
    common: &Common,
    face: &FaceSettings,
    head: FaceHead,
    stabilisers: Stabilisers,
    people: usize,
    device: &Device,
) -> Result<Model> {
    let head = match head {
        FaceHead::Classifier => HeadKind::Linear { classes: people },
        FaceHead::LSoftmax { m } => HeadKind::LSoftmax { classes: people, m },
        FaceHead::Cosine => HeadKind::Cosine { classes: people },
        FaceHead::Embedding => HeadKind::Embedding,
    };
    let backbone = BackboneConfig { feature_batch_norm: stabilisers.feature_batch_norm, ..face.backbone(common) };
    Ok(Model::new(backbone, head, common.seed, common.kernels, device)?)
}

/// A face run's kept weights measured again as [`FaceTraining::outcome`] measures a run at its end
/// (the scored pairs' metrics and the split's size), plus what `more` takes from the scores:
/// what `replicate rescore` asks of an LFW experiment. Measurements taken during training (the
/// last logged losses) are left as recorded.
pub fn rescore_faces(
    (common, face): (&Common, &FaceSettings),
    head: FaceHead,
    stabilisers: Stabilisers,
    ctx: &RunContext,
    weights: &super::Weights,
    more: impl FnOnce(&mut RunOutcome, &PairScores, &ProtocolSplit),
) -> Result<Option<RunOutcome>> {
    let lfw = ctx.data.lfw()?;
    let split = ProtocolSplit::new(lfw, face)?;
    let model = face_model(common, face, head, stabilisers, split.training_people.len(), ctx.device)?;
    super::setup::measure_weights(&model, weights, |model, out| {
        let scores = PairScores::of(model, lfw, &split, face, ctx.device)?;
        out.metrics.extend(measured_at_the_end(&scores, &split));
        more(out, &scores, &split);
        Ok(())
    })
}

/// The scored pairs' metrics and the training split's size, as a face run records them.
fn measured_at_the_end(scores: &PairScores, split: &ProtocolSplit) -> Vec<(String, Cell)> {
    let mut metrics = scores.metrics(split);
    metrics.push(("training_people".into(), split.training_people.len().into()));
    metrics.push(("training_images".into(), split.training_images.len().into()));
    metrics
}

impl FaceTraining<'_> {
    /// The run's outcome: timing and curves, and once training finished the scored pairs'
    /// metrics, ROC and per-pair distances, then what `more` adds.
    pub fn outcome(
        &self,
        face: &FaceSettings,
        ctx: &RunContext,
        more: impl FnOnce(&mut RunOutcome, &PairScores) -> Result<()>,
    ) -> Result<RunOutcome> {
        finish_run(&self.training, |out| {
            let scores = PairScores::of(&self.model, self.lfw, &self.split, face, ctx.device)?;
            out.metrics.extend(measured_at_the_end(&scores, &self.split));
            out.tables.push(("roc".into(), scores.roc_rows(&self.split)));
            out.tables.push(("pairs".into(), scores.pair_rows(&self.split)));
            more(out, &scores)
        })
    }
}

/// Backbone features of `indices` (summed with their mirror images' when `flip_average`), rows
/// in the order of `indices`.
pub fn face_features(
    model: &Model,
    faces: &FaceImages,
    indices: &[usize],
    flip_average: bool,
    device: &Device,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(indices.len() * model.config.feature_dim);
    for chunk in indices.chunks(256) {
        let (x, _) = faces.batch(chunk, device)?;
        let mut f = model.backbone.forward(&x)?.detach();
        if flip_average {
            let (mirrored, _) = faces.mirrored_batch(chunk, device)?;
            f = (f + model.backbone.forward(&mirrored)?.detach())?;
        }
        out.extend(f.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// A trained model's verification scores on one split.
pub struct PairScores {
    /// Cosine distance of every pair (1 − cos), in the split's order.
    pub distances: Vec<f64>,
    /// Accuracy on the scored pairs at the threshold that is best on the thresholding pairs.
    pub accuracy: f64,
    pub threshold: f64,
}

impl PairScores {
    pub fn of(model: &Model, lfw: &Lfw, split: &ProtocolSplit, face: &FaceSettings, device: &Device) -> Result<Self> {
        let faces = FaceImages::new(lfw, face.window(), &split.training_people, None);
        let images = split.pair_images();
        let dim = model.config.feature_dim;
        let unit = crate::metrics::verification::unit_rows(
            &face_features(model, &faces, &images, face.flip_average, device)?,
            dim,
        );
        let row = |image: usize| {
            let k = images.binary_search(&image).expect("every pair image was embedded");
            &unit[k * dim..(k + 1) * dim]
        };
        let distances: Vec<f64> = split
            .pairs
            .iter()
            .map(|p| 1.0 - row(p.a).iter().zip(row(p.b)).map(|(x, y)| (*x as f64) * (*y as f64)).sum::<f64>())
            .collect();
        let (accuracy, threshold) = crate::metrics::held_out_accuracy(&distances, &split.same(), &split.held_out);
        Ok(PairScores { distances, accuracy, threshold })
    }

    /// The run's metrics: scored-pair accuracy, threshold, and VAL at FAR 1e-2 on the scored
    /// pairs (their threshold from the thresholding pairs' different-person distances).
    pub fn metrics(&self, split: &ProtocolSplit) -> Vec<(String, Cell)> {
        let (val, far) = self.val_at_far(split, 1e-2);
        vec![
            ("test_accuracy".into(), self.accuracy.into()),
            ("threshold".into(), self.threshold.into()),
            ("val_at_far_1e-2".into(), val.into()),
            ("far_at_that_threshold".into(), far.into()),
        ]
    }

    /// VAL and FAR on the scored pairs at the threshold whose FAR on the thresholding pairs is
    /// `target` or just below it.
    pub fn val_at_far(&self, split: &ProtocolSplit, target: f64) -> (f64, f64) {
        let same = split.same();
        let part = |held: bool| -> (Vec<f64>, Vec<bool>) {
            (0..same.len()).filter(|&k| split.held_out[k] == held).map(|k| (self.distances[k], same[k])).unzip()
        };
        let (train_d, train_s) = part(false);
        let (test_d, test_s) = part(true);
        let t = crate::metrics::verification::threshold_at_far(&train_d, &train_s, target);
        crate::metrics::verification::val_far(&test_d, &test_s, t)
    }

    /// One row per scored pair: its place in LFW's list, its two images, whether they show the
    /// same person, and its distance (to rescore a run, or find its worst pairs).
    pub fn pair_rows(&self, split: &ProtocolSplit) -> Vec<Row> {
        let first = split.held_out.iter().position(|&h| h).unwrap_or(split.pairs.len());
        (first..split.pairs.len())
            .map(|k| {
                let p = &split.pairs[k];
                vec![
                    ("pair".into(), (k - first).into()),
                    ("image_a".into(), p.a.into()),
                    ("image_b".into(), p.b.into()),
                    ("same".into(), p.same.into()),
                    ("distance".into(), self.distances[k].into()),
                ]
            })
            .collect()
    }

    /// ROC rows (FAR, VAL, threshold) of the scored pairs.
    pub fn roc_rows(&self, split: &ProtocolSplit) -> Vec<Row> {
        let same = split.same();
        let (d, s): (Vec<f64>, Vec<bool>) =
            (0..same.len()).filter(|&k| split.held_out[k]).map(|k| (self.distances[k], same[k])).unzip();
        crate::metrics::roc(&d, &s, 200)
            .iter()
            .map(|&(far, val, t)| {
                vec![("far".into(), far.into()), ("val".into(), val.into()), ("threshold".into(), t.into())]
            })
            .collect()
    }
}

/// The two series of every LFW accuracy figure: View 1's mean over seeds and View 2's mean over
/// the folds, each with its 95 % t interval, at x = `at(setting)`, in percent; `joined` draws
/// lines between settings (a sweep), else markers only (categories).
pub fn view_series(view1: &Seeded, view2: &Seeded, at: impl Fn(f64) -> Option<f64>, joined: bool) -> Vec<Series> {
    let mut series = Vec::new();
    for (name, seeded, colour) in [("View 1, mean over seeds", view1, 0), ("View 2, mean over the 10 folds", view2, 1)]
    {
        let (points, errors) = seeded.mean_points(&at, 100.0);
        if !points.is_empty() {
            let name = format!("{name}, 95 % t interval");
            series.push(Series { name, points, errors, colour, markers: true, no_line: !joined });
        }
    }
    series
}

/// A View 2 accuracy chart by category: each column's every fold, and its mean over the folds
/// with the 95 % t interval, in percent (`columns`: a category's name and its fold accuracies).
pub fn fold_accuracy_chart(columns: &[(String, Vec<f64>)], x_label: &str) -> LineChart {
    let (mut means, mut halves, mut each) = (Vec::new(), Vec::new(), Vec::new());
    for (x, (_, folds)) in columns.iter().enumerate() {
        if let Some(i) = crate::stats::t_interval(folds) {
            means.push((x as f64, 100.0 * i.estimate));
            halves.push(100.0 * (i.high - i.estimate));
        }
        each.extend(folds.iter().map(|&a| (x as f64, 100.0 * a)));
    }
    LineChart {
        title: "View 2 accuracy".into(),
        x_label: format!("{x_label} (the y axis does not start at 0)"),
        y_label: "accuracy (%)".into(),
        x_categories: Some(columns.iter().map(|c| c.0.clone()).collect()),
        series: vec![
            Series {
                name: "each fold".into(),
                points: each,
                colour: 7,
                markers: true,
                no_line: true,
                ..Default::default()
            },
            Series {
                name: "mean over the folds, 95 % t interval".into(),
                points: means,
                errors: halves,
                colour: 0,
                markers: true,
                no_line: true,
            },
        ],
        ..Default::default()
    }
}

/// View 2's ROC chart: for each of `settings`, every fold's held-out ROC (table `roc`) averaged
/// over the folds at fixed FAR, on a log FAR axis; None before any View 2 run. `setting_of`
/// gives a run's setting, `name` a setting's legend.
pub fn view2_roc_chart(
    runs: &Table,
    roc: &Table,
    settings: &[f64],
    setting_of: impl Fn(&Record) -> Option<f64>,
    name: impl Fn(f64) -> String,
) -> Result<Option<LineChart>> {
    let mut series = Vec::new();
    for (k, &setting) in settings.iter().enumerate() {
        let mut folds = Vec::new();
        for r in runs.records().filter(|r| r.text("split").ok() != Some("view1") && setting_of(r) == Some(setting)) {
            folds.push(super::setup::series_of(roc, r.run_id()?, "far", "val")?);
        }
        folds.retain(|f| !f.is_empty());
        if !folds.is_empty() {
            let plural = if folds.len() == 1 { "" } else { "s" };
            let name = format!("{}, mean over {} fold{plural}", name(setting), folds.len());
            series.push(Series { name, points: mean_roc(&folds), colour: k, ..Default::default() });
        }
    }
    Ok((!series.is_empty()).then(|| LineChart {
        title: "View 2 ROC, each fold's held-out pairs, averaged over folds".into(),
        x_label: "false accept rate (log)".into(),
        y_label: "validation rate".into(),
        x_log: true,
        series,
        ..Default::default()
    }))
}

/// A View 2 table's cells for one setting's fold accuracies: folds | mean ± std | standard error.
pub fn view2_cells(accuracies: &[f64]) -> String {
    if accuracies.is_empty() {
        return "0 | — | —".into();
    }
    let std = crate::stats::sample_std(accuracies);
    format!(
        "{} | {} ± {} | {}",
        accuracies.len(),
        fmt_pct(crate::stats::mean(accuracies)),
        fmt_pct(std),
        fmt_pct(std / (accuracies.len() as f64).sqrt())
    )
}

/// A scored pair a model got wrong: its two images, whether they show one person, its distance.
pub type WrongPair = (usize, usize, bool, f64);

/// The scored pairs of `run_id` (its `pairs` table) that are wrong at `threshold`, worst first:
/// up to `n` false accepts (different people, distance ≤ threshold, smallest first) and up to `n`
/// false rejects (one person, distance > threshold, largest first).
pub fn worst_pairs(pairs: &Table, run_id: &str, threshold: f64, n: usize) -> Result<(Vec<WrongPair>, Vec<WrongPair>)> {
    let (mut accepts, mut rejects) = (Vec::new(), Vec::new());
    for r in pairs.records().filter(|r| r.run_id().ok() == Some(run_id)) {
        let pair = (r.num("image_a")? as usize, r.num("image_b")? as usize, r.bool("same")?, r.num("distance")?);
        match (pair.2, pair.3 <= threshold) {
            (false, true) => accepts.push(pair),
            (true, false) => rejects.push(pair),
            _ => {}
        }
    }
    accepts.sort_by(|a, b| a.3.total_cmp(&b.3));
    rejects.sort_by(|a, b| b.3.total_cmp(&a.3));
    accepts.truncate(n);
    rejects.truncate(n);
    Ok((accepts, rejects))
}

/// The ROC averaged over folds at fixed false accept rates (vertical averaging): at each FAR of
/// a log grid from 10^-2.5 (a fold has 300 different pairs) to 1, each fold's VAL is its best
/// at a FAR no larger, and the points are the folds' means.
pub fn mean_roc(folds: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    (0..=25)
        .map(|i| {
            let far = 10f64.powf(-2.5 + 2.5 * i as f64 / 25.0);
            let val =
                |roc: &Vec<(f64, f64)>| roc.iter().filter(|p| p.0 <= far + 1e-12).map(|p| p.1).fold(0.0, f64::max);
            (far, folds.iter().map(val).sum::<f64>() / folds.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_roc_averages_each_folds_best_val_at_or_below_each_far() {
        let folds = vec![vec![(0.0, 0.2), (0.01, 0.5), (1.0, 1.0)], vec![(0.0, 0.4), (0.1, 0.9), (1.0, 1.0)]];
        let roc = mean_roc(&folds);
        assert_eq!(roc.len(), 26);
        assert!((roc[0].1 - 0.3).abs() < 1e-12, "both folds at FAR 0: {:?}", roc[0]);
        let at_001 = roc.iter().find(|p| (p.0 - 0.01).abs() < 1e-9).unwrap();
        assert!((at_001.1 - 0.45).abs() < 1e-12, "{at_001:?}");
        assert!((roc[25].1 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn splits_name_view1_or_a_view2_fold() {
        assert_eq!(split_fold("view1").unwrap(), None);
        assert_eq!(split_fold("fold1").unwrap(), Some(0));
        assert_eq!(split_fold("fold10").unwrap(), Some(9));
        for bad in ["fold0", "fold11", "view2", ""] {
            let e = split_fold(bad).unwrap_err().to_string();
            assert!(e.contains("view1 or fold1"), "{bad}: {e}");
        }
        assert_eq!(view2_splits().len(), 10);
    }

    #[test]
    fn the_worst_pairs_are_the_closest_false_accepts_and_the_farthest_false_rejects() {
        let row = |run: &str, a: usize, same: bool, d: f64| -> Row {
            vec![
                ("run_id".into(), run.into()),
                ("image_a".into(), a.into()),
                ("image_b".into(), (a + 1).into()),
                ("same".into(), same.into()),
                ("distance".into(), d.into()),
            ]
        };
        let table = Table::new(
            "hand-made pairs",
            vec![
                row("r", 0, false, 0.30),
                row("r", 2, false, 0.10),
                row("r", 4, false, 0.90),
                row("r", 6, true, 0.80),
                row("r", 8, true, 0.95),
                row("r", 10, true, 0.20),
                row("other", 12, false, 0.0),
            ],
        );
        let (accepts, rejects) = worst_pairs(&table, "r", 0.5, 5).unwrap();
        assert_eq!(accepts.iter().map(|p| p.0).collect::<Vec<_>>(), [2, 0]);
        assert_eq!(rejects.iter().map(|p| p.0).collect::<Vec<_>>(), [8, 6]);
        assert_eq!(worst_pairs(&table, "r", 0.5, 1).unwrap().1.len(), 1);
    }
}
