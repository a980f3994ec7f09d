//! # Normalised softmax with an angular or cosine margin: NormFace, CosFace, ArcFace, SphereFace
//!
//! With cos θ_ij = W_j·x_i / (‖W_j‖‖x_i‖) and y_i the class of x_i, the training logits are
//!
//! ```text
//! NormFace   (Wang et al., ACM MM 2017, Sec. 3.2):   f_ij = s·cos θ_ij                 every j
//! CosFace    (Wang et al., CVPR 2018, Eq. 4, LMCL):  f_iy = s·(cos θ_iy − m)
//! ArcFace    (Deng et al., CVPR 2019, Eq. 3):        f_iy = s·cos(θ_iy + m)            cos θ_iy > cos(π − m)
//!                                                    f_iy = s·(cos θ_iy − m·sin m)     otherwise
//!            easy margin:                            f_iy = s·cos(θ_iy + m)            cos θ_iy > 0
//!                                                    f_iy = s·cos θ_iy                 otherwise
//! SphereFace (Liu et al., CVPR 2017, Eq. 6, A-Softmax, with the authors' λ of L-Softmax):
//!            f_iy = ‖x_i‖·(λ·cos θ_iy + ψ_m(θ_iy)) / (1 + λ),   f_ij = ‖x_i‖·cos θ_ij   (‖W_j‖ = 1)
//! ```
//!
//! and f_ij = s·cos θ_ij off the target for the first three. ψ_m is L-Softmax's (`lsoftmax::psi`).
//! The ArcFace fallback below cos(π − m) is insightface's (`combined_margin`'s `th`/`mm`): past
//! θ + m = π, cos(θ + m) would rise again and reward the wrong direction.
//!
//! Numerics: cos(θ + m) = cos θ·cos m − sin θ·sin m with sin θ = √max(1 − cos²θ, ε²), so no acos
//! (candle has none, and its derivative is infinite at cos θ = ±1) and no √0 in the backward pass;
//! norms are √(‖v‖² + ε²), so a zero feature has cos θ = 0 and finite gradients. ε = 1e-12, as
//! in PyTorch's `F.normalize`.

use candle_core::{DType, Result, Tensor};

use super::lsoftmax::psi;

const EPSILON: f64 = 1e-12;

/// One member of the normalised-softmax family and its settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AngularMargin {
    NormFace { scale: f64 },
    CosFace { scale: f64, margin: f64 },
    ArcFace { scale: f64, margin: f64, easy_margin: bool },
    SphereFace { m: usize, lambda: f64 },
}

impl AngularMargin {
    /// An error naming the value when a setting is outside the range its paper defines.
    pub fn validate(&self) -> Result<()> {
        let check_scale = |scale: f64| {
            if !(scale.is_finite() && scale > 0.0) {
                candle_core::bail!("{}: the scale s must be a finite number > 0, got {scale}", self.name());
            }
            Ok(())
        };
        match *self {
            AngularMargin::NormFace { scale } => check_scale(scale),
            AngularMargin::CosFace { scale, margin } => {
                check_scale(scale)?;
                if !(0.0..1.0).contains(&margin) {
                    candle_core::bail!("CosFace: the margin m must lie in [0, 1), got {margin}");
                }
                Ok(())
            }
            AngularMargin::ArcFace { scale, margin, .. } => {
                check_scale(scale)?;
                if !(0.0..std::f64::consts::FRAC_PI_2).contains(&margin) {
                    candle_core::bail!("ArcFace: the angular margin m must lie in [0, π/2) radians, got {margin}");
                }
                Ok(())
            }
            AngularMargin::SphereFace { m, lambda } => {
                if !(1..=4).contains(&m) {
                    candle_core::bail!("SphereFace: the margin m must be 1, 2, 3 or 4, got {m}");
                }
                if !(lambda.is_finite() && lambda >= 0.0) {
                    candle_core::bail!("SphereFace: λ must be a finite number ≥ 0, got {lambda}");
                }
                Ok(())
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            AngularMargin::NormFace { .. } => "NormFace",
            AngularMargin::CosFace { .. } => "CosFace",
            AngularMargin::ArcFace { .. } => "ArcFace",
            AngularMargin::SphereFace { .. } => "SphereFace",
        }
    }

    /// The target logit f_iy as a function of the target cosine alone, for ‖x‖ = 1 with
    /// SphereFace (where `lambda` sets the blend): the curves of ArcFace's Fig. 3.
    pub fn target_logit(&self, cos: &Tensor) -> Result<Tensor> {
        self.validate()?;
        target_from_cos(self, cos, None)
    }
}

/// √(‖row‖² + ε²) of each row of a [N, D] matrix, as [N].
fn row_norms(matrix: &Tensor) -> Result<Tensor> {
    (matrix.sqr()?.sum(1)? + EPSILON * EPSILON)?.sqrt()
}

/// cos θ_ij [B, C] and ‖x_i‖ [B], after checking shapes, dtypes and labels.
fn cosines(features: &Tensor, weight: &Tensor) -> Result<(Tensor, Tensor)> {
    let (_, d) = features.dims2()?;
    let (_, weight_d) = weight.dims2()?;
    if d != weight_d {
        candle_core::bail!("angular margin: features are {d}-D but the class weights are {weight_d}-D");
    }
    if features.dtype() != weight.dtype() {
        candle_core::bail!(
            "angular margin: features are {:?} but the class weights are {:?}",
            features.dtype(),
            weight.dtype()
        );
    }
    let feature_norms = row_norms(features)?;
    let unit_features = features.broadcast_div(&feature_norms.unsqueeze(1)?)?;
    let unit_weight = weight.broadcast_div(&row_norms(weight)?.unsqueeze(1)?)?;
    let cos = unit_features.matmul(&unit_weight.t()?)?.clamp(-1.0, 1.0)?;
    Ok((cos, feature_norms))
}

fn checked_labels(labels: &Tensor, batch: usize, classes: usize) -> Result<Tensor> {
    if labels.dims() != [batch] {
        candle_core::bail!("angular margin: labels have shape {:?}, expected [{batch}]", labels.dims());
    }
    let labels = labels.to_dtype(DType::U32)?;
    if let Some(bad) = labels.to_vec1::<u32>()?.into_iter().find(|&l| l as usize >= classes) {
        candle_core::bail!("angular margin: label {bad} is not a class of the {classes} class weights");
    }
    Ok(labels)
}

/// The target logit from the target cosine [B] (and ‖x_i‖ [B] for SphereFace; `None` means 1).
fn target_from_cos(margin: &AngularMargin, cos: &Tensor, feature_norms: Option<&Tensor>) -> Result<Tensor> {
    match *margin {
        AngularMargin::NormFace { scale } => cos * scale,
        AngularMargin::CosFace { scale, margin } => (cos - margin)? * scale,
        AngularMargin::ArcFace { scale, margin, easy_margin } => {
            let sin = (1.0 - cos.sqr()?)?.maximum(EPSILON * EPSILON)?.sqrt()?;
            let cos_plus_margin = ((cos * margin.cos())? - (sin * margin.sin())?)?;
            let (threshold, fallback) = if easy_margin {
                (0.0, cos.clone())
            } else {
                ((std::f64::consts::PI - margin).cos(), (cos - margin * margin.sin())?)
            };
            cos.gt(threshold)?.where_cond(&cos_plus_margin, &fallback)? * scale
        }
        AngularMargin::SphereFace { m, lambda } => {
            let blended = (((cos * lambda)? + psi(cos, m)?)? / (1.0 + lambda))?;
            match feature_norms {
                Some(norms) => blended.mul(norms),
                None => Ok(blended),
            }
        }
    }
}

/// Training logits [B, C] of `features` [B, D] against the class weights `weight` [C, D] (a
/// `Var`'s tensor, so that gradients reach it) for labels U32 [B], F32 or F64.
pub fn margin_logits(features: &Tensor, weight: &Tensor, labels: &Tensor, margin: AngularMargin) -> Result<Tensor> {
    margin.validate()?;
    let (cos, feature_norms) = cosines(features, weight)?;
    let (batch, classes) = cos.dims2()?;
    let labels = checked_labels(labels, batch, classes)?;
    let others = other_logits(&margin, &cos, &feature_norms)?;
    let target_cos = cos.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
    let target = target_from_cos(&margin, &target_cos, Some(&feature_norms))?;
    let class_ids = Tensor::arange(0u32, classes as u32, cos.device())?;
    let is_target = labels.unsqueeze(1)?.broadcast_eq(&class_ids.unsqueeze(0)?)?;
    is_target.where_cond(&target.unsqueeze(1)?.broadcast_as((batch, classes))?, &others)
}

/// The test-time logits [B, C]: s·cos θ_ij (NormFace, CosFace, ArcFace), ‖x_i‖·cos θ_ij
/// (SphereFace). Their arg-max is the class of the largest cosine in both cases.
pub fn margin_test_logits(features: &Tensor, weight: &Tensor, margin: AngularMargin) -> Result<Tensor> {
    margin.validate()?;
    let (cos, feature_norms) = cosines(features, weight)?;
    other_logits(&margin, &cos, &feature_norms)
}

fn other_logits(margin: &AngularMargin, cos: &Tensor, feature_norms: &Tensor) -> Result<Tensor> {
    match *margin {
        AngularMargin::NormFace { scale }
        | AngularMargin::CosFace { scale, .. }
        | AngularMargin::ArcFace { scale, .. } => cos * scale,
        AngularMargin::SphereFace { .. } => cos.broadcast_mul(&feature_norms.unsqueeze(1)?),
    }
}
