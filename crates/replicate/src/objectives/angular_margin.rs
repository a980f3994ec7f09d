//! # Normalised softmax with a margin: NormFace, CosFace (LMCL), ArcFace, SphereFace (A-Softmax)
//!
//! ```text
//! L = −log( exp(f_iy) / Σ_j exp(f_ij) ),   f = losses::margin_logits(x, W, y, margin)
//! SphereFace: λ(iter) = max(λ_min, base·(1 + γ·iter)^(−power)),  base 1000, power 1, λ_min 5
//! ```
//!
//! Variant: cross-entropy of [`crate::losses::margin_logits`] (the equations are in that file)
//! against the cosine head's class weights. SphereFace anneals λ as its authors' prototxt does
//! (γ 0.12, reaching λ_min near iteration 1,660 of 28,000); a shorter run rescales γ so that λ
//! reaches λ_min at the same fraction of training.

use candle_core::{Result, Tensor};

use super::{LossTerms, Objective};
use crate::losses::{margin_logits, softmax_loss, AngularMargin, LambdaSchedule};
use crate::nn::ModelOutput;

/// The SphereFace prototxt's λ: base 1000, power 1, λ_min 5, γ 0.12 over 28,000 iterations.
pub const SPHEREFACE_AUTHORS_ITERATIONS: u64 = 28_000;
pub const SPHEREFACE_AUTHORS_GAMMA: f64 = 0.12;

/// SphereFace's λ annealing as configs flatten it (keys `lambda_base`, `lambda_power`,
/// `lambda_min`, `lambda_min_at`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SphereAnnealing {
    pub lambda_base: f64,
    pub lambda_power: f64,
    pub lambda_min: f64,
    /// λ reaches λ_min at this fraction of training (past 1: not within the run).
    pub lambda_min_at: f64,
}

impl SphereAnnealing {
    /// The authors' base 1000, power 1 and λ_min 5, reaching λ_min where their γ = 0.12 does in
    /// their 28,000 iterations (5.9 % of the run).
    pub fn authors() -> SphereAnnealing {
        let reaches = ((1000.0f64 / 5.0) - 1.0) / SPHEREFACE_AUTHORS_GAMMA;
        SphereAnnealing {
            lambda_base: 1000.0,
            lambda_power: 1.0,
            lambda_min: 5.0,
            lambda_min_at: reaches / SPHEREFACE_AUTHORS_ITERATIONS as f64,
        }
    }

    /// The authors' schedule itself, γ = 0.12 per iteration, whatever the length of the run:
    /// λ reaches λ_min at iteration 1,658 (after a run of `iterations` shorter than that ends).
    pub fn authors_absolute(iterations: u64) -> SphereAnnealing {
        let authors = SphereAnnealing::authors();
        let at = authors.lambda_min_at * SPHEREFACE_AUTHORS_ITERATIONS as f64 / iterations.max(1) as f64;
        SphereAnnealing { lambda_min_at: at, ..authors }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.lambda_base > self.lambda_min && self.lambda_min >= 0.0 && self.lambda_power > 0.0,
            "SphereFace's λ needs lambda_base > lambda_min ≥ 0 and lambda_power > 0, got base {}, min {}, power {}",
            self.lambda_base,
            self.lambda_min,
            self.lambda_power
        );
        anyhow::ensure!(
            self.lambda_min_at > 0.0 && self.lambda_min_at.is_finite(),
            "lambda_min_at must be a finite fraction of training > 0 (past 1: λ reaches λ_min after the run), got {}",
            self.lambda_min_at
        );
        Ok(())
    }

    /// The schedule for a run of `iterations`: γ such that λ = λ_min at `lambda_min_at` of it.
    pub fn schedule(&self, iterations: u64) -> LambdaSchedule {
        let at = ((iterations as f64) * self.lambda_min_at).round().max(1.0) as u64;
        LambdaSchedule::rescaled(self.lambda_base, self.lambda_power, self.lambda_min, self.lambda_min, at)
    }
}

/// Cross-entropy of the margin logits against `weight` (the cosine head's class weights), with
/// SphereFace's λ annealed per iteration when `lambda` is set.
pub struct AngularMarginLoss {
    pub weight: Tensor,
    pub margin: AngularMargin,
    pub lambda: Option<LambdaSchedule>,
}

impl AngularMarginLoss {
    /// The margin at `step`, SphereFace's λ taken from the schedule (the authors' layer counts
    /// the iteration before using it, as L-Softmax's does).
    pub fn margin_at(&self, step: u64) -> AngularMargin {
        match (self.margin, &self.lambda) {
            (AngularMargin::SphereFace { m, .. }, Some(schedule)) => {
                AngularMargin::SphereFace { m, lambda: schedule.at(step + 1) }
            }
            (margin, _) => margin,
        }
    }
}

impl Objective for AngularMarginLoss {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, step: u64) -> Result<LossTerms> {
        let margin = self.margin_at(step);
        let logits = margin_logits(&out.features, &self.weight, labels, margin)?;
        let loss = softmax_loss(&logits, labels)?;
        let mut stats = Vec::new();
        if let AngularMargin::SphereFace { lambda, .. } = margin {
            stats.push(("lambda", lambda));
        }
        // The mean angle between a feature and its class weight (ArcFace's Fig. 5 follows it
        // from ~90° at initialisation down).
        let cos = margin_logits(
            &out.features.detach(),
            &self.weight.detach(),
            labels,
            AngularMargin::NormFace { scale: 1.0 },
        )?;
        let target = cos
            .gather(&labels.to_dtype(candle_core::DType::U32)?.unsqueeze(1)?, 1)?
            .to_dtype(candle_core::DType::F64)?;
        let angles: Vec<f64> = target.flatten_all()?.to_vec1::<f64>()?.iter().map(|c| c.acos().to_degrees()).collect();
        stats.push(("target_angle", angles.iter().sum::<f64>() / angles.len().max(1) as f64));
        // The loss ignores ‖x‖ (bar SphereFace's logits), so nothing holds it: logged to show it.
        let norms = out.features.detach().sqr()?.sum(1)?.sqrt()?.mean_all()?.to_dtype(candle_core::DType::F64)?;
        stats.push(("feature_norm", norms.to_scalar::<f64>()?));
        Ok(LossTerms { terms: vec![("loss", loss)], stats })
    }
}
