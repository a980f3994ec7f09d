//! # L-Softmax cross-entropy with λ annealing — Liu et al., ICML 2016, Sec. 3, Eqs. 4-7
//!
//! ```text
//! L = −log( exp(f_y) / Σ_j exp(f_j) ),   f_y = (λ‖W_y‖‖x‖cos θ_y + ‖W_y‖‖x‖ψ(θ_y)) / (1 + λ)
//! λ(iter) = max(λ_min, base·(1 + γ·iter)^(−power))
//! ```
//!
//! Variant: the authors' `LargeMarginInnerProduct` layer ([`crate::losses::LSoftmax`]) with their
//! annealing, γ rescaled so that λ reaches 1e-3 at a chosen fraction of the run.

use candle_core::{Result, Tensor};

use super::{LossTerms, Objective};
use crate::losses::{softmax_loss, LSoftmax, LambdaSchedule};
use crate::nn::ModelOutput;

/// −ln(FLT_MIN): the loss Caffe reports once the target's probability underflows (the authors' issues #3, #10).
pub const CAFFE_PLATEAU: f64 = 87.3365;

/// The λ annealing's settings (configs flatten them: keys `lambda_base`, `lambda_power`,
/// `lambda_min`, `lambda_reaches_1e3_at`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LambdaAnnealing {
    pub lambda_base: f64,
    pub lambda_power: f64,
    pub lambda_min: f64,
    /// λ falls to 1e-3 at this fraction of training (the authors' γ puts it at about 2/3 of 30k).
    pub lambda_reaches_1e3_at: f64,
}

impl LambdaAnnealing {
    /// The authors' base 1000, power 35 and λ_min 0, reaching 1e-3 at 2/3 of the run.
    pub fn authors() -> LambdaAnnealing {
        LambdaAnnealing { lambda_base: 1000.0, lambda_power: 35.0, lambda_min: 0.0, lambda_reaches_1e3_at: 2.0 / 3.0 }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.lambda_reaches_1e3_at > 0.0,
            "lambda_reaches_1e3_at must be > 0, got {}",
            self.lambda_reaches_1e3_at
        );
        Ok(())
    }

    /// The authors' base, power and λ_min, with γ rescaled to a run of `iterations`.
    pub fn schedule(&self, iterations: u64) -> LambdaSchedule {
        let at = ((iterations as f64) * self.lambda_reaches_1e3_at).round().max(1.0) as u64;
        LambdaSchedule::rescaled(self.lambda_base, self.lambda_power, self.lambda_min, 1e-3, at)
    }
}

/// Cross-entropy of the L-Softmax training logits, with λ annealed per iteration.
pub struct LSoftmaxLoss {
    pub layer: LSoftmax,
    pub schedule: LambdaSchedule,
}

impl Objective for LSoftmaxLoss {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, step: u64) -> Result<LossTerms> {
        // The authors' layer increments its iteration counter before using it.
        let lambda = self.schedule.at(step + 1);
        let loss = softmax_loss(&self.layer.train_logits(&out.features, labels, lambda)?, labels)?;
        Ok(LossTerms { terms: vec![("loss", loss)], stats: vec![("lambda", lambda)] })
    }

    fn diverged(&self, terms: &[(&'static str, f64)]) -> Option<String> {
        let loss = terms.iter().find(|(n, _)| *n == "loss")?.1;
        (loss >= CAFFE_PLATEAU).then(|| {
            format!(
                "the loss reached {loss:.2} ≥ {CAFFE_PLATEAU} (Caffe's plateau, the target's probability underflowing)"
            )
        })
    }
}
