//! `softmax-baseline`: the center-loss paper's Fig. 2 (Wen et al., ECCV 2016, Sec. 3.4):
//! LeNets++ with a 2-D PReLU feature and a bias-free 10-way softmax head, trained with softmax
//! alone. The deep features spread out as radial "spokes", one per digit, separable by angle
//! but far from compact.

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
use crate::objectives::Softmax;
use crate::results::Store;
use crate::train::embed;
use crate::verdict::Section;

pub struct SoftmaxBaseline;

impl Experiment for SoftmaxBaseline {
    fn name(&self) -> &'static str {
        "softmax-baseline"
    }

    fn about(&self) -> &'static str {
        "center loss Fig. 2: 2-D softmax features of LeNets++ on MNIST (train and test)"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        Ok(vec![Sweep::new(&lenetspp_2d(profile)).over_seeds(profile)])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        parse::<Common>(config)?.check()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        let cfg: Common = parse(config)?;
        let data = ctx.data.mnist()?;
        let model = cfg.model(HeadKind::Linear { classes: 10 }, ctx)?;
        let train_pool = cfg.train_pool(&data.train, &ALL_DIGITS);
        let test_pool = cfg.test_pool(&data.test, &ALL_DIGITS);
        let mut sampler = cfg.shuffled(train_pool.clone());
        let mut hook = accuracy_hook(data, test_pool.iter().copied().take(1000).collect(), ctx);
        let training = train_or_diverge(&cfg, &model, &mut Softmax, &data.train, sampler.as_mut(), ctx, &mut hook)?;
        finish_run(&training, |out| {
            let test = embed(&model, &data.test, &test_pool, ctx.device)?;
            let train_sample = plot_sample(&train_pool, cfg.plot_points, "plot-train");
            let train = embed(&model, &data.train, &train_sample, ctx.device)?;
            out.metrics.push(("test_accuracy".into(), classifier_accuracy(&test)?.into()));
            out.metrics.push(("train_accuracy".into(), classifier_accuracy(&train)?.into()));
            out.metrics.extend(compactness_metrics(&test));
            let mut rows = feature_rows("train", &train, &train_sample, cfg.plot_points);
            rows.extend(feature_rows("test", &test, &test_pool, cfg.plot_points));
            out.tables.push(("features".into(), rows));
            Ok(())
        })
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        figures::draw(store)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?, &store.load("features")?)
    }
}
