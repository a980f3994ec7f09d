//! `cosface`: the 2-D toy of Wang et al., CVPR 2018 (Sec. 4.1, Fig. 3): eight identities (here
//! the digits 0-7), softmax against the large-margin cosine loss at m = 0, 0.1 and 0.2, plus
//! m = 0.35 (the paper's face setting), above its bound for 2-D features, 1 − cos(2π/8) = 0.293.

pub mod claims;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value};

use super::hypersphere::{self, MarginConfig, MarginLoss};
use super::setup::{parse, seeds};
use super::{Experiment, Profile, RunContext, RunOutcome, Sweep};
use crate::results::Store;
use crate::verdict::Section;

/// The paper's toy uses eight identities.
pub const CLASSES: usize = 8;
/// m = 0, 0.1, 0.2 as in Fig. 3, and the paper's face setting 0.35, above the 2-D bound.
pub const MARGINS: [f64; 4] = [0.0, 0.1, 0.2, 0.35];

pub struct CosFace;

impl Experiment for CosFace {
    fn name(&self) -> &'static str {
        "cosface"
    }

    fn about(&self) -> &'static str {
        "CosFace toy (Fig. 3): 2-D features of 8 digits, softmax vs cosine margins 0, 0.1, 0.2 and 0.35 (above the 2-D bound)"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        let softmax = MarginConfig::base(profile, MarginLoss::Softmax, CLASSES);
        let cosface = MarginConfig::base(profile, MarginLoss::CosFace, CLASSES);
        Ok(vec![
            // The loss in softmax's labels, which must differ from the margins'.
            Sweep::new(&softmax).axis("loss", &[MarginLoss::Softmax]).axis("seed", seeds(profile)),
            Sweep::new(&cosface).axis("margin", &MARGINS).axis("seed", seeds(profile)),
        ])
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: MarginConfig = parse(config)?;
        anyhow::ensure!(
            matches!(c.loss, MarginLoss::Softmax | MarginLoss::CosFace),
            "cosface trains loss = softmax or cosface, got {:?}",
            c.loss
        );
        c.check()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        hypersphere::run(ctx, &parse(config)?)
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let current = store.current_runs()?;
        let runs: Vec<_> = claims::drawn_runs(&current)?;
        hypersphere::draw_features(
            store,
            "features",
            "Softmax and CosFace's margins, 8 digits, train (top) and test (bottom) (cf. CosFace, Fig. 3)",
            &runs,
        )
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?)
    }
}
