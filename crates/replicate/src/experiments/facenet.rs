//! `facenet`: triplet loss with online mining, Schroff et al., CVPR 2015. Embeddings on the
//! unit hypersphere (L2-normalised), squared L2 distance, margin α = 0.2, batches of P digits ×
//! K images. Digits 0-6 train; verification is measured on the unseen 7-9. The claims: semi-hard
//! negatives train well while the hardest negatives can collapse training early (f(x) → a
//! constant); VAL at FAR = 1e-3 is nearly flat over the embedding dimension (Table 5).

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Tensor;
use serde_json::{Map, Value};

use super::common::{
    curve_rows, timing_metrics, train_or_diverge, Common, Training, VerificationSet, HELD_OUT_DIGITS, TRAIN_DIGITS,
};
use super::softmax_baseline::{lenetspp_2d, ALL_DIGITS};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::losses::{Distance, Mining, TripletLoss};
use crate::nn::{HeadKind, ModelOutput};
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::report::{fmt_pct, Section, Verdict};
use crate::results::{Cell, Row, Store, Table, STATUS_COLLAPSED, STATUS_DIVERGED, STATUS_FINISHED};
use crate::train::{embed, LossTerms, Objective};

/// FaceNet's Table 5: VAL at FAR = 1e-3 (%) of NN1 by embedding dimension.
pub const PAPER_TABLE5: [(f64, f64); 4] = [(64.0, 86.8), (128.0, 87.9), (256.0, 87.7), (512.0, 85.6)];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    pub margin: f64,
    pub mining: Mining,
    pub distance: Distance,
    pub classes_per_batch: usize,
    /// A run whose mean pairwise squared distance (unit vectors: 2 when spread out) ends
    /// below this has collapsed.
    pub collapse_below: f64,
    /// Held-out test images whose every pair is scored for VAL at FAR (0: all).
    pub val_images: usize,
    /// Same and different pairs in the balanced lists for 10-fold accuracy.
    pub verification_pairs: usize,
}

/// Mean squared distance between the rows of `e` over all pairs i ≠ j, from
/// Σ_{i,j} ‖x_i − x_j‖² = 2B Σ‖x_i‖² − 2‖Σ x_i‖².
fn mean_pairwise_squared(e: &Tensor) -> candle_core::Result<f64> {
    let b = e.dim(0)? as f64;
    if b < 2.0 {
        return Ok(0.0);
    }
    let e = e.detach().to_dtype(candle_core::DType::F64)?;
    let norms = e.sqr()?.sum_all()?.to_scalar::<f64>()?;
    let total = e.sum(0)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
    Ok((2.0 * b * norms - 2.0 * total) / (b * (b - 1.0)))
}

pub struct Triplet {
    pub loss: TripletLoss,
}

impl Objective for Triplet {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, _step: u64) -> candle_core::Result<LossTerms> {
        let o = self.loss.forward(&out.embedding, labels)?;
        let stats = vec![
            ("active_fraction", o.active_fraction),
            ("triplets", o.terms as f64),
            ("mean_d_ap", o.mean_ap),
            ("mean_d_an", o.mean_an),
            ("mean_pairwise_distance", mean_pairwise_squared(&out.embedding)?),
        ];
        Ok(LossTerms { terms: vec![("loss", o.loss)], stats })
    }
}

pub fn config(profile: Profile) -> Config {
    let base = lenetspp_2d(profile);
    // Higher-dimensional embeddings learn faster than the 2-D ones: a shorter quick run.
    let base = if profile == Profile::Quick {
        Common { iterations: 600, lr_milestones: vec![400, 520], eval_every: 200, ..base }
    } else {
        base
    };
    let smoke = profile == Profile::Smoke;
    Config {
        common: Common {
            feature_dim: 64,
            batch_size: if smoke { 35 } else { 140 },
            plot_points: 0,
            base_lr: 0.05,
            ..base
        },
        margin: 0.2,
        mining: Mining::SemiHard,
        distance: Distance::SquaredEuclidean,
        classes_per_batch: 7,
        collapse_below: 0.05,
        val_images: if smoke { 300 } else { 1500 },
        verification_pairs: if smoke { 300 } else { 3000 },
    }
}

/// Our held-out VAL@1e-3 per embedding dimension beside FaceNet's Table 5.
pub fn dimension_table(store: &Store) -> Result<polars::prelude::DataFrame> {
    let (_, by_dim) = split_runs(store)?;
    let mut dims: Vec<f64> =
        by_dim.iter().filter_map(|r| f(r, "feature_dim")).chain(PAPER_TABLE5.iter().map(|p| p.0)).collect();
    dims.sort_by(f64::total_cmp);
    dims.dedup();
    let table = Table {
        rows: dims
            .iter()
            .map(|&d| {
                let ours = by_dim.iter().find(|r| f(r, "feature_dim") == Some(d));
                vec![
                    ("embedding dimension".to_string(), Cell::I64(d as i64)),
                    (
                        "ours: VAL@1e-3, digits 7-9 (%)".to_string(),
                        ours.and_then(|r| f(r, "held_out_val_at_far_1e-3"))
                            .map(|v| Cell::F64(100.0 * v))
                            .unwrap_or(Cell::Null),
                    ),
                    (
                        "ours: precision@1 (%)".to_string(),
                        ours.and_then(|r| f(r, "precision_at_1")).map(|v| Cell::F64(100.0 * v)).unwrap_or(Cell::Null),
                    ),
                    (
                        "paper: VAL@1e-3, Table 5 (%)".to_string(),
                        PAPER_TABLE5.iter().find(|p| p.0 == d).map(|p| Cell::F64(p.1)).unwrap_or(Cell::Null),
                    ),
                ]
            })
            .collect(),
    };
    table.to_frame()
}

pub struct FaceNet;

fn mining_of(r: &Row) -> Option<&str> {
    Table::get(r, "mining").and_then(Cell::as_str)
}

fn f(r: &Row, c: &str) -> Option<f64> {
    Table::get(r, c).and_then(Cell::as_f64)
}

/// The dimension-64 (default) run of each mining rule, and the semi-hard run of each dimension.
fn split_runs(store: &Store) -> Result<(Vec<Row>, Vec<Row>)> {
    let runs = store.current_runs()?;
    let default_dim = runs
        .rows
        .iter()
        .filter(|r| mining_of(r) != Some("semi_hard"))
        .filter_map(|r| f(r, "feature_dim"))
        .next()
        .unwrap_or(64.0);
    let mut by_mining: Vec<Row> = Mining::ALL
        .iter()
        .filter_map(|m| {
            runs.rows
                .iter()
                .find(|r| mining_of(r) == Some(m.name()) && f(r, "feature_dim") == Some(default_dim))
                .cloned()
        })
        .collect();
    by_mining.dedup();
    let mut by_dim: Vec<Row> = runs.rows.iter().filter(|r| mining_of(r) == Some("semi_hard")).cloned().collect();
    by_dim.sort_by(|a, b| f(a, "feature_dim").unwrap_or(0.0).total_cmp(&f(b, "feature_dim").unwrap_or(0.0)));
    Ok((by_mining, by_dim))
}

impl Experiment for FaceNet {
    fn name(&self) -> &'static str {
        "facenet"
    }

    fn about(&self) -> &'static str {
        "FaceNet: triplet loss with semi-hard vs other mining rules, and the embedding-dimension table"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &std::path::Path) -> Vec<Sweep> {
        let base = config(profile);
        let mining: Vec<Value> = Mining::ALL.iter().map(|m| Value::from(m.name())).collect();
        vec![
            Sweep::new(&base).axis("mining", &mining),
            Sweep::new(&base).axis("feature_dim", &[8usize, 16, 32, 64, 128]),
        ]
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = super::common::parse(config)?;
        anyhow::ensure!(c.margin >= 0.0, "margin must be ≥ 0, got {}", c.margin);
        super::common::check_classes_per_batch(c.classes_per_batch)?;
        Ok(())
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = super::common::parse(config)?;
        let c = &cfg.common;
        let data = ctx.data;
        let model = c.model(HeadKind::Embedding, ctx)?;
        let train_pool = c.train_pool(&data.train, &TRAIN_DIGITS);
        let mut sampler = c.class_balanced(&data.train, &train_pool, cfg.classes_per_batch)?;
        let mut objective =
            Triplet { loss: TripletLoss { margin: cfg.margin, mining: cfg.mining, distance: cfg.distance } };
        let balanced = VerificationSet::balanced(&data.test, &HELD_OUT_DIGITS, c.test_images, cfg.verification_pairs);
        let every_pair = VerificationSet::all_pairs(&data.test, &HELD_OUT_DIGITS, cfg.val_images);
        let mut hook = |model: &crate::nn::Model, _step: u64| -> Result<Vec<(String, f64)>> {
            let e = embed(model, &data.test, &every_pair.indices, ctx.device)?;
            let d = every_pair.pairs.squared_distances(&e.embedding, e.dim);
            Ok(vec![(
                "held_out_val_at_far_1e-3".into(),
                crate::metrics::val_at_far(&d, &every_pair.pairs.same, 1e-3, 10).val,
            )])
        };
        let training = train_or_diverge(c, &model, &mut objective, &data.train, sampler.as_mut(), ctx, &mut hook)?;
        let mut metrics = timing_metrics(&training);
        let spread: Vec<f64> = training
            .curves()
            .iter()
            .filter_map(|r| r.values.iter().find(|(n, _)| n == "mean_pairwise_distance").map(|v| v.1))
            .collect();
        let final_spread = spread.last().copied().unwrap_or(f64::NAN);
        metrics.push(("final_mean_pairwise_distance".into(), final_spread.into()));
        metrics
            .push(("min_mean_pairwise_distance".into(), spread.iter().copied().fold(f64::INFINITY, f64::min).into()));
        let mut tables = vec![("curves".to_string(), curve_rows(training.curves()))];
        let (status, note) = match &training {
            Training::Diverged { note, .. } => (STATUS_DIVERGED, note.clone()),
            Training::Finished { .. } => {
                let h = embed(&model, &data.test, &every_pair.indices, ctx.device)?;
                metrics.extend(every_pair.metrics(&h.embedding, h.dim, "held_out"));
                let b = embed(&model, &data.test, &balanced.indices, ctx.device)?;
                metrics.extend(
                    balanced
                        .metrics(&b.embedding, b.dim, "held_out_balanced")
                        .into_iter()
                        .filter(|(n, _)| n.contains("accuracy")),
                );
                let all = VerificationSet::balanced(&data.test, &ALL_DIGITS, c.test_images, cfg.verification_pairs);
                let a = embed(&model, &data.test, &all.indices, ctx.device)?;
                metrics.extend(all.metrics(&a.embedding, a.dim, "all_digits"));
                let r = crate::metrics::retrieval(&h.embedding, h.dim, &h.labels);
                metrics.push(("precision_at_1".into(), r.precision_at_1.into()));
                metrics.push(("map_at_r".into(), r.map_at_r.into()));
                let d = every_pair.pairs.squared_distances(&h.embedding, h.dim);
                let roc = crate::metrics::roc(&d, &every_pair.pairs.same, 200);
                tables.push((
                    "roc".into(),
                    roc.iter()
                        .map(|&(far, val, t)| {
                            vec![("far".into(), far.into()), ("val".into(), val.into()), ("threshold".into(), t.into())]
                        })
                        .collect(),
                ));
                if final_spread < cfg.collapse_below {
                    (STATUS_COLLAPSED, format!("{}: the mean pairwise squared distance of the embeddings fell to {final_spread:.4} (< {}): f(x) collapsed towards a constant", ctx.progress_label, cfg.collapse_below))
                } else {
                    (STATUS_FINISHED, String::new())
                }
            }
        };
        Ok(RunOutcome { status: status.into(), note, metrics, tables })
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let (by_mining, by_dim) = split_runs(store)?;
        let id = |r: &Row| Table::get(r, "run_id").and_then(Cell::as_str).unwrap_or_default().to_string();
        let roc = store.load("roc")?;
        let curves = store.load("curves")?;
        let pick = |table: &Table, run: &str, x: &str, y: &str| -> Vec<(f64, f64)> {
            table
                .rows
                .iter()
                .filter(|r| Table::get(r, "run_id").and_then(Cell::as_str) == Some(run))
                .filter_map(|r| Some((f(r, x)?, f(r, y)?)))
                .collect()
        };
        let name = |r: &Row| {
            format!(
                "{} ({})",
                mining_of(r).unwrap_or("?"),
                Table::get(r, "status").and_then(Cell::as_str).unwrap_or("?")
            )
        };
        let roc_series = by_mining
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: name(r),
                points: pick(&roc, &id(r), "far", "val")
                    .into_iter()
                    .filter(|p| p.0 > 0.0)
                    .map(|(x, y)| (x, 100.0 * y))
                    .collect(),
                colour: i,
                markers: false,
                ..Default::default()
            })
            .collect();
        let mut files = save(
            &store.dir().join("roc"),
            &LineFigure {
                title: "FaceNet-style ROC on unseen digits 7-9 (cf. FaceNet, Fig. 5)".into(),
                charts: vec![LineChart {
                    title: "VAL against FAR, all pairs of held-out test images".into(),
                    x_label: "FAR".into(),
                    y_label: "VAL (%)".into(),
                    x_log: true,
                    series: roc_series,
                    ..Default::default()
                }],
                cols: 1,
            },
        )?;
        let spread = by_mining
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: name(r),
                points: pick(&curves, &id(r), "step", "mean_pairwise_distance"),
                colour: i,
                markers: false,
                ..Default::default()
            })
            .collect();
        files.extend(save(
            &store.dir().join("collapse"),
            &LineFigure {
                title: "Collapse: mean pairwise squared distance of a batch's embeddings during training".into(),
                charts: vec![LineChart {
                    title: "2 = spread over the sphere, 0 = f(x) constant".into(),
                    x_label: "iteration".into(),
                    y_label: "mean ‖f(x_i) − f(x_j)‖²".into(),
                    series: spread,
                    ..Default::default()
                }],
                cols: 1,
            },
        )?);
        let ours: Vec<(f64, f64)> = by_dim
            .iter()
            .filter_map(|r| Some((f(r, "feature_dim")?, 100.0 * f(r, "held_out_val_at_far_1e-3")?)))
            .collect();
        let dims = vec![
            Series {
                name: "ours: MNIST digits 7-9, semi-hard".into(),
                points: ours,
                colour: 0,
                markers: true,
                ..Default::default()
            },
            Series {
                name: "paper: Table 5 (NN1, faces)".into(),
                points: PAPER_TABLE5.to_vec(),
                colour: 1,
                markers: true,
                ..Default::default()
            },
        ];
        files.extend(save(
            &store.dir().join("dimension"),
            &LineFigure {
                title: "VAL at FAR = 1e-3 against embedding dimension (cf. FaceNet, Table 5)".into(),
                charts: vec![LineChart {
                    title: String::new(),
                    x_label: "embedding dimension".into(),
                    y_label: "VAL@1e-3 (%)".into(),
                    x_log: true,
                    series: dims,
                    ..Default::default()
                }],
                cols: 1,
            },
        )?);
        Ok(files)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        let (by_mining, by_dim) = split_runs(store)?;
        if by_mining.is_empty() && by_dim.is_empty() {
            return Ok(None);
        }
        let mut table = String::from("| mining | dim | status | held-out VAL@1e-3 | VAL@1e-2 | 10-fold accuracy | precision@1 | MAP@R | final / min mean pairwise d² |\n|---|---|---|---|---|---|---|---|---|\n");
        let mut rows: Vec<&Row> = by_mining.iter().collect();
        rows.extend(by_dim.iter().filter(|r| !by_mining.contains(r)));
        for r in rows {
            let pct = |c: &str| f(r, c).map(fmt_pct).unwrap_or_default();
            table.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
                mining_of(r).unwrap_or_default(),
                f(r, "feature_dim").unwrap_or(f64::NAN),
                Table::get(r, "status").and_then(Cell::as_str).unwrap_or_default(),
                pct("held_out_val_at_far_1e-3"),
                pct("held_out_val_at_far_1e-2"),
                pct("held_out_balanced_verification_accuracy"),
                pct("precision_at_1"),
                pct("map_at_r"),
                f(r, "final_mean_pairwise_distance").map(|v| format!("{v:.3}")).unwrap_or_default(),
                f(r, "min_mean_pairwise_distance").map(|v| format!("{v:.3}")).unwrap_or_default(),
            ));
        }
        let val =
            |m: &str| by_mining.iter().find(|r| mining_of(r) == Some(m)).and_then(|r| f(r, "held_out_val_at_far_1e-3"));
        let (semi, hard) = (val("semi_hard"), val("hardest_negative"));
        let hard_run = by_mining.iter().find(|r| mining_of(r) == Some("hardest_negative"));
        let hard_status = hard_run.and_then(|r| Table::get(r, "status").and_then(Cell::as_str)).unwrap_or("n/a");
        let hard_min = hard_run.and_then(|r| f(r, "min_mean_pairwise_distance"));
        let semi_min = by_mining
            .iter()
            .find(|r| mining_of(r) == Some("semi_hard"))
            .and_then(|r| f(r, "min_mean_pairwise_distance"));
        let dims: Vec<(f64, f64)> =
            by_dim.iter().filter_map(|r| Some((f(r, "feature_dim")?, f(r, "held_out_val_at_far_1e-3")?))).collect();
        let wide: Vec<f64> = dims.iter().filter(|(d, _)| *d >= 32.0).map(|(_, v)| *v).collect();
        // Relative spread over dimensions ≥ 32 (Table 5 varies by 2.6% of its best value).
        let best = wide.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let spread = (best - wide.iter().copied().fold(f64::INFINITY, f64::min)) / best;
        Ok(Some(Section {
            title: "FaceNet (Schroff et al., CVPR 2015): triplet loss and mining".into(),
            claims: vec![
                (
                    "Semi-hard negatives train better than the hardest negatives (held-out VAL at FAR = 1e-3)".into(),
                    "hardest negatives \"can lead to bad local minima early on\"".into(),
                    format!("semi-hard {} vs hardest-negative {}", semi.map(fmt_pct).unwrap_or("n/a".into()), hard.map(fmt_pct).unwrap_or("n/a".into())),
                    match (semi, hard) {
                        (Some(s), Some(h)) if s > h => Verdict::Reproduced,
                        (Some(_), Some(_)) => Verdict::NotReproduced,
                        // A diverged hardest-negative run has no embedding to verify with.
                        (Some(_), None) if hard_run.is_some() => Verdict::Reproduced,
                        _ => Verdict::NotReproduced,
                    },
                ),
                (
                    "Hardest-negative mining can collapse the embedding (f(x) → constant)".into(),
                    "Sec. 3.2 (no numbers)".into(),
                    format!(
                        "hardest-negative run: {hard_status}; smallest mean pairwise d² during training {} (semi-hard: {})",
                        hard_min.map(|v| format!("{v:.3}")).unwrap_or("n/a".into()),
                        semi_min.map(|v| format!("{v:.3}")).unwrap_or("n/a".into())
                    ),
                    if hard_status == STATUS_COLLAPSED {
                        Verdict::Reproduced
                    } else if hard_min.zip(semi_min).is_some_and(|(h, s)| h < 0.5 * s) {
                        Verdict::Partly
                    } else {
                        Verdict::NotReproduced
                    },
                ),
                (
                    "VAL@1e-3 is nearly flat over the embedding dimension (within 5% of the best from 32-D up)".into(),
                    "Table 5: 86.8 / 87.9 / 87.7 / 85.6 % at 64 / 128 / 256 / 512".into(),
                    dims.iter().map(|(d, v)| format!("{d}: {}", fmt_pct(*v))).collect::<Vec<_>>().join(", "),
                    if wide.len() >= 2 && spread <= 0.05 {
                        Verdict::Reproduced
                    } else if wide.len() >= 2 && spread <= 0.15 {
                        Verdict::Partly
                    } else {
                        Verdict::NotReproduced
                    },
                ),
            ],
            body: format!(
                "{table}\n![ROC](facenet/roc.png)\n\n![collapse](facenet/collapse.png)\n\n![dimension](facenet/dimension.png)\n\n\
                 **Deviations.** Identities are digits (train 0-6, test 7-9) and the network is LeNets++ (width {w}) with an L2-normalised \
                 embedding (the paper: Inception-style nets on 260M face images). Batches hold {k} digits × {per} images (the paper: ~40 faces \
                 per identity in batches of ~1,800). SGD with momentum (lr {lr}) instead of AdaGrad. Semi-hard is TF-Addons' batch rule (the \
                 closest negative farther than the positive, else the farthest negative), used for every ordered positive pair. VAL is measured \
                 on all pairs of {n} held-out test images with the threshold chosen on nine folds (FaceNet: 5 splits of 100k×100k pairs).\n",
                w = by_mining.first().and_then(|r| f(r, "width")).unwrap_or(f64::NAN),
                k = by_mining.first().and_then(|r| f(r, "classes_per_batch")).unwrap_or(f64::NAN),
                per = by_mining.first().and_then(|r| Some(f(r, "batch_size")? / f(r, "classes_per_batch")?)).unwrap_or(f64::NAN),
                lr = by_mining.first().and_then(|r| f(r, "base_lr")).unwrap_or(f64::NAN),
                n = by_mining.first().and_then(|r| f(r, "val_images")).unwrap_or(f64::NAN),
            ),
        }))
    }
}
