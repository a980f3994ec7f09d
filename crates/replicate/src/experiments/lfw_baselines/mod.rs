//! `lfw-baselines`: the classical descriptors every learned face feature stands beside, on LFW's
//! own protocol (Huang et al., UMass TR 07-49, 2007, Sec. 4), with nothing trained: raw pixels by
//! cosine distance, plain and centred on the training images' mean, and uniform-LBP histograms
//! by χ² distance (Ahonen, Hadid, Pietikäinen, ECCV 2004), all defined in `crate::descriptors`.
//!
//! View 1 (development): the threshold maximising accuracy on the 2,200 training pairs is applied
//! to the 1,000 test pairs. View 2: for each of the ten folds of disjoint people, the threshold
//! (and, for centred pixels, the mean image) comes from the other nine folds' pairs and people,
//! and the fold's 600 pairs are scored. The ten folds are the replicates: mean, sample std (n − 1)
//! and standard error std/√10, as the LFW results page prints them.
//!
//! The descriptors' settings are fixed here, not tuned: the whole 64×64 image, LBP(8, 1) on an
//! 8×8 grid of cells (8 px each, Ahonen et al.'s 7×7 grid on 130×150 images at about our scale).

pub mod claims;
mod figures;

use std::path::{Path, PathBuf};

use anyhow::Result;
use rayon::prelude::*;
use serde_json::{Map, Value};

use super::setup::parse;
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::data::{Dataset, FacePair, Lfw};
use crate::descriptors::{chi_square, cosine_distance, lbp_histograms, mean_image};
use crate::results::{Cell, Row, Store, STATUS_FINISHED};
use crate::verdict::Section;

pub struct LfwBaselines;

/// A descriptor and its distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Raw pixels, cosine distance.
    Pixels,
    /// Raw pixels minus the mean image of the training people's images, cosine distance.
    CentredPixels,
    /// Uniform LBP(8, 1) histograms on a grid of cells, χ² distance.
    Lbp,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Pixels, Method::CentredPixels, Method::Lbp];

    pub fn name(&self) -> &'static str {
        match self {
            Method::Pixels => "pixels",
            Method::CentredPixels => "centred_pixels",
            Method::Lbp => "lbp",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub method: Method,
    /// Cells per side of the LBP grid (LBP only).
    pub lbp_cells: usize,
}

impl Experiment for LfwBaselines {
    fn name(&self) -> &'static str {
        "lfw-baselines"
    }

    fn about(&self) -> &'static str {
        "LFW View 1 and View 2 with nothing trained: raw pixels (cosine) and uniform LBP (χ²)"
    }

    fn datasets(&self) -> &'static [Dataset] {
        &[Dataset::Lfw]
    }

    /// Every profile scores the full protocol: it takes seconds.
    fn sweeps(&self, _profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        Ok(vec![Sweep::new(&Config { method: Method::Pixels, lbp_cells: 8 }).axis("method", &Method::ALL)])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let cfg: Config = parse(config)?;
        let inner = crate::data::lfw::SIDE - 2;
        anyhow::ensure!(
            (1..=inner).contains(&cfg.lbp_cells),
            "lbp_cells takes 1 to {inner} cells per side of the {0}×{0} image, got {1}",
            crate::data::lfw::SIDE,
            cfg.lbp_cells
        );
        Ok(())
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let lfw = ctx.data.lfw()?;
        let mut progress = crate::progress::Progress::new(&ctx.progress_label, 11);
        let mut folds: Vec<Row> = Vec::new();

        let view1: Vec<FacePair> = lfw.view1_train_pairs.iter().chain(&lfw.view1_test_pairs).copied().collect();
        let held_out: Vec<bool> = (0..view1.len()).map(|i| i >= lfw.view1_train_pairs.len()).collect();
        let dist = distances(&cfg, lfw, &view1, &lfw.view1_train_people);
        let view1_same: Vec<bool> = view1.iter().map(|p| p.same).collect();
        let (view1_accuracy, view1_threshold) = crate::metrics::held_out_accuracy(&dist, &view1_same, &held_out);
        folds.push(fold_row("view1", 0, view1_accuracy, view1_threshold));
        progress.update(1, "View 1 scored");

        let pairs = &lfw.view2_pairs;
        let same: Vec<bool> = pairs.iter().map(|p| p.same).collect();
        // Only centred pixels learn from the training folds (their mean image); the others' distances are one set.
        let fixed = (cfg.method != Method::CentredPixels).then(|| distances(&cfg, lfw, pairs, &[]));
        let (mut accuracies, mut pooled) = (Vec::new(), vec![f64::NAN; pairs.len()]);
        for k in 0..lfw.view2_fold_people.len() {
            let held_out: Vec<bool> = pairs.iter().map(|p| p.fold == k).collect();
            let of_fold;
            let dist: &[f64] = match &fixed {
                Some(d) => d,
                None => {
                    let people: Vec<u32> = (0..lfw.view2_fold_people.len())
                        .filter(|&f| f != k)
                        .flat_map(|f| lfw.view2_fold_people[f].iter().copied())
                        .collect();
                    of_fold = distances(&cfg, lfw, pairs, &people);
                    &of_fold
                }
            };
            let (accuracy, threshold) = crate::metrics::held_out_accuracy(dist, &same, &held_out);
            folds.push(fold_row("view2", k, accuracy, threshold));
            accuracies.push(accuracy);
            for (i, _) in held_out.iter().enumerate().filter(|(_, &h)| h) {
                pooled[i] = dist[i];
            }
            progress.update(2 + k as u64, &format!("View 2 fold {} of 10", k + 1));
        }
        progress.finish();

        let roc = crate::metrics::roc(&pooled, &same, 200)
            .iter()
            .map(|&(far, val, t)| {
                vec![("far".into(), far.into()), ("val".into(), val.into()), ("threshold".into(), t.into())]
            })
            .collect();
        let std = crate::stats::sample_std(&accuracies);
        let metrics: Vec<(String, Cell)> = vec![
            ("view1_test_accuracy".into(), view1_accuracy.into()),
            ("view1_threshold".into(), view1_threshold.into()),
            ("view2_accuracy_mean".into(), crate::stats::mean(&accuracies).into()),
            ("view2_accuracy_std".into(), std.into()),
            ("view2_accuracy_se".into(), (std / (accuracies.len() as f64).sqrt()).into()),
        ];
        Ok(RunOutcome {
            status: STATUS_FINISHED.into(),
            note: String::new(),
            metrics,
            tables: vec![("folds".into(), folds), ("roc".into(), roc)],
            weights: Vec::new(),
        })
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?, &store.load("folds")?)
    }
}

/// The distance of every pair under `cfg`'s descriptor; `train_people` are the people whose mean
/// image centred pixels subtract (ignored by the other methods).
fn distances(cfg: &Config, lfw: &Lfw, pairs: &[FacePair], train_people: &[u32]) -> Vec<f64> {
    let pixels = crate::data::lfw::PIXELS;
    let image = |i: usize| &lfw.images[i * pixels..(i + 1) * pixels];
    match cfg.method {
        Method::Pixels | Method::CentredPixels => {
            let offset = if cfg.method == Method::Pixels {
                vec![0.0; pixels]
            } else {
                mean_image(&lfw.images, pixels, &lfw.images_of(train_people))
            };
            pairs.par_iter().map(|p| cosine_distance(image(p.a), image(p.b), &offset)).collect()
        }
        Method::Lbp => {
            let side = crate::data::lfw::SIDE;
            pairs
                .par_iter()
                .map(|p| {
                    chi_square(
                        &lbp_histograms(image(p.a), side, cfg.lbp_cells),
                        &lbp_histograms(image(p.b), side, cfg.lbp_cells),
                    )
                })
                .collect()
        }
    }
}

fn fold_row(view: &str, fold: usize, accuracy: f64, threshold: f64) -> Row {
    vec![
        ("view".into(), view.into()),
        ("fold".into(), fold.into()),
        ("accuracy".into(), accuracy.into()),
        ("threshold".into(), threshold.into()),
    ]
}
