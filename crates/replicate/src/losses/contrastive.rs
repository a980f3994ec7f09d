//! # Contrastive "verification" loss — DeepID2 (Sun et al., NIPS 2014, Sec. 3, Eq. 2)
//!
//! Over every unordered pair i < j of the batch, with d = ‖x_i − x_j‖₂:
//!
//! ```text
//! same label:       ½ d²
//! different label:  ½ max(0, m − d)²      ContrastiveForm::Distance        (Hadsell 2006, DeepID2)
//!                   ½ max(0, m − d²)      ContrastiveForm::SquaredDistance (Caffe's legacy layer)
//! L = mean over the B(B−1)/2 pairs;  B < 2 gives 0.
//! ```

use candle_core::{Result, Tensor};

use super::distance::{connected_zero, pairwise_squared, safe_sqrt};

/// Which hinge the different-label term uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContrastiveForm {
    /// ½·max(0, m − d)²: the squared hinge on the distance (DeepID2, Hadsell et al. 2006).
    Distance,
    /// ½·max(0, m − d²): the hinge on the squared distance (Caffe's `legacy_version`).
    SquaredDistance,
}

/// Same-label and different-label masks over the strict upper triangle i < j.
pub(crate) fn pair_masks(labels: &Tensor, dtype: candle_core::DType) -> Result<(Tensor, Tensor)> {
    let b = labels.dim(0)?;
    let l = labels.to_dtype(candle_core::DType::U32)?;
    let same = l.unsqueeze(1)?.broadcast_as((b, b))?.eq(&l.unsqueeze(0)?.broadcast_as((b, b))?)?.to_dtype(dtype)?;
    let upper: Vec<u8> = (0..b * b).map(|k| u8::from(k % b > k / b)).collect();
    let upper = Tensor::from_vec(upper, (b, b), labels.device())?.to_dtype(dtype)?;
    let same_upper = same.mul(&upper)?;
    let diff_upper = upper.sub(&same_upper)?;
    Ok((same_upper, diff_upper))
}

/// DeepID2's verification signal, averaged over all pairs of the batch.
pub fn contrastive_loss(features: &Tensor, labels: &Tensor, margin: f64, form: ContrastiveForm) -> Result<Tensor> {
    let b = features.dim(0)?;
    if labels.dims() != [b] {
        candle_core::bail!("contrastive_loss: labels have shape {:?}, expected [{b}]", labels.dims());
    }
    if b < 2 {
        return connected_zero(features);
    }
    let d2 = pairwise_squared(features)?;
    let (same, diff) = pair_masks(labels, features.dtype())?;
    let negative = match form {
        ContrastiveForm::Distance => (margin - safe_sqrt(&d2)?)?.relu()?.sqr()?,
        ContrastiveForm::SquaredDistance => (margin - &d2)?.relu()?,
    };
    let per_pair = (same.mul(&d2)? + diff.mul(&negative)?)?;
    let pairs = (b * (b - 1) / 2) as f64;
    per_pair.sum_all()? * (0.5 / pairs)
}
