//! The convolutional backbone both networks share: three stages of two convolutions (stride 1,
//! "same" zero padding) each followed by a per-channel PReLU, a 2×2/2 max-pool after each stage,
//! then a fully connected feature with PReLU (or with batch normalisation and no activation, the
//! embedding layer of insightface's networks, `feature_batch_norm`). LeNets++ (`nn::lenetspp`) and the face backbone
//! (`nn::face_cnn`) differ only in their [`Plan`]: input side and kernel size.

use candle_core::{Result, Tensor};

use super::layers::{max_pool2, BatchNorm1d, Conv2d, Kernels, Linear, PRelu};
use super::params::Init;

/// Which network a backbone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// LeNets++ on 28×28 MNIST digits, 5×5 kernels.
    #[default]
    LeNetsPP,
    /// The face backbone on `input_side`×`input_side` faces, 3×3 kernels.
    FaceCnn { input_side: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackboneConfig {
    pub width: f64,
    pub feature_dim: usize,
    /// Absent in configs written before the face backbone existed: those are LeNets++.
    #[serde(default)]
    pub architecture: Architecture,
    /// The fc feature batch-normalised instead of through a PReLU (absent in older configs: off).
    #[serde(default)]
    pub feature_batch_norm: bool,
}

/// The layers of a backbone: input side, square kernel size, and the channels of its 3 stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub input_side: usize,
    pub kernel: usize,
    pub stages: [usize; 3],
}

/// LeNets++'s 32/64/128 channels scaled by `width` (at least one each).
pub fn stage_channels(width: f64) -> [usize; 3] {
    [32, 64, 128].map(|c| ((c as f64 * width).round() as usize).max(1))
}

impl BackboneConfig {
    pub fn lenetspp(width: f64, feature_dim: usize) -> BackboneConfig {
        BackboneConfig { width, feature_dim, architecture: Architecture::LeNetsPP, feature_batch_norm: false }
    }

    pub fn face_cnn(width: f64, feature_dim: usize, input_side: usize) -> BackboneConfig {
        BackboneConfig {
            width,
            feature_dim,
            architecture: Architecture::FaceCnn { input_side },
            feature_batch_norm: false,
        }
    }

    pub fn plan(&self) -> Plan {
        match self.architecture {
            Architecture::LeNetsPP => super::lenetspp::plan(self.width),
            Architecture::FaceCnn { input_side } => super::face_cnn::plan(self.width, input_side),
        }
    }

    /// Channels of the three stages.
    pub fn channels(&self) -> [usize; 3] {
        self.plan().stages
    }

    /// The side of the last stage's map (floor rounding at each pool).
    fn final_side(&self) -> usize {
        self.plan().input_side / 8
    }

    /// Multiply-accumulates of one image's forward pass through the backbone.
    pub fn forward_macs(&self) -> u64 {
        let Plan { input_side, kernel, stages } = self.plan();
        let taps = (kernel * kernel) as u64;
        let (mut side, mut c_in, mut macs) = (input_side as u64, 1u64, 0u64);
        for c in stages.map(|c| c as u64) {
            macs += (c_in * c + c * c) * taps * side * side;
            (side, c_in) = (side / 2, c);
        }
        macs + c_in * side * side * self.feature_dim as u64
    }

    /// Checks the settings before any parameter is drawn.
    pub fn check(&self) -> Result<()> {
        if !(self.width > 0.0 && self.width.is_finite()) || self.feature_dim == 0 {
            candle_core::bail!(
                "the backbone needs width > 0 and feature_dim ≥ 1, got width {} and feature_dim {}",
                self.width,
                self.feature_dim
            );
        }
        if let Architecture::FaceCnn { input_side } = self.architecture {
            if input_side < 8 || !input_side.is_multiple_of(8) {
                candle_core::bail!(
                    "the face backbone pools three times by 2: input_side must be a multiple of 8 (8 or more), got {input_side}"
                );
            }
        }
        Ok(())
    }
}

/// What follows the fc layer.
enum FeatureOutput {
    PRelu(PRelu),
    BatchNorm(BatchNorm1d),
}

pub struct Backbone {
    convs: Vec<(Conv2d, PRelu)>,
    fc: Linear,
    fc_out: FeatureOutput,
    input_side: usize,
    pub kernels: Kernels,
}

impl Backbone {
    pub fn new(cfg: &BackboneConfig, init: &mut Init, kernels: Kernels) -> Result<Self> {
        cfg.check()?;
        let plan = cfg.plan();
        let mut convs = Vec::with_capacity(6);
        let mut c_in = 1;
        for (stage, &c) in plan.stages.iter().enumerate() {
            for (sub, from) in [("a", c_in), ("b", c)] {
                let name = format!("conv{}{sub}", stage + 1);
                let conv = Conv2d::new(init, &name, from, c, plan.kernel, plan.kernel / 2)?;
                let prelu = PRelu::new(init, &format!("{name}.prelu"), c)?;
                convs.push((conv, prelu));
            }
            c_in = c;
        }
        let side = cfg.final_side();
        let fc = Linear::new(init, "fc", c_in * side * side, cfg.feature_dim, true)?;
        let fc_out = if cfg.feature_batch_norm {
            FeatureOutput::BatchNorm(BatchNorm1d::new(init, "fc.bn", cfg.feature_dim)?)
        } else {
            FeatureOutput::PRelu(PRelu::new(init, "fc.prelu", cfg.feature_dim)?)
        };
        Ok(Backbone { convs, fc, fc_out, input_side: plan.input_side, kernels })
    }

    /// `[B, 1, S, S]` images → `[B, feature_dim]` deep features. With the fast kernels the
    /// convolutional part runs channels-last and is permuted back to NCHW before the fc layer,
    /// so both paths compute the same function of the same parameters. Batch normalisation, if
    /// any, uses its running statistics (evaluation).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_in_mode(x, false)
    }

    /// As [`Backbone::forward`]; with `training`, batch normalisation uses and updates the
    /// batch's statistics.
    pub fn forward_in_mode(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        if c != 1 || h != self.input_side || w != self.input_side {
            candle_core::bail!(
                "the backbone takes [B, 1, {side}, {side}] images, got {:?}",
                x.dims(),
                side = self.input_side
            );
        }
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
        let h = self.fc.forward(&h)?;
        match &self.fc_out {
            FeatureOutput::PRelu(prelu) => prelu.forward(&h, fast),
            FeatureOutput::BatchNorm(bn) => bn.forward(&h, training),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenetspp_counts_the_papers_layers() {
        let c = BackboneConfig::lenetspp(1.0, 2);
        assert_eq!(c.channels(), [32, 64, 128]);
        let conv = |cin: u64, cout: u64, side: u64| cin * cout * 25 * side * side;
        let expected = conv(1, 32, 28)
            + conv(32, 32, 28)
            + conv(32, 64, 14)
            + conv(64, 64, 14)
            + conv(64, 128, 7)
            + conv(128, 128, 7)
            + 128 * 9 * 2;
        assert_eq!(c.forward_macs(), expected);
    }

    #[test]
    fn the_face_backbone_needs_a_side_it_can_pool_three_times() {
        assert!(BackboneConfig::face_cnn(1.0, 128, 32).check().is_ok());
        let e = BackboneConfig::face_cnn(1.0, 128, 36).check().unwrap_err().to_string();
        assert!(e.contains("input_side") && e.contains("36"), "{e}");
        let c = BackboneConfig::face_cnn(1.0, 128, 32);
        assert_eq!(
            c.forward_macs() - 128 * 16 * 128,
            (32 + 32 * 32) * 9 * 1024 + (32 * 64 + 64 * 64) * 9 * 256 + (64 * 128 + 128 * 128) * 9 * 64
        );
    }

    #[test]
    fn a_face_backbone_maps_faces_to_features_and_rejects_other_sizes() {
        let device = candle_core::Device::Cpu;
        let mut rng = crate::util::rng_for(1, "init");
        let mut params = super::super::Params::default();
        let mut init = Init { params: &mut params, rng: &mut rng, device: &device };
        let net = Backbone::new(&BackboneConfig::face_cnn(0.25, 16, 16), &mut init, Kernels::Fast).unwrap();
        let x = Tensor::zeros((3, 1, 16, 16), candle_core::DType::F32, &device).unwrap();
        assert_eq!(net.forward(&x).unwrap().dims(), &[3, 16]);
        let wrong = Tensor::zeros((3, 1, 28, 28), candle_core::DType::F32, &device).unwrap();
        let e = net.forward(&wrong).unwrap_err().to_string();
        assert!(e.contains("16, 16"), "{e}");
    }
}
