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
