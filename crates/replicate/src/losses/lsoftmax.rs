//! # Large-Margin Softmax (L-Softmax) — Liu et al., ICML 2016, Sec. 3, Eqs. 4-7
//!
//! ```text
//! f_j = ‖W_j‖‖x‖ cos θ_j                       (j ≠ y: the plain logit W_j·x)
//! f_y = (λ‖W_y‖‖x‖ cos θ_y + ‖W_y‖‖x‖ ψ(θ_y)) / (1 + λ)     (training, with λ annealing)
//! ψ(θ) = (−1)^k cos(mθ) − 2k,   θ ∈ [kπ/m, (k+1)π/m],  k ∈ {0, …, m−1}
//! cos(mθ) = Σ_n (−1)^n C(m, 2n) cos^{m−2n}θ (1 − cos²θ)^n   (Eq. 7)
//! λ(iter) = max(λ_min, base·(1 + γ·iter)^(−power))           (the authors' Caffe layer)
//! ```
//!
//! Variant: the authors' `LargeMarginInnerProduct` layer (bias-free; m ∈ {1, 2, 3, 4}); k is
//! found by comparing cos θ with cos(jπ/m) (candle has no acos), without gradient. At test
//! time the logits are plain x·Wᵀ (the repo's SINGLE test layer).

use candle_core::{DType, Result, Tensor};

/// ψ(θ) from cos θ, elementwise, for m ∈ {1, 2, 3, 4}.
pub fn psi(cos: &Tensor, m: usize) -> Result<Tensor> {
    check_m(m)?;
    let c = cos;
    let c2 = c.sqr()?;
    // cos(mθ) = T_m(cos θ), the Chebyshev polynomials the multiple-angle expansion gives.
    let cos_m = match m {
        1 => c.clone(),
        2 => ((&c2 * 2.0)? - 1.0)?,
        3 => c.mul(&((&c2 * 4.0)? - 3.0)?)?,
        _ => (((c2.sqr()? * 8.0)? - (&c2 * 8.0)?)? + 1.0)?,
    };
    // k = #{ j ∈ 1..m : cos θ < cos(jπ/m) }, a step function: no gradient.
    let detached = c.detach();
    let mut k = Tensor::zeros_like(&detached)?;
    for j in 1..m {
        let threshold = (j as f64 * std::f64::consts::PI / m as f64).cos();
        k = (k + detached.lt(threshold)?.to_dtype(c.dtype())?)?;
    }
    // (−1)^k = 1 − 2·(k mod 2)
    let k_mod_2 = (&k - ((&k * 0.5)?.floor()? * 2.0)?)?;
    let sign = (1.0 - (k_mod_2 * 2.0)?)?;
    cos_m.mul(&sign)? - (k * 2.0)?
}

fn check_m(m: usize) -> Result<()> {
    if !(1..=4).contains(&m) {
        candle_core::bail!("L-Softmax margin m must be 1, 2, 3 or 4 (the authors' SINGLE…QUADRUPLE), got {m}");
    }
    Ok(())
}

/// The L-Softmax layer: a bias-free weight `[C, D]` and the margin m.
#[derive(Clone)]
pub struct LSoftmax {
    weight: Tensor,
    m: usize,
}

impl LSoftmax {
    /// `weight` may be a `Var`'s tensor: gradients then flow into it.
    pub fn new(weight: Tensor, m: usize) -> Result<Self> {
        check_m(m)?;
        weight.dims2()?;
        Ok(LSoftmax { weight, m })
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    pub fn m(&self) -> usize {
        self.m
    }

    /// Plain logits x·Wᵀ (used at test time).
    pub fn test_logits(&self, features: &Tensor) -> Result<Tensor> {
        features.matmul(&self.weight.t()?)
    }

    /// Training logits: the target column replaced by (λ f_y + ‖W_y‖‖x‖ψ(θ_y)) / (1 + λ).
    pub fn train_logits(&self, features: &Tensor, labels: &Tensor, lambda: f64) -> Result<Tensor> {
        let (b, _) = features.dims2()?;
        let c = self.weight.dim(0)?;
        if labels.dims() != [b] {
            candle_core::bail!("LSoftmax: labels have shape {:?}, expected [{b}]", labels.dims());
        }
        if !(lambda.is_finite() && lambda >= 0.0) {
            candle_core::bail!("LSoftmax: lambda must be a finite number ≥ 0, got {lambda}");
        }
        let logits = self.test_logits(features)?;
        let labels = labels.to_dtype(DType::U32)?;
        let target = logits.gather(&labels.unsqueeze(1)?, 1)?.squeeze(1)?;
        let tiny = if features.dtype() == DType::F64 { 1e-300 } else { 1e-30 };
        let x_norm = (features.sqr()?.sum(1)? + tiny)?.sqrt()?;
        let w_norm = (self.weight.sqr()?.sum(1)? + tiny)?.sqrt()?.index_select(&labels, 0)?;
        let norms = x_norm.mul(&w_norm)?;
        let cos = target.div(&norms)?.clamp(-1.0, 1.0)?;
        let margin_target = norms.mul(&psi(&cos, self.m)?)?;
        let new_target = ((&target * lambda)? + margin_target)? / (1.0 + lambda);
        let class_ids = Tensor::arange(0u32, c as u32, features.device())?;
        let one_hot = labels.unsqueeze(1)?.broadcast_eq(&class_ids.unsqueeze(0)?)?.to_dtype(features.dtype())?;
        logits + one_hot.broadcast_mul(&(new_target? - target)?.unsqueeze(1)?)?
    }
}

/// λ(iter) = max(λ_min, base·(1 + γ·iter)^(−power)), the authors' annealing.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LambdaSchedule {
    pub base: f64,
    pub gamma: f64,
    pub power: f64,
    pub lambda_min: f64,
}

impl LambdaSchedule {
    /// The authors' MNIST layer (`myexamples/mnist`): base 1000, γ 2.5e-5, power 35, λ_min 0.
    pub fn authors_mnist() -> Self {
        LambdaSchedule { base: 1000.0, gamma: 2.5e-5, power: 35.0, lambda_min: 0.0 }
    }

    /// The authors' base, power and λ_min with γ chosen so that λ falls to `target` at
    /// iteration `iters`: γ = ((base / target)^(1/power) − 1) / iters.
    pub fn rescaled(base: f64, power: f64, lambda_min: f64, target: f64, iters: u64) -> Self {
        let gamma = ((base / target).powf(1.0 / power) - 1.0) / iters.max(1) as f64;
        LambdaSchedule { base, gamma, power, lambda_min }
    }

    pub fn at(&self, iter: u64) -> f64 {
        (self.base * (1.0 + self.gamma * iter as f64).powf(-self.power)).max(self.lambda_min)
    }
}
