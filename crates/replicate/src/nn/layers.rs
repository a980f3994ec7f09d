//! The three layer types LeNets++ is made of. Each runs on candle's own ops (NCHW), or on this
//! crate's fused CPU kernels (`nn::kernels`, channels-last) when the backbone runs fast.

use super::kernels;
use super::params::{Init, ParamKind};
use candle_core::{Result, Tensor, Var};

/// Which implementation the layers use on a CPU (other devices always use candle's ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernels {
    /// candle's generic ops (conv2d, conv_transpose2d for the input gradient, max_pool2d, …).
    Candle,
    /// Fused CPU kernels with their own backward: im2col + gemm, col2im, one-pass PReLU/max-pool.
    Fast,
}

impl Kernels {
    /// Whether the fast kernels apply to `x` (f32 on a CPU).
    pub fn fast_on(&self, x: &Tensor) -> bool {
        *self == Kernels::Fast && x.device().is_cpu() && x.dtype() == candle_core::DType::F32
    }
}

/// A k×k convolution, stride 1, zero padding `padding`, with bias.
pub struct Conv2d {
    pub weight: Var,
    pub bias: Var,
    pub padding: usize,
}

impl Conv2d {
    pub fn new(init: &mut Init, name: &str, c_in: usize, c_out: usize, k: usize, padding: usize) -> Result<Self> {
        let weight = init.xavier(format!("{name}.weight"), &[c_out, c_in, k, k], c_in * k * k)?;
        let bias = init.constant(format!("{name}.bias"), &[c_out], 0.0, ParamKind::Bias)?;
        Ok(Conv2d { weight, bias, padding })
    }

    /// NCHW with candle's ops, or NHWC with the fast kernels when `channels_last`.
    pub fn forward(&self, x: &Tensor, channels_last: bool) -> Result<Tensor> {
        if channels_last {
            return kernels::conv2d_nhwc(x, self.weight.as_tensor(), self.bias.as_tensor(), self.padding);
        }
        let c = self.bias.dim(0)?;
        x.conv2d(self.weight.as_tensor(), self.padding, 1, 1, 1)?.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)
    }
}

/// PReLU with one slope per channel (dim 1), initialised to 0.25 as Caffe's.
pub struct PRelu {
    pub slope: Var,
}

impl PRelu {
    pub fn new(init: &mut Init, name: &str, channels: usize) -> Result<Self> {
        Ok(PRelu { slope: init.constant(format!("{name}.slope"), &[channels], 0.25, ParamKind::Slope)? })
    }

    /// Channels on dim 1 with candle's ops, or on the last dim with the fast kernels.
    pub fn forward(&self, x: &Tensor, channels_last: bool) -> Result<Tensor> {
        if channels_last {
            return kernels::prelu_channels_last(x, self.slope.as_tensor());
        }
        let mut shape = vec![1usize; x.rank()];
        shape[1] = self.slope.dim(0)?;
        let positive = x.relu()?;
        let negative = (x - &positive)?;
        positive + negative.broadcast_mul(&self.slope.reshape(shape)?)?
    }
}

/// Batch normalisation of a `[B, D]` feature (Ioffe & Szegedy, 2015): in training
/// y = γ·(x − μ_B)/√(σ²_B + ε) + β with the batch's mean and biased variance, and running
/// averages (momentum 0.1, the unbiased variance, as PyTorch keeps them) that evaluation uses
/// instead. The running averages are parameters that never get a gradient, so the optimiser
/// leaves them alone and checkpoints and weight files carry them.
pub struct BatchNorm1d {
    pub gamma: Var,
    pub beta: Var,
    pub running_mean: Var,
    pub running_var: Var,
}

const BN_MOMENTUM: f64 = 0.1;
const BN_EPSILON: f64 = 1e-5;

impl BatchNorm1d {
    pub fn new(init: &mut Init, name: &str, features: usize) -> Result<Self> {
        Ok(BatchNorm1d {
            gamma: init.constant(format!("{name}.gamma"), &[features], 1.0, ParamKind::Slope)?,
            beta: init.constant(format!("{name}.beta"), &[features], 0.0, ParamKind::Slope)?,
            running_mean: init.constant(format!("{name}.running_mean"), &[features], 0.0, ParamKind::Statistic)?,
            running_var: init.constant(format!("{name}.running_var"), &[features], 1.0, ParamKind::Statistic)?,
        })
    }

    /// `training`: normalise by the batch's statistics and update the running ones (a batch of
    /// one has no variance: an error); otherwise normalise by the running ones.
    pub fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let (batch, _) = x.dims2()?;
        let (mean, var) = if training {
            if batch < 2 {
                candle_core::bail!("batch normalisation needs at least 2 samples in a training batch, got {batch}");
            }
            let mean = x.mean_keepdim(0)?;
            let var = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
            let unbiased = (var.detach().squeeze(0)? * (batch as f64 / (batch - 1) as f64))?;
            let blend = |running: &Var, now: &Tensor| -> Result<()> {
                running.set(&((running.as_tensor() * (1.0 - BN_MOMENTUM))? + (now * BN_MOMENTUM)?)?.detach())
            };
            blend(&self.running_mean, &mean.detach().squeeze(0)?)?;
            blend(&self.running_var, &unbiased)?;
            (mean, var)
        } else {
            (self.running_mean.as_tensor().unsqueeze(0)?, self.running_var.as_tensor().unsqueeze(0)?)
        };
        let normalised = x.broadcast_sub(&mean)?.broadcast_div(&(var + BN_EPSILON)?.sqrt()?)?;
        normalised
            .broadcast_mul(&self.gamma.as_tensor().unsqueeze(0)?)?
            .broadcast_add(&self.beta.as_tensor().unsqueeze(0)?)
    }
}

/// 2×2 max-pooling with stride 2 (floor rounding).
///
/// The gradient goes to the first largest input of each window (in the order (0,0), (0,1),
/// (1,0), (1,1)), as in PyTorch and our kernels. candle's own ops do not give that:
/// `max_pool2d`'s backward multiplies by the window's share of maxima (a unique maximum gets a
/// quarter of its gradient, `tests/kernels.rs` pins this), and a `max` reduction sends the
/// whole gradient to every tied input, which MNIST's constant background makes common. So the
/// candle path builds a one-hot mask of the first maximum and multiplies.
pub fn max_pool2(x: &Tensor, channels_last: bool) -> Result<Tensor> {
    if channels_last {
        return kernels::max_pool2_nhwc(x);
    }
    let (b, c, h, w) = x.dims4()?;
    let (oh, ow) = (h / 2, w / 2);
    let windows = x.narrow(2, 0, 2 * oh)?.narrow(3, 0, 2 * ow)?.reshape((b, c, oh, 2, ow, 2))?;
    let at = |dy: usize, dx: usize| -> Result<Tensor> {
        windows.narrow(3, dy, 1)?.narrow(5, dx, 1)?.reshape((b, c, oh, ow))
    };
    let cells = [at(0, 0)?, at(0, 1)?, at(1, 0)?, at(1, 1)?];
    let detached: Vec<Tensor> = cells.iter().map(|t| t.detach()).collect();
    let max = detached[1..].iter().try_fold(detached[0].clone(), |m, t| m.maximum(t))?;
    let mut taken = Tensor::zeros_like(&max)?;
    let mut out = Tensor::zeros_like(&max)?;
    for (cell, value) in cells.iter().zip(&detached) {
        let first = (value.eq(&max)?.to_dtype(x.dtype())? * (1.0 - &taken)?)?;
        out = (out + cell.mul(&first)?)?;
        taken = (taken + first)?;
    }
    Ok(out)
}

/// y = x Wᵀ (+ b).
pub struct Linear {
    pub weight: Var,
    pub bias: Option<Var>,
}

impl Linear {
    pub fn new(init: &mut Init, name: &str, c_in: usize, c_out: usize, bias: bool) -> Result<Self> {
        let weight = init.xavier(format!("{name}.weight"), &[c_out, c_in], c_in)?;
        let bias =
            if bias { Some(init.constant(format!("{name}.bias"), &[c_out], 0.0, ParamKind::Bias)?) } else { None };
        Ok(Linear { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b.as_tensor()),
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::params::Params;
    use candle_core::Device;

    /// Training normalises by the batch (mean 0, biased variance 1 per feature) and moves the
    /// running averages 10 % of the way to the batch's mean and unbiased variance; evaluation
    /// normalises by the running averages and leaves them alone.
    #[test]
    fn batch_norm_trains_on_the_batch_and_evaluates_on_running_averages() {
        let mut params = Params::default();
        let mut rng = crate::util::rng_for(1, "test");
        let mut init = Init { params: &mut params, rng: &mut rng, device: &Device::Cpu };
        let bn = BatchNorm1d::new(&mut init, "bn", 2).unwrap();
        let x = Tensor::new(&[[1.0f32, 10.0], [3.0, 10.0], [5.0, 16.0]], &Device::Cpu).unwrap();
        let y = bn.forward(&x, true).unwrap();
        let column = |t: &Tensor, j: usize| -> Vec<f32> { t.to_vec2::<f32>().unwrap().iter().map(|r| r[j]).collect() };
        // Feature 0: mean 3, biased variance 8/3.
        let want: Vec<f32> = [1.0f32, 3.0, 5.0].iter().map(|v| (v - 3.0) / (8.0f32 / 3.0 + 1e-5).sqrt()).collect();
        assert!(column(&y, 0).iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "{:?}", column(&y, 0));
        let running_mean = bn.running_mean.as_tensor().to_vec1::<f32>().unwrap();
        let running_var = bn.running_var.as_tensor().to_vec1::<f32>().unwrap();
        assert!((running_mean[0] - 0.3).abs() < 1e-6 && (running_mean[1] - 1.2).abs() < 1e-5, "{running_mean:?}");
        // Unbiased variance of feature 0 is 4: 0.9·1 + 0.1·4.
        assert!((running_var[0] - 1.3).abs() < 1e-6, "{running_var:?}");
        let evaluated = bn.forward(&x, false).unwrap();
        let by_running = (1.0f32 - 0.3) / (1.3f32 + 1e-5).sqrt();
        assert!((column(&evaluated, 0)[0] - by_running).abs() < 1e-5);
        assert_eq!(bn.running_mean.as_tensor().to_vec1::<f32>().unwrap(), running_mean);
        assert!(bn.forward(&x.narrow(0, 0, 1).unwrap(), true).is_err(), "a training batch of one has no variance");
        // The running averages are statistics the optimiser never moves.
        assert!(params.iter().filter(|p| p.name.contains("running")).all(|p| p.kind == ParamKind::Statistic));
    }
}
