//! # Triplet loss with online mining — FaceNet, Schroff et al., CVPR 2015, Sec. 3.1-3.2, Eq. 1
//!
//! ```text
//! L = Σ_{(a,p,n)} max(0, ‖f(a) − f(p)‖² − ‖f(a) − f(n)‖² + α),   ‖f(x)‖ = 1
//! ```
//!
//! Variant: every ordered positive pair of a P × K batch, its negative chosen by a named mining
//! rule ([`crate::losses::Mining`]: semi-hard as in TF-Addons, hardest negative, …), kept apart
//! from the loss as in pytorch-metric-learning.

use candle_core::{DType, Result, Tensor};

use super::{LossTerms, Objective};
use crate::losses::{Distance, Mining, TripletLoss};
use crate::nn::ModelOutput;

/// The triplet loss's settings (configs flatten them: keys `margin`, `mining`, `distance`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TripletSettings {
    pub margin: f64,
    pub mining: Mining,
    pub distance: Distance,
}

impl TripletSettings {
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.margin >= 0.0, "margin must be ≥ 0, got {}", self.margin);
        Ok(())
    }

    pub fn objective(&self) -> Triplet {
        Triplet { loss: TripletLoss { margin: self.margin, mining: self.mining, distance: self.distance } }
    }
}

pub struct Triplet {
    pub loss: TripletLoss,
}

impl Objective for Triplet {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, _step: u64) -> Result<LossTerms> {
        let o = self.loss.forward(&out.embedding, labels)?;
        let stats = vec![
            ("active_fraction", o.active_fraction),
            ("triplets", o.terms as f64),
            ("mean_d_ap", o.mean_ap),
            ("mean_d_an", o.mean_an),
            ("mean_pairwise_distance", mean_pairwise_squared(&out.embedding)?),
        ];
        Ok(LossTerms { terms: vec![("loss", o.loss)], stats })
    }
}

/// Mean squared distance between the rows of `e` over all pairs i ≠ j, from
/// Σ_{i,j} ‖x_i − x_j‖² = 2B Σ‖x_i‖² − 2‖Σ x_i‖²: 2 for unit vectors spread over the sphere,
/// 0 when f(x) has collapsed to a constant.
pub fn mean_pairwise_squared(e: &Tensor) -> Result<f64> {
    let b = e.dim(0)? as f64;
    if b < 2.0 {
        return Ok(0.0);
    }
    let e = e.detach().to_dtype(DType::F64)?;
    let norms = e.sqr()?.sum_all()?.to_scalar::<f64>()?;
    let total = e.sum(0)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
    Ok((2.0 * b * norms - 2.0 * total) / (b * (b - 1.0)))
}
