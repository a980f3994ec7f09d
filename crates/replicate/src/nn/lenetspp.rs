//! LeNets++ — the center-loss paper's MNIST network (Wen et al., ECCV 2016, Table 1) as in
//! caffe-face's `mnist_example`:
//!
//! ```text
//! [conv 5×5/1 pad 2 + PReLU] ×2 (32) → max-pool 2/2    28×28 → 14×14
//! [conv 5×5/1 pad 2 + PReLU] ×2 (64) → max-pool 2/2    14×14 → 7×7
//! [conv 5×5/1 pad 2 + PReLU] ×2 (128) → max-pool 2/2   7×7  → 3×3
//! fc 1152 → feature_dim, + PReLU                        the plotted deep feature
//! ```
//!
//! Deviation: caffe-face's last pool is 3/2 (Caffe's ceil rounding gives 3×3). candle's
//! max-pool backward needs kernel == stride, so we use 2/2 with floor rounding: the same
//! 3×3 map and 1152 inputs to the fc layer, but the pooling windows do not overlap.
//! `width` scales the channel counts (1.0 = the paper's 32/64/128).

use candle_core::{Result, Tensor};

use super::layers::{max_pool2, Conv2d, Kernels, Linear, PRelu};
use super::params::Init;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackboneConfig {
    pub width: f64,
    pub feature_dim: usize,
}

impl BackboneConfig {
    /// Channels of the three stages.
    pub fn channels(&self) -> [usize; 3] {
        [32, 64, 128].map(|c| ((c as f64 * self.width).round() as usize).max(1))
    }

    /// Multiply-accumulates of one 28×28 image's forward pass through the backbone.
    pub fn forward_macs(&self) -> u64 {
        let [c1, c2, c3] = self.channels().map(|c| c as u64);
        let conv = |cin: u64, cout: u64, side: u64| cin * cout * 25 * side * side;
        conv(1, c1, 28)
            + conv(c1, c1, 28)
            + conv(c1, c2, 14)
            + conv(c2, c2, 14)
            + conv(c2, c3, 7)
            + conv(c3, c3, 7)
            + c3 * 9 * self.feature_dim as u64
    }
}

pub struct LeNetsPP {
    convs: Vec<(Conv2d, PRelu)>,
    fc: Linear,
    fc_prelu: PRelu,
    pub kernels: Kernels,
}

impl LeNetsPP {
    pub fn new(cfg: &BackboneConfig, init: &mut Init, kernels: Kernels) -> Result<Self> {
        if !(cfg.width > 0.0 && cfg.width.is_finite()) || cfg.feature_dim == 0 {
            candle_core::bail!(
                "LeNets++ needs width > 0 and feature_dim ≥ 1, got width {} and feature_dim {}",
                cfg.width,
                cfg.feature_dim
            );
        }
        let [c1, c2, c3] = cfg.channels();
        let plan = [
            ("conv1a", 1, c1),
            ("conv1b", c1, c1),
            ("conv2a", c1, c2),
            ("conv2b", c2, c2),
            ("conv3a", c2, c3),
            ("conv3b", c3, c3),
        ];
        let mut convs = Vec::with_capacity(6);
        for (name, cin, cout) in plan {
            let conv = Conv2d::new(init, name, cin, cout, 5, 2)?;
            let prelu = PRelu::new(init, &format!("{name}.prelu"), cout)?;
            convs.push((conv, prelu));
        }
        let fc = Linear::new(init, "fc", c3 * 9, cfg.feature_dim, true)?;
        let fc_prelu = PRelu::new(init, "fc.prelu", cfg.feature_dim)?;
        Ok(LeNetsPP { convs, fc, fc_prelu, kernels })
    }

    /// `[B, 1, 28, 28]` images → `[B, feature_dim]` deep features. With the fast kernels the
    /// convolutional part runs channels-last and is permuted back to NCHW before the fc layer,
    /// so both paths compute the same function of the same parameters.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let fast = self.kernels.fast_on(x);
        let mut h = if fast { x.permute((0, 2, 3, 1))? } else { x.clone() };
        for (i, (conv, prelu)) in self.convs.iter().enumerate() {
            h = prelu.forward(&conv.forward(&h, fast)?, fast)?;
            if i % 2 == 1 {
                h = max_pool2(&h, fast)?;
            }
        }
        if fast {
            h = h.permute((0, 3, 1, 2))?;
        }
        let h = h.flatten_from(1)?;
        // A [B, D] feature has its channels last in both layouts.
        self.fc_prelu.forward(&self.fc.forward(&h)?, fast)
    }
}
