//! The leaderboard's λ: chosen from the complete deepid2 and center-loss sweeps and recorded as a
//! selection, which the leaderboard's sweeps read.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::experiments::{center_loss, deepid2, Chosen};
use crate::results::Store;
use crate::verdict::lambda_label;

/// The selection the leaderboard's λ come from.
pub const LAMBDA_SELECTION: &str = "leaderboard-lambdas";

/// DeepID2's best interior λ (held-out verification) and the largest center-loss λ whose test
/// accuracy stays within 0.5 points of softmax alone, from their complete recorded sweeps (the
/// papers' values where a sweep has no such λ), as the values of [`LAMBDA_SELECTION`].
pub(super) fn choose_lambdas(results_dir: &Path) -> Result<Chosen> {
    let mut source = Vec::new();
    let runs = Store::new(results_dir, "deepid2").current_runs()?;
    let contrastive = match deepid2::claims::best_interior(&deepid2::claims::by_lambda(&runs)?)? {
        Some((l, _)) => {
            source.push(format!("contrastive λ = {} from results/deepid2", lambda_label(l)));
            l
        }
        None => {
            source.push("contrastive λ = 0.05 (the paper's; no finished interior λ in results/deepid2)".into());
            0.05
        }
    };
    let runs = Store::new(results_dir, "center-loss").current_runs()?;
    let center = match center_loss::claims::largest_harmless_lambda(&center_loss::claims::by_lambda(&runs)?)? {
        Some(l) => {
            source.push(format!("center λ = {} from results/center-loss", lambda_label(l)));
            l
        }
        None => {
            source.push("center λ = 0.01 (caffe-face's loss_weight; no such λ in results/center-loss)".into());
            0.01
        }
    };
    let values = [("contrastive_lambda", contrastive), ("center_lambda", center)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    Ok((values, source.join("; ")))
}
