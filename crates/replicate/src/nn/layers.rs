//! The three layer types LeNets++ is made of. Each runs on candle's own ops, or on this
//! crate's fused CPU kernels (`nn::kernels`) when `Kernels::Fast` is chosen on a CPU device.

use candle_core::{Result, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use super::kernels;
use super::params::{constant, xavier_uniform, ParamKind, Params};

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
    fn fast_on(&self, x: &Tensor) -> bool {
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
    pub fn new(params: &mut Params, name: &str, c_in: usize, c_out: usize, k: usize, padding: usize, rng: &mut ChaCha8Rng, device: &candle_core::Device) -> Result<Self> {
        let weight = params.add(format!("{name}.weight"), xavier_uniform(&[c_out, c_in, k, k], c_in * k * k, rng, device)?, ParamKind::Weight)?;
        let bias = params.add(format!("{name}.bias"), constant(&[c_out], 0.0, device)?, ParamKind::Bias)?;
        Ok(Conv2d { weight, bias, padding })
    }

    pub fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        if kernels.fast_on(x) {
            return kernels::conv2d(x, self.weight.as_tensor(), self.bias.as_tensor(), self.padding);
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
    pub fn new(params: &mut Params, name: &str, channels: usize, device: &candle_core::Device) -> Result<Self> {
        Ok(PRelu { slope: params.add(format!("{name}.slope"), constant(&[channels], 0.25, device)?, ParamKind::Slope)? })
    }

    pub fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        if kernels.fast_on(x) {
            return kernels::prelu(x, self.slope.as_tensor());
        }
        let mut shape = vec![1usize; x.rank()];
        shape[1] = self.slope.dim(0)?;
        let positive = x.relu()?;
        let negative = (x - &positive)?;
        positive + negative.broadcast_mul(&self.slope.reshape(shape)?)?
    }
}

/// 2×2 max-pooling with stride 2 (floor rounding).
pub fn max_pool2(x: &Tensor, kernels: Kernels) -> Result<Tensor> {
    if kernels.fast_on(x) {
        return kernels::max_pool2(x);
    }
    x.max_pool2d(2)
}

/// y = x Wᵀ (+ b).
pub struct Linear {
    pub weight: Var,
    pub bias: Option<Var>,
}

impl Linear {
    pub fn new(params: &mut Params, name: &str, c_in: usize, c_out: usize, bias: bool, rng: &mut ChaCha8Rng, device: &candle_core::Device) -> Result<Self> {
        let weight = params.add(format!("{name}.weight"), xavier_uniform(&[c_out, c_in], c_in, rng, device)?, ParamKind::Weight)?;
        let bias = if bias { Some(params.add(format!("{name}.bias"), constant(&[c_out], 0.0, device)?, ParamKind::Bias)?) } else { None };
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
