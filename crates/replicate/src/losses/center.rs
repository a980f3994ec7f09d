//! # Center loss — Wen et al., ECCV 2016, Sec. 3.2, Eqs. 2-4 and Algorithm 1
//!
//! ```text
//! L_C  = (1/B) Σ_i ½ ‖x_i − c_{y_i}‖²            (Eq. 2 as a batch mean, like caffe-face's layer)
//! ∂L_C/∂x_i = (x_i − c_{y_i}) / B                 (no gradient flows into the centers)
//! Δc_j = Σ_{i: y_i = j} (c_j − x_i) / (1 + n_j)   (Eq. 4)
//! c_j ← c_j − α·Δc_j                              (Algorithm 1, step 6; absent classes keep c_j)
//! ```
//!
//! Variant: the paper's rule with a fixed α (`update`). caffe-face instead feeds Δc_j to its SGD
//! solver as the centers' gradient (α = learning rate, with momentum); `delta` exposes Δc so an
//! experiment can apply it that way.

use candle_core::{DType, Device, Result, Tensor};

pub struct CenterLoss {
    centers: Tensor,
    alpha: f64,
}

impl CenterLoss {
    /// `num_classes` centers of `feature_dim` zeros (F32).
    pub fn new(num_classes: usize, feature_dim: usize, alpha: f64, device: &Device) -> Result<Self> {
        Self::from_centers(Tensor::zeros((num_classes, feature_dim), DType::F32, device)?, alpha)
    }

    /// Starts from given centers `[C, D]`; their dtype is the loss's dtype.
    pub fn from_centers(centers: Tensor, alpha: f64) -> Result<Self> {
        centers.dims2()?;
        if !(alpha.is_finite() && alpha >= 0.0) {
            candle_core::bail!("CenterLoss: alpha must be a finite number ≥ 0, got {alpha}");
        }
        Ok(CenterLoss { centers: centers.detach(), alpha })
    }

    pub fn centers(&self) -> &Tensor {
        &self.centers
    }

    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    fn check(&self, features: &Tensor, labels: &Tensor) -> Result<()> {
        let (b, d) = features.dims2()?;
        let (c, cd) = self.centers.dims2()?;
        if d != cd || labels.dims() != [b] {
            candle_core::bail!(
                "CenterLoss: features {:?} and labels {:?} do not match centers [{c}, {cd}]",
                features.dims(),
                labels.dims()
            );
        }
        if b > 0 && labels.max(0)?.to_scalar::<u32>()? as usize >= c {
            candle_core::bail!("CenterLoss: a label is out of range for {c} centers");
        }
        Ok(())
    }

    /// Σ_i ½‖x_i − c_{y_i}‖² / B.
    pub fn loss(&self, features: &Tensor, labels: &Tensor) -> Result<Tensor> {
        self.check(features, labels)?;
        let b = features.dim(0)?;
        let own = self.centers.index_select(labels, 0)?;
        features.sub(&own)?.sqr()?.sum_all()? * (0.5 / b.max(1) as f64)
    }

    /// Δc of Eq. 4, `[C, D]` (zero rows for classes absent from the batch).
    pub fn delta(&self, features: &Tensor, labels: &Tensor) -> Result<Tensor> {
        self.check(features, labels)?;
        let x = features.detach().to_dtype(self.centers.dtype())?;
        let (c, d) = self.centers.dims2()?;
        let b = x.dim(0)?;
        let own = self.centers.index_select(labels, 0)?;
        let sums = Tensor::zeros((c, d), x.dtype(), x.device())?.index_add(labels, &own.sub(&x)?, 0)?;
        let ones = Tensor::ones(b, x.dtype(), x.device())?;
        let counts = Tensor::zeros(c, x.dtype(), x.device())?.index_add(labels, &ones, 0)?;
        sums.broadcast_div(&(counts + 1.0)?.unsqueeze(1)?)
    }

    /// c_j ← c_j − α·Δc_j.
    pub fn update(&mut self, features: &Tensor, labels: &Tensor) -> Result<()> {
        let delta = self.delta(features, labels)?;
        self.centers = (&self.centers - (delta * self.alpha)?)?.detach();
        Ok(())
    }

    /// Replaces the centers (for rules that apply Δc another way, e.g. caffe-face's SGD).
    pub fn set_centers(&mut self, centers: Tensor) -> Result<()> {
        if centers.dims() != self.centers.dims() {
            candle_core::bail!(
                "CenterLoss::set_centers: shape {:?} differs from {:?}",
                centers.dims(),
                self.centers.dims()
            );
        }
        self.centers = centers.detach();
        Ok(())
    }
}
