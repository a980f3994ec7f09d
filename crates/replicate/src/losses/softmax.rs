//! # Softmax identification loss (the cross-entropy every paper here starts from)
//!
//! L = −(1/B) Σ_i log( exp(z_{i,y_i}) / Σ_j exp(z_{i,j}) )
//!
//! Variant: mean over the batch, as Caffe's `SoftmaxWithLoss` (DeepID2's "Ident", center loss
//! L_S, L-Softmax on its own logits). The log-sum-exp is shifted by the row maximum, taken
//! without gradient: the loss does not depend on the shift.

use candle_core::{Result, Tensor, D};

/// log softmax over the last dimension, differentiable (candle's `softmax_last_dim` is not).
pub fn log_softmax(logits: &Tensor) -> Result<Tensor> {
    let shifted = logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?.detach())?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(D::Minus1)?.log()?)
}

/// Mean cross-entropy of `logits` `[B, C]` against U32 `labels` `[B]`.
pub fn softmax_loss(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (b, c) = logits.dims2()?;
    if labels.dims() != [b] {
        candle_core::bail!("softmax_loss: labels have shape {:?}, expected [{b}]", labels.dims());
    }
    let max_label = labels.max(0)?.to_scalar::<u32>()? as usize;
    if b > 0 && max_label >= c {
        candle_core::bail!("softmax_loss: label {max_label} is out of range for {c} classes");
    }
    let picked = log_softmax(logits)?.gather(&labels.unsqueeze(1)?, 1)?;
    picked.mean_all()?.neg()
}
