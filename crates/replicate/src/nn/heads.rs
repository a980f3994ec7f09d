//! Heads on top of the deep feature: a bias-free linear classifier (softmax papers), the
//! L-Softmax layer, class weights compared by angle (NormFace, SphereFace, CosFace, ArcFace), or
//! an L2-normalised embedding (FaceNet).

use super::params::Init;
use crate::losses::{margin_test_logits, AngularMargin, LSoftmax};
use candle_core::{Result, Tensor};

/// Which head a model gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HeadKind {
    /// Bias-free linear classifier W ∈ R^{C×D} (caffe-face's ip2 with `bias_term: false`).
    Linear { classes: usize },
    /// L-Softmax with margin m (its test logits are the same x·Wᵀ).
    LSoftmax { classes: usize, m: usize },
    /// Class weights W ∈ R^{C×D} whose logits are cos θ_j (the normalised-softmax family; the
    /// margin, the scale and SphereFace's ‖x‖ belong to the training objective, and none of them
    /// changes which class has the largest cosine).
    Cosine { classes: usize },
    /// x / ‖x‖₂, no classifier.
    Embedding,
}

pub enum Head {
    Linear(Tensor),
    LSoftmax(LSoftmax),
    Cosine(Tensor),
    Embedding,
}

impl Head {
    pub fn new(kind: HeadKind, feature_dim: usize, init: &mut Init) -> Result<Head> {
        let mut weight = |classes: usize| -> Result<Tensor> {
            Ok(init.xavier("head.weight".into(), &[classes, feature_dim], feature_dim)?.as_tensor().clone())
        };
        Ok(match kind {
            HeadKind::Linear { classes } => Head::Linear(weight(classes)?),
            HeadKind::LSoftmax { classes, m } => Head::LSoftmax(LSoftmax::new(weight(classes)?, m)?),
            HeadKind::Cosine { classes } => Head::Cosine(weight(classes)?),
            HeadKind::Embedding => Head::Embedding,
        })
    }

    /// Logits used for prediction (plain x·Wᵀ for the linear and L-Softmax heads, cos θ for the
    /// cosine head).
    pub fn logits(&self, features: &Tensor) -> Result<Option<Tensor>> {
        match self {
            Head::Linear(w) => Ok(Some(features.matmul(&w.t()?)?)),
            Head::LSoftmax(l) => Ok(Some(l.test_logits(features)?)),
            Head::Cosine(w) => Ok(Some(margin_test_logits(features, w, AngularMargin::NormFace { scale: 1.0 })?)),
            Head::Embedding => Ok(None),
        }
    }

    /// The classifier's weight matrix, if any.
    pub fn weight(&self) -> Option<&Tensor> {
        match self {
            Head::Linear(w) => Some(w),
            Head::LSoftmax(l) => Some(l.weight()),
            Head::Cosine(w) => Some(w),
            Head::Embedding => None,
        }
    }
}

/// Row-wise x / ‖x‖₂ with a finite gradient at x = 0.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let eps = if x.dtype() == candle_core::DType::F64 { 1e-24 } else { 1e-12 };
    x.broadcast_div(&(x.sqr()?.sum_keepdim(1)? + eps)?.sqrt()?)
}
