//! `leaderboard`: every loss on the same network, data, batches and budget, measured the same
//! way — the comparison the four papers make only in words. LeNets++ with a 64-D feature, digits
//! 0-6 for training and the unseen 7-9 for verification and retrieval, 7 digits × 18 images per
//! batch for every method, three seeds. DeepID2's and center loss's λ are the best of their own
//! sweeps (read from their results when they exist; the papers' values otherwise).

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::center_loss::{CenterUpdate, SoftmaxCenter};
use super::common::{
    compactness_metrics, curve_rows, percent_points, timing_metrics, train_or_diverge, Common, Training,
    VerificationSet, HELD_OUT_DIGITS, TRAIN_DIGITS,
};
use super::deepid2::IdentVerif;
use super::facenet::Triplet;
use super::lsoftmax::LSoftmaxLoss;
use super::softmax_baseline::{lenetspp_2d, Softmax};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::losses::{CenterLoss, ContrastiveForm, Distance, LambdaSchedule, Mining, TripletLoss};
use crate::metrics::mean_std;
use crate::nn::{Head, HeadKind};
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::report::{fmt_pct, lambda_label, runs_by, Section, Verdict};
use crate::results::{Cell, Row, Store, Table, STATUS_DIVERGED, STATUS_FINISHED};
use crate::train::{embed, Objective};

/// The five training signals compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Softmax,
    Contrastive,
    Triplet,
    Center,
    Lsoftmax,
}

impl Method {
    pub const ALL: [Method; 5] =
        [Method::Softmax, Method::Contrastive, Method::Triplet, Method::Center, Method::Lsoftmax];

    pub fn name(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "contrastive",
            Method::Triplet => "triplet",
            Method::Center => "center",
            Method::Lsoftmax => "lsoftmax",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "softmax + contrastive (DeepID2)",
            Method::Triplet => "triplet, semi-hard (FaceNet)",
            Method::Center => "softmax + center loss",
            Method::Lsoftmax => "L-Softmax, m = 4",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    pub method: Method,
    /// DeepID2's verification weight (the best of its sweep).
    pub contrastive_lambda: f64,
    /// The center-loss weight (the best of its sweep).
    pub center_lambda: f64,
    /// Where the two λ came from.
    pub lambda_source: String,
    pub classes_per_batch: usize,
    pub verification_pairs: usize,
    pub val_images: usize,
}

/// DeepID2's best interior λ (held-out verification) and the largest center-loss λ whose test
/// accuracy stays within 0.5 points of softmax alone, from their recorded sweeps.
fn best_lambdas(results_dir: &Path) -> (f64, f64, String) {
    let mut source = Vec::new();
    let deepid2 = runs_by(&Store::new(results_dir, "deepid2"), "lambda")
        .ok()
        .and_then(|runs| {
            runs.iter()
                .filter(|(l, _)| *l > 0.0 && l.is_finite())
                .filter_map(|(l, r)| Some((*l, Table::get(r, "held_out_verification_accuracy")?.as_f64()?)))
                .fold(None, |best: Option<(f64, f64)>, x| if best.is_none_or(|b| x.1 > b.1) { Some(x) } else { best })
        })
        .inspect(|b| source.push(format!("contrastive λ = {} from results/deepid2", lambda_label(b.0))))
        .map(|b| b.0)
        .unwrap_or_else(|| {
            source.push("contrastive λ = 0.05 (the paper's; no deepid2 results yet)".into());
            0.05
        });
    let center = runs_by(&Store::new(results_dir, "center-loss"), "lambda")
        .ok()
        .and_then(|runs| {
            let base =
                runs.iter().find(|(l, _)| *l == 0.0).and_then(|(_, r)| Table::get(r, "test_accuracy")?.as_f64())?;
            runs.iter()
                .filter(|(l, r)| {
                    *l > 0.0 && Table::get(r, "test_accuracy").and_then(Cell::as_f64).is_some_and(|a| a >= base - 0.005)
                })
                .map(|(l, _)| *l)
                .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))))
        })
        .inspect(|l| source.push(format!("center λ = {} from results/center-loss", lambda_label(*l))))
        .unwrap_or_else(|| {
            source.push("center λ = 0.01 (caffe-face's loss_weight; no center-loss results yet)".into());
            0.01
        });
    (deepid2, center, source.join("; "))
}

pub fn config(profile: Profile, results_dir: &Path) -> Config {
    let base = lenetspp_2d(profile);
    let smoke = profile == Profile::Smoke;
    let base = if profile == Profile::Quick {
        Common { iterations: 600, lr_milestones: vec![400, 520], eval_every: 0, ..base }
    } else {
        base
    };
    let (contrastive_lambda, center_lambda, lambda_source) = best_lambdas(results_dir);
    Config {
        common: Common { feature_dim: 64, batch_size: if smoke { 35 } else { 126 }, plot_points: 0, ..base },
        method: Method::Softmax,
        contrastive_lambda,
        center_lambda,
        lambda_source,
        classes_per_batch: 7,
        verification_pairs: if smoke { 300 } else { 3000 },
        val_images: if smoke { 300 } else { 1500 },
    }
}

pub struct Leaderboard;

impl Leaderboard {
    fn objective(cfg: &Config, head: &Head, device: &candle_core::Device) -> Result<Box<dyn Objective>> {
        let c = &cfg.common;
        Ok(match cfg.method {
            Method::Softmax => Box::new(Softmax),
            // DeepID2's adaptive margin, re-set every 50 steps as in its own experiment.
            Method::Contrastive => {
                Box::new(IdentVerif::new(cfg.contrastive_lambda, 1.0, ContrastiveForm::Distance, Some(50)))
            }
            Method::Triplet => Box::new(Triplet {
                loss: TripletLoss { margin: 0.2, mining: Mining::SemiHard, distance: Distance::SquaredEuclidean },
            }),
            Method::Center => Box::new(SoftmaxCenter::new(
                CenterLoss::new(TRAIN_DIGITS.len(), c.feature_dim, 0.5, device)?,
                cfg.center_lambda,
                CenterUpdate::Paper,
                c.train_config().lr,
                c.momentum,
            )),
            Method::Lsoftmax => {
                let Head::LSoftmax(layer) = head else { anyhow::bail!("L-Softmax needs its head") };
                let at = (c.iterations as f64 * 2.0 / 3.0).round().max(1.0) as u64;
                Box::new(LSoftmaxLoss {
                    layer: layer.clone(),
                    schedule: LambdaSchedule::rescaled(1000.0, 35.0, 0.0, 1e-3, at),
                })
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

    fn sweeps(&self, profile: Profile, results_dir: &Path) -> Vec<Sweep> {
        let methods: Vec<Value> = Method::ALL.iter().map(|m| Value::from(m.name())).collect();
        vec![Sweep::new(&config(profile, results_dir)).axis("method", &methods).axis("seed", &[1u64, 2, 3])]
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = super::common::parse(config)?;
        super::common::check_classes_per_batch(c.classes_per_batch)?;
        Ok(())
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = super::common::parse(config)?;
        let c = &cfg.common;
        let data = ctx.data;
        let classes = TRAIN_DIGITS.len();
        let head = match cfg.method {
            Method::Triplet => HeadKind::Embedding,
            Method::Lsoftmax => HeadKind::LSoftmax { classes, m: 4 },
            _ => HeadKind::Linear { classes },
        };
        let model = c.model(head, ctx)?;
        let mut objective = Self::objective(&cfg, &model.head, ctx.device)?;
        let train_pool = c.train_pool(&data.train, &TRAIN_DIGITS);
        let mut sampler = c.class_balanced(&data.train, &train_pool, cfg.classes_per_batch)?;
        let training =
            train_or_diverge(c, &model, objective.as_mut(), &data.train, sampler.as_mut(), ctx, &mut |_, _| {
                Ok(Vec::new())
            })?;
        let mut metrics = timing_metrics(&training);
        let tables = vec![("curves".to_string(), curve_rows(training.curves()))];
        let (status, note) = match &training {
            Training::Diverged { note, .. } => (STATUS_DIVERGED, note.clone()),
            Training::Finished { .. } => {
                // Identification on test digits 0-6: the classifier, or for the triplet embedding
                // the nearest class mean of training embeddings.
                let seen = embed(&model, &data.test, &c.test_pool(&data.test, &TRAIN_DIGITS), ctx.device)?;
                let predictions = match seen.predictions() {
                    Some(p) => p,
                    None => {
                        let sample = super::common::plot_sample(&train_pool, 5000, "leaderboard-means");
                        let t = embed(&model, &data.train, &sample, ctx.device)?;
                        let (means, _) = crate::metrics::class_means(&t.embedding, t.dim, &t.labels, classes);
                        let means: Vec<f32> = means.iter().map(|&v| v as f32).collect();
                        crate::metrics::nearest_center(&seen.embedding, seen.dim, &means)
                    }
                };
                metrics.push((
                    "identification_accuracy".into(),
                    crate::metrics::accuracy(&predictions, &seen.labels).into(),
                ));
                metrics.extend(compactness_metrics(&seen));
                // Verification and retrieval compare directions (cosine), the usual score for
                // softmax-trained face features and what FaceNet's unit embedding does by
                // construction: raw L2 would penalise losses whose feature norms carry confidence,
                // not identity (L-Softmax's). Raw L2 is kept under `held_out_l2_*`.
                let balanced =
                    VerificationSet::balanced(&data.test, &HELD_OUT_DIGITS, c.test_images, cfg.verification_pairs);
                let b = embed(&model, &data.test, &balanced.indices, ctx.device)?;
                let b_unit = crate::metrics::unit_rows(&b.embedding, b.dim);
                metrics.extend(
                    balanced
                        .metrics(&b_unit, b.dim, "held_out_balanced")
                        .into_iter()
                        .filter(|(n, _)| n.contains("accuracy")),
                );
                metrics.extend(
                    balanced
                        .metrics(&b.embedding, b.dim, "held_out_l2_balanced")
                        .into_iter()
                        .filter(|(n, _)| n.contains("accuracy")),
                );
                let every_pair = VerificationSet::all_pairs(&data.test, &HELD_OUT_DIGITS, cfg.val_images);
                let h = embed(&model, &data.test, &every_pair.indices, ctx.device)?;
                let h_unit = crate::metrics::unit_rows(&h.embedding, h.dim);
                metrics.extend(
                    every_pair
                        .metrics(&h_unit, h.dim, "held_out")
                        .into_iter()
                        .filter(|(n, _)| n.contains("val_at_far")),
                );
                metrics.extend(
                    every_pair
                        .metrics(&h.embedding, h.dim, "held_out_l2")
                        .into_iter()
                        .filter(|(n, _)| n.contains("val_at_far")),
                );
                let r = crate::metrics::retrieval(&h_unit, h.dim, &h.labels);
                metrics.push(("precision_at_1".into(), r.precision_at_1.into()));
                metrics.push(("map_at_r".into(), r.map_at_r.into()));
                (STATUS_FINISHED, String::new())
            }
        };
        Ok(RunOutcome { status: status.into(), note, metrics, tables })
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let board = aggregate(store)?;
        let results_dir = store.dir().parent().unwrap_or(Path::new("."));
        let mut frame = board.to_frame()?;
        let path = results_dir.join("leaderboard.parquet");
        crate::results::write_parquet(&path, &mut frame, vec![("replicate.table".into(), "leaderboard".into())])?;
        let methods: Vec<String> =
            board.rows.iter().filter_map(|r| Some(Table::get(r, "method")?.as_str()?.to_string())).collect();
        let series = |name: &str, metric: &str, colour: usize| {
            let (points, errors) =
                percent_points(&board.rows, &format!("{metric}_mean"), Some(&format!("{metric}_std")));
            Series { name: name.into(), points, errors, colour, markers: true, no_line: true }
        };
        let chart = |title: &str, metric: &str, colour: usize| LineChart {
            title: title.into(),
            x_label: "method (mean ± std over seeds)".into(),
            y_label: "%".into(),
            x_categories: Some(methods.clone()),
            series: vec![series(title, metric, colour)],
            ..Default::default()
        };
        let charts = vec![
            chart("VAL at FAR = 1e-3, unseen digits 7-9", "held_out_val_at_far_1e-3", 0),
            chart("10-fold verification accuracy, digits 7-9", "held_out_balanced_verification_accuracy", 1),
            chart("precision@1, digits 7-9", "precision_at_1", 2),
            chart("identification accuracy, digits 0-6", "identification_accuracy", 3),
        ];
        let mut files = save(
            &store.dir().join("leaderboard"),
            &LineFigure { title: "Every loss on the same 64-D LeNets++, data and budget".into(), charts, cols: 2 },
        )?;
        files.push(path);
        Ok(files)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        let board = aggregate(store)?;
        if board.rows.is_empty() {
            return Ok(None);
        }
        let runs = store.current_runs()?;
        let first = runs.rows.first();
        let f = |c: &str| first.and_then(|r| Table::get(r, c)).and_then(Cell::as_f64).unwrap_or(f64::NAN);
        let source =
            first.and_then(|r| Table::get(r, "lambda_source")).and_then(Cell::as_str).unwrap_or_default().to_string();
        let cols = [
            ("identification_accuracy", "identification (0-6)"),
            ("held_out_balanced_verification_accuracy", "verification (7-9, 10-fold)"),
            ("held_out_val_at_far_1e-3", "VAL@1e-3 (7-9)"),
            ("held_out_l2_val_at_far_1e-3", "VAL@1e-3, raw L2 (7-9)"),
            ("r_ratio", "R (0-6)"),
            ("precision_at_1", "precision@1 (7-9)"),
            ("map_at_r", "MAP@R (7-9)"),
            ("train_seconds", "train s"),
        ];
        let mut table = format!(
            "| method | runs |{}\n|---|---|{}\n",
            cols.iter().map(|c| format!(" {} |", c.1)).collect::<String>(),
            "---|".repeat(cols.len())
        );
        for r in &board.rows {
            let cell = |metric: &str| {
                let (m, s) = (
                    Table::get(r, &format!("{metric}_mean")).and_then(Cell::as_f64),
                    Table::get(r, &format!("{metric}_std")).and_then(Cell::as_f64),
                );
                match (m, s) {
                    (Some(m), Some(s)) if metric == "r_ratio" => format!("{m:.3} ± {s:.3}"),
                    (Some(m), Some(s)) if metric == "train_seconds" => format!("{m:.0} ± {s:.0}"),
                    (Some(m), Some(s)) => format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s),
                    _ => "—".into(),
                }
            };
            table.push_str(&format!(
                "| {} | {} |{}\n",
                Table::get(r, "method").and_then(Cell::as_str).unwrap_or_default(),
                Table::get(r, "finished_runs").and_then(Cell::as_f64).unwrap_or(0.0),
                cols.iter().map(|c| format!(" {} |", cell(c.0))).collect::<String>()
            ));
        }
        let best = board
            .rows
            .iter()
            .filter_map(|r| {
                Some((
                    Table::get(r, "method")?.as_str()?.to_string(),
                    Table::get(r, "held_out_val_at_far_1e-3_mean")?.as_f64()?,
                ))
            })
            .fold(None, |b: Option<(String, f64)>, x| if b.as_ref().is_none_or(|b| x.1 > b.1) { Some(x) } else { b });
        let softmax = board
            .rows
            .iter()
            .find(|r| Table::get(r, "method").and_then(Cell::as_str) == Some("softmax"))
            .and_then(|r| Table::get(r, "held_out_val_at_far_1e-3_mean")?.as_f64());
        Ok(Some(Section {
            title: "Leaderboard: every loss on the same network, data and budget".into(),
            claims: vec![(
                "Adding an intra-class term (contrastive, center) or a margin (L-Softmax) to softmax improves verification on unseen identities".into(),
                "the papers' shared claim, each against its own baseline".into(),
                format!("best held-out VAL@1e-3: {} ({}); softmax alone: {}", best.as_ref().map(|b| b.0.as_str()).unwrap_or("n/a"), best.as_ref().map(|b| fmt_pct(b.1)).unwrap_or_default(), softmax.map(fmt_pct).unwrap_or("n/a".into())),
                match (&best, softmax) {
                    (Some((name, _)), Some(_)) if name != "softmax" && name != "triplet" => Verdict::Reproduced,
                    (Some((name, _)), Some(_)) if name == "triplet" => Verdict::Partly,
                    _ => Verdict::NotReproduced,
                },
            )],
            body: format!(
                "Mean ± std over seeds of the finished runs.\n\n{table}\n![leaderboard](leaderboard/leaderboard.png)\n\n**Setup.** LeNets++ (width {w}) with a 64-D feature, \
                 {it} iterations of {k} digits × {per} images from digits 0-6 for every method, the same seeds and schedule. λ: {source}. \
                 Verification and retrieval use the unseen digits 7-9 (balanced pairs for accuracy, all pairs of {n} images for VAL) and \
                 compare feature directions (cosine similarity, the usual score for softmax-trained face features; FaceNet's embedding is \
                 unit-length already); the raw-L2 column thresholds the squared distance of the unnormalised features instead. \
                 Identification uses the classifier, or for the triplet embedding the nearest class mean of training embeddings.\n",
                w = f("width"),
                it = f("iterations"),
                k = f("classes_per_batch"),
                per = f("batch_size") / f("classes_per_batch"),
                n = f("val_images"),
            ),
        }))
    }
}

const BOARD_METRICS: [&str; 11] = [
    "identification_accuracy",
    "held_out_balanced_verification_accuracy",
    "held_out_val_at_far_1e-3",
    "held_out_val_at_far_1e-2",
    "held_out_l2_balanced_verification_accuracy",
    "held_out_l2_val_at_far_1e-3",
    "r_ratio",
    "precision_at_1",
    "map_at_r",
    "train_seconds",
    "images_per_second",
];

/// One row per method: mean and std over its finished runs of every board metric.
pub fn aggregate(store: &Store) -> Result<Table> {
    let runs = store.current_runs()?;
    let mut rows = Vec::new();
    for method in Method::ALL {
        let mine: Vec<&Row> = runs
            .rows
            .iter()
            .filter(|r| Table::get(r, "method").and_then(Cell::as_str) == Some(method.name()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let finished: Vec<&&Row> =
            mine.iter().filter(|r| Table::get(r, "status").and_then(Cell::as_str) == Some(STATUS_FINISHED)).collect();
        let mut row: Row = vec![
            ("method".into(), method.name().into()),
            ("description".into(), method.label().into()),
            ("runs".into(), mine.len().into()),
            ("finished_runs".into(), finished.len().into()),
        ];
        for metric in BOARD_METRICS {
            let values: Vec<f64> = finished
                .iter()
                .filter_map(|r| Table::get(r, metric).and_then(Cell::as_f64))
                .filter(|v| v.is_finite())
                .collect();
            let (m, s) = mean_std(&values);
            row.push((format!("{metric}_mean"), m.into()));
            row.push((format!("{metric}_std"), s.into()));
        }
        rows.push(row);
    }
    Ok(Table { rows })
}
