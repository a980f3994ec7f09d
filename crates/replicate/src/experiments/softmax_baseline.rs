//! `softmax-baseline`: the center-loss paper's Fig. 2 (Wen et al., ECCV 2016, Sec. 3.4):
//! LeNets++ with a 2-D PReLU feature and a bias-free 10-way softmax head, trained with softmax
//! alone. The deep features spread out as radial "spokes", one per digit, separable by angle
//! but far from compact.

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Tensor;
use serde_json::{Map, Value};

use super::common::{
    accuracy_hook, compactness_metrics, curve_rows, feature_rows, plot_sample, timing_metrics, train_or_diverge,
    Common, Training,
};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::losses::softmax_loss;
use crate::nn::{HeadKind, ModelOutput};
use crate::plot::{save, ScatterFigure, ScatterPanel};
use crate::report::{fmt_pct, Section, Verdict};
use crate::results::{Cell, Store, Table, STATUS_DIVERGED, STATUS_FINISHED};
use crate::train::{embed, LossTerms, Objective};

pub const ALL_DIGITS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// Softmax cross-entropy on the classifier's logits.
pub struct Softmax;

impl Objective for Softmax {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, _step: u64) -> candle_core::Result<LossTerms> {
        let logits =
            out.logits.as_ref().ok_or_else(|| candle_core::Error::Msg("softmax needs a classifier head".into()))?;
        Ok(LossTerms::total(softmax_loss(logits, labels)?))
    }
}

/// The caffe-face MNIST solver (PAPERS.md §3.3): batch 128, lr 0.01, momentum 0.9, weight
/// decay 5e-4, lr × 0.8 at 5k and 8k, 10k iterations; sized down by the profile.
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

pub struct SoftmaxBaseline;

impl Experiment for SoftmaxBaseline {
    fn name(&self) -> &'static str {
        "softmax-baseline"
    }

    fn about(&self) -> &'static str {
        "center loss Fig. 2: 2-D softmax features of LeNets++ on MNIST (train and test)"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &std::path::Path) -> Vec<Sweep> {
        vec![Sweep::new(&lenetspp_2d(profile))]
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        super::common::parse::<Common>(config)?;
        Ok(())
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Common = super::common::parse(config)?;
        let data = ctx.data;
        let model = cfg.model(HeadKind::Linear { classes: 10 }, ctx)?;
        let train_pool = cfg.train_pool(&data.train, &ALL_DIGITS);
        let test_pool = cfg.test_pool(&data.test, &ALL_DIGITS);
        let mut sampler = cfg.shuffled(train_pool.clone());
        let mut hook = accuracy_hook(data, test_pool.iter().copied().take(1000).collect(), ctx);
        let training = train_or_diverge(&cfg, &model, &mut Softmax, &data.train, sampler.as_mut(), ctx, &mut hook)?;
        let mut metrics = timing_metrics(&training);
        let mut tables = vec![("curves".to_string(), curve_rows(training.curves()))];
        let (status, note) = match &training {
            Training::Diverged { note, .. } => (STATUS_DIVERGED, note.clone()),
            Training::Finished { .. } => {
                let test = embed(&model, &data.test, &test_pool, ctx.device)?;
                let train_sample = plot_sample(&train_pool, cfg.plot_points, "plot-train");
                let train = embed(&model, &data.train, &train_sample, ctx.device)?;
                metrics.push((
                    "test_accuracy".into(),
                    crate::metrics::accuracy(&test.predictions().expect("classifier"), &test.labels).into(),
                ));
                metrics.push((
                    "train_accuracy".into(),
                    crate::metrics::accuracy(&train.predictions().expect("classifier"), &train.labels).into(),
                ));
                metrics.extend(compactness_metrics(&test));
                let mut rows = feature_rows("train", &train, &train_sample, cfg.plot_points);
                rows.extend(feature_rows("test", &test, &test_pool, cfg.plot_points));
                tables.push(("features".into(), rows));
                (STATUS_FINISHED, String::new())
            }
        };
        Ok(RunOutcome { status: status.into(), note, metrics, tables })
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let runs = store.current_runs()?;
        let features = store.load("features")?;
        let Some(run) =
            runs.rows.iter().find(|r| Table::get(r, "status").and_then(Cell::as_str) == Some(STATUS_FINISHED))
        else {
            return Ok(Vec::new());
        };
        let run_id = Table::get(run, "run_id").and_then(Cell::as_str).unwrap_or_default();
        let accuracy = |name: &str| Table::get(run, name).and_then(Cell::as_f64).unwrap_or(f64::NAN) * 100.0;
        let panels = [
            ("train", "(a) training set", accuracy("train_accuracy")),
            ("test", "(b) test set", accuracy("test_accuracy")),
        ]
        .iter()
        .map(|(split, title, acc)| ScatterPanel {
            title: format!("{title}, accuracy {acc:.2}%"),
            points: points_2d(&features, run_id, split),
            centers: Vec::new(),
        })
        .collect();
        let figure = ScatterFigure {
            title: "Softmax-only 2-D deep features of LeNets++ on MNIST (cf. center loss, Fig. 2)".into(),
            panels,
            cols: 2,
            class_names: ALL_DIGITS.iter().map(|d| d.to_string()).collect(),
        };
        save(&store.dir().join("fig2"), &figure)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        let runs = store.current_runs()?;
        Ok(runs
            .rows
            .iter()
            .find(|r| Table::get(r, "status").and_then(Cell::as_str) == Some(STATUS_FINISHED))
            .map(Self::section))
    }
}

impl SoftmaxBaseline {
    fn section(run: &crate::results::Row) -> Section {
        let f = |c: &str| Table::get(run, c).and_then(Cell::as_f64);
        let acc = f("test_accuracy");
        let radial = f("radial_fraction");
        Section {
            title: "Center loss (Wen et al., ECCV 2016): softmax-only features, Fig. 2".into(),
            claims: vec![
                (
                    "Softmax alone makes the 2-D deep features separable".into(),
                    "Fig. 2 (no MNIST accuracy reported)".into(),
                    acc.map(|a| format!("test accuracy {}", fmt_pct(a))).unwrap_or("n/a".into()),
                    if acc.is_some_and(|a| a >= 0.97) { Verdict::Reproduced } else { Verdict::NotReproduced },
                ),
                (
                    "…but not compact: each class spreads out radially from the origin (\"spokes\")".into(),
                    "Fig. 2 (qualitative)".into(),
                    format!(
                        "{} of the within-class variance lies along the class-mean direction; R = intra/inter = {}",
                        radial.map(fmt_pct).unwrap_or("n/a".into()),
                        f("r_ratio").map(|v| format!("{v:.3}")).unwrap_or("n/a".into())
                    ),
                    if radial.is_some_and(|r| r >= 0.8) { Verdict::Reproduced } else { Verdict::NotReproduced },
                ),
            ],
            body: format!(
                "![Fig. 2](softmax-baseline/fig2.png)\n\n**Deviations.** LeNets++ at width {} for {} iterations of batch {} (caffe-face: width 1.0, 10,000 iterations), \
                 last max-pool 2/2 instead of 3/2, the standard 60,000 training images (the caption says 50K), Caffe-style momentum. \
                 Compute: {:.0} s of training at {:.0} images/s on this machine's CPU.\n",
                f("width").unwrap_or(f64::NAN),
                f("iterations").unwrap_or(f64::NAN),
                f("batch_size").unwrap_or(f64::NAN),
                f("train_seconds").unwrap_or(f64::NAN),
                f("images_per_second").unwrap_or(f64::NAN)
            ),
        }
    }
}

/// (f0, f1, label) of one run's features in one split.
pub fn points_2d(features: &Table, run_id: &str, split: &str) -> Vec<(f32, f32, u8)> {
    features
        .rows
        .iter()
        .filter(|r| {
            Table::get(r, "run_id").and_then(Cell::as_str) == Some(run_id)
                && Table::get(r, "split").and_then(Cell::as_str) == Some(split)
        })
        .filter_map(|r| {
            Some((
                Table::get(r, "f0")?.as_f64()? as f32,
                Table::get(r, "f1")?.as_f64()? as f32,
                Table::get(r, "label")?.as_f64()? as u8,
            ))
        })
        .collect()
}
