//! `sphereface`: A-Softmax's margin m on 2-D MNIST features, the appendix figure of Liu et al.,
//! CVPR 2017 (arXiv v3): LeNets++ with a 2-D PReLU feature, class weights normalised, the
//! feature not, m ∈ {1, 2, 3, 4}, λ annealed as the authors' prototxt does. The claims: the
//! classes narrow in angle and their angular Fisher score falls as m grows.

pub mod claims;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::hypersphere::{self, MarginConfig, MarginLoss};
use super::setup::{first_of_each, parse, seeds, ALL_DIGITS};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::results::Store;
use crate::verdict::Section;

pub fn config(profile: Profile) -> MarginConfig {
    MarginConfig::base(profile, MarginLoss::SphereFace, ALL_DIGITS.len())
}

pub struct SphereFace;

impl Experiment for SphereFace {
    fn name(&self) -> &'static str {
        "sphereface"
    }

    fn about(&self) -> &'static str {
        "SphereFace (A-Softmax) appendix: 2-D MNIST features for m = 1, 2, 3, 4 (λ annealed), angular Fisher score"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        Ok(vec![Sweep::new(&config(profile)).axis("m", &[1usize, 2, 3, 4]).axis("seed", seeds(profile))])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: MarginConfig = parse(config)?;
        anyhow::ensure!(c.loss == MarginLoss::SphereFace, "sphereface trains loss = sphereface, got {:?}", c.loss);
        c.check()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        hypersphere::run(ctx, &parse(config)?)
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let current = store.current_runs()?;
        let runs: Vec<_> =
            first_of_each(current.records(), "m")?.into_iter().map(|(m, r)| (format!("m = {m}"), r)).collect();
        hypersphere::draw_features(
            store,
            "features",
            "A-Softmax's m, train (top) and test (bottom) (cf. SphereFace, appendix)",
            &runs,
        )
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?)
    }
}
