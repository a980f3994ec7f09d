//! # Softmax cross-entropy — the identification signal of every softmax paper
//!
//! ```text
//! L_S = −(1/N) Σ_i log( exp(W_{y_i}·x_i) / Σ_j exp(W_j·x_i) )
//! ```
//!
//! Variant: a bias-free classifier (caffe-face's `ip2` with `bias_term: false`).

use candle_core::{Result, Tensor};

use super::{logits, LossTerms, Objective};
use crate::losses::softmax_loss;
use crate::nn::ModelOutput;

/// Softmax cross-entropy on the classifier's logits.
pub struct Softmax;

impl Objective for Softmax {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, _step: u64) -> Result<LossTerms> {
        Ok(LossTerms::total(softmax_loss(logits(out, "softmax")?, labels)?))
    }
}
