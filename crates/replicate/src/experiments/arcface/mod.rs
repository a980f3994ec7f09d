//! `arcface`: the 2-D toy of Deng et al., CVPR 2019 (Fig. 3): eight identities (the digits
//! 0-7), NormFace (Norm-Softmax) against ArcFace's additive angular margin m = 0.5, and the
//! target-logit curves of its Fig. 4(b), drawn exactly from the formulas.

pub mod claims;
mod curves;

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
/// ArcFace's m (radians), the paper's setting.
pub const MARGIN: f64 = 0.5;

pub struct ArcFace;

impl Experiment for ArcFace {
    fn name(&self) -> &'static str {
        "arcface"
    }

    fn about(&self) -> &'static str {
        "ArcFace toy (Fig. 3): 2-D features of 8 digits, NormFace vs ArcFace (m = 0.5), and the target-logit curves"
    }

    fn sweeps(&self, profile: Profile, _results_dir: &Path) -> Result<Vec<Sweep>> {
        let normface = MarginConfig::base(profile, MarginLoss::NormFace, CLASSES);
        let arcface = MarginConfig { margin: MARGIN, ..MarginConfig::base(profile, MarginLoss::ArcFace, CLASSES) };
        Ok([(normface, MarginLoss::NormFace), (arcface, MarginLoss::ArcFace)]
            .into_iter()
            .map(|(config, loss)| Sweep::new(&config).axis("loss", &[loss]).axis("seed", seeds(profile)))
            .collect())
    }

    fn check(&self, config: &Map<String, Value>) -> Result<()> {
        let c: MarginConfig = parse(config)?;
        anyhow::ensure!(
            matches!(c.loss, MarginLoss::NormFace | MarginLoss::ArcFace),
            "arcface trains loss = normface or arcface, got {:?}",
            c.loss
        );
        c.check()
    }

    fn run(&self, ctx: &RunContext, config: &Map<String, Value>) -> Result<RunOutcome> {
        hypersphere::run(ctx, &parse(config)?)
    }

    fn figures(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let current = store.current_runs()?;
        let mut files = hypersphere::draw_features(
            store,
            "features",
            "NormFace and ArcFace (m = 0.5), 8 digits, train (top) and test (bottom) (cf. ArcFace, Fig. 3)",
            &claims::drawn_runs(&current)?,
        )?;
        files.extend(curves::draw(&store.dir().join("target_logits"))?);
        Ok(files)
    }

    fn report(&self, store: &Store) -> Result<Option<Section>> {
        claims::section(&store.current_runs()?)
    }
}
