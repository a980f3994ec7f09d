//! `center-loss`: the λ sweep of Wen et al., ECCV 2016, Fig. 3 (Sec. 3.4). LeNets++ with a 2-D
//! PReLU feature and a bias-free softmax head, trained with L = L_S + λ·L_C; the centers move by
//! the paper's Eq. 4 with α = 0.5. The claim: as λ grows, each digit's features gather ever more
//! tightly around its center while the classes stay separable.

pub mod claims;
mod figures;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::setup::{
    accuracy_hook, classifier_accuracy, compactness_metrics, feature_rows, finish_run, lenetspp_2d, parse, plot_sample,
    train_or_diverge, Common, ALL_DIGITS,
};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::nn::HeadKind;
use crate::objectives::{CenterSettings, CenterUpdate};
use crate::results::{Cell, Row, Store};
use crate::train::embed;
use crate::verdict::Section;

pub const LAMBDAS: [f64; 5] = [0.0, 1e-4, 1e-3, 1e-2, 1e-1];

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: Common,
    pub lambda: f64,
    #[serde(flatten)]
    pub center: CenterSettings,
}

/// One run of the sweep (λ = 0) on `profile`: Fig. 2's network and solver, shorter on the quick
/// profile, and the paper's center update with α = 0.5.
pub fn config(profile: Profile) -> Config {
    let common = lenetspp_2d(profile);
    let common = match profile {
        Profile::Quick => Common { iterations: 1_000, lr_milestones: vec![600, 850], ..common },
        _ => common,
    };
    Config { common, lambda: 0.0, center: CenterSettings { alpha: 0.5, center_update: CenterUpdate::Paper } }
}

pub struct CenterLossExperiment;

impl Experiment for CenterLossExperiment {
    fn name(&self) -> &'static str {
        "center-loss"
    }

    fn about(&self) -> &'static str {
        "center loss Fig. 3: 2-D features under softmax + λ·center loss, λ swept"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        Ok(vec![Sweep::new(&config(profile)).axis("lambda", &LAMBDAS).over_seeds(profile)])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: Config = parse(config)?;
        c.common.check()?;
        anyhow::ensure!(
            c.lambda >= 0.0 && c.lambda.is_finite(),
            "lambda must be a finite number ≥ 0, got {}",
            c.lambda
        );
        c.center.check()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Config = parse(config)?;
        let c = &cfg.common;
        let data = ctx.data.mnist()?;
        let model = c.model(HeadKind::Linear { classes: 10 }, ctx)?;
        let train_pool = c.train_pool(&data.train, &ALL_DIGITS);
        let test_pool = c.test_pool(&data.test, &ALL_DIGITS);
        let mut sampler = c.shuffled(train_pool.clone());
        let mut objective =
            cfg.center.objective(cfg.lambda, 10, c.feature_dim, c.train_config().lr, c.momentum, ctx.device)?;
        let mut hook = accuracy_hook(data, test_pool.iter().copied().take(1000).collect(), ctx);
        let training = train_or_diverge(c, &model, &mut objective, &data.train, sampler.as_mut(), ctx, &mut hook)?;
        finish_run(&training, |out| {
            let test = embed(&model, &data.test, &test_pool, ctx.device)?;
            let train_sample = plot_sample(&train_pool, c.plot_points, "plot-train");
            let train = embed(&model, &data.train, &train_sample, ctx.device)?;
            let centers: Vec<f32> = objective.center.centers().flatten_all()?.to_vec1()?;
            let nearest = crate::metrics::nearest_center(&test.features, test.dim, &centers);
            out.metrics.push(("test_accuracy".into(), classifier_accuracy(&test)?.into()));
            out.metrics
                .push(("nearest_center_accuracy".into(), crate::metrics::accuracy(&nearest, &test.labels).into()));
            out.metrics.push(("train_accuracy".into(), classifier_accuracy(&train)?.into()));
            out.metrics.extend(compactness_metrics(&test));
            let mut rows = feature_rows("train", &train, &train_sample, c.plot_points);
            rows.extend(feature_rows("test", &test, &test_pool, c.plot_points));
            out.tables.push(("features".into(), rows));
            let center_rows: Vec<Row> = centers
                .chunks(test.dim)
                .enumerate()
                .map(|(class, v)| {
                    let mut row: Row = vec![("class".into(), class.into())];
                    row.extend(v.iter().enumerate().map(|(d, &x)| (format!("c{d}"), Cell::F64(x as f64))));
                    row
                })
                .collect();
            out.tables.push(("centers".into(), center_rows));
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
