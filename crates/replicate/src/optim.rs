//! SGD with momentum and L2 weight decay, and the multistep learning-rate schedule.
//!
//! Momentum follows Caffe's solver, the one all four papers' code used:
//!
//! ```text
//! v ← μ·v + lr·lr_mult·(g + wd·decay_mult·w)        w ← w − v
//! ```
//!
//! PyTorch instead keeps v ← μ·v + (g + wd·w) and steps w ← w − lr·v. The two agree while lr is
//! constant and differ after an lr change: Caffe's velocity carries the old lr for a while,
//! PyTorch's rescales at once. We follow Caffe so that the papers' solvers (multistep decays)
//! mean what they meant there. As in caffe-face: biases get lr × 2 and no decay; PReLU slopes no
//! decay. Velocities are detached tensors: gradients carry no graph in candle 0.11, but w does.
//! With `max_grad_norm` > 0 the raw gradients are first scaled down together so that their
//! global L2 norm is at most that (PyTorch's `clip_grad_norm_`, which insightface's ArcFace
//! training applies with 5).

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor};

use crate::nn::{ParamKind, Params};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SgdConfig {
    pub momentum: f64,
    pub weight_decay: f64,
    /// The largest global L2 norm of a step's gradients (0: no clipping).
    #[serde(default)]
    pub max_grad_norm: f64,
}

pub struct Sgd {
    config: SgdConfig,
    velocity: Vec<Option<Tensor>>,
}

impl Sgd {
    pub fn new(config: SgdConfig, params: &Params) -> Self {
        Sgd { config, velocity: vec![None; params.len()] }
    }

    fn multipliers(kind: ParamKind) -> (f64, f64) {
        match kind {
            ParamKind::Weight => (1.0, 1.0),
            ParamKind::Bias => (2.0, 0.0),
            ParamKind::Slope => (1.0, 0.0),
            ParamKind::Statistic => (0.0, 0.0),
        }
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step(&mut self, params: &Params, grads: &GradStore, lr: f64) -> Result<()> {
        let clip = self.clip_factor(params, grads)?;
        for (slot, p) in self.velocity.iter_mut().zip(params.iter()) {
            let Some(g) = grads.get(p.var.as_tensor()) else { continue };
            let (lr_mult, decay_mult) = Self::multipliers(p.kind);
            let w = p.var.as_detached_tensor();
            let g = if clip < 1.0 { (g.detach() * clip)? } else { g.detach() };
            let decayed = if self.config.weight_decay * decay_mult != 0.0 {
                (g + (&w * (self.config.weight_decay * decay_mult))?)?
            } else {
                g
            };
            let scaled = (decayed * (lr * lr_mult))?;
            let v = match slot.take() {
                Some(v) if self.config.momentum != 0.0 => ((v * self.config.momentum)? + scaled)?,
                _ => scaled,
            };
            p.var.set(&(w - &v)?)?;
            *slot = Some(v.detach());
        }
        Ok(())
    }

    /// The factor ≤ 1 that brings the gradients' global L2 norm down to `max_grad_norm`.
    fn clip_factor(&self, params: &Params, grads: &GradStore) -> Result<f64> {
        if self.config.max_grad_norm <= 0.0 {
            return Ok(1.0);
        }
        let mut squares = 0.0;
        for p in params.iter() {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                squares += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            }
        }
        let norm = squares.sqrt();
        Ok(if norm > self.config.max_grad_norm { self.config.max_grad_norm / norm } else { 1.0 })
    }

    /// The velocities, by parameter position (none before a parameter's first step).
    pub fn velocities(&self) -> impl Iterator<Item = (usize, &Tensor)> {
        self.velocity.iter().enumerate().filter_map(|(i, v)| v.as_ref().map(|v| (i, v)))
    }

    /// Sets the velocities (for a resumed run): `saved` pairs positions with tensors shaped as
    /// their parameters; on an error nothing has changed.
    pub fn set_velocities(&mut self, params: &Params, saved: Vec<(usize, Tensor)>) -> Result<()> {
        let shapes: Vec<&[usize]> = params.iter().map(|p| p.var.as_tensor().dims()).collect();
        let mut velocity = vec![None; params.len()];
        for (i, v) in saved {
            match shapes.get(i) {
                Some(shape) if *shape == v.dims() => velocity[i] = Some(v.detach()),
                _ => candle_core::bail!("a saved velocity (parameter {i}, shape {:?}) fits no parameter", v.dims()),
            }
        }
        self.velocity = velocity;
        Ok(())
    }
}

/// lr(step) = base · γ^(number of milestones ≤ step), Caffe's "multistep".
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MultiStep {
    pub base: f64,
    pub gamma: f64,
    pub milestones: Vec<u64>,
}

impl MultiStep {
    pub fn at(&self, step: u64) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= step).count();
        self.base * self.gamma.powi(passed as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn caffe_momentum_by_hand() {
        let mut params = Params::default();
        let w = params.add("w", Tensor::new(&[1.0f32], &Device::Cpu).unwrap(), ParamKind::Weight).unwrap();
        let mut opt = Sgd::new(SgdConfig { momentum: 0.9, weight_decay: 0.1, max_grad_norm: 0.0 }, &params);
        // loss = 3w → g = 3. Step 1: v = 0.5·(3 + 0.1·1) = 1.55, w = −0.55.
        let grads = (w.as_tensor() * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&params, &grads, 0.5).unwrap();
        let w1 = w.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((w1 - (-0.55)).abs() < 1e-6, "{w1}");
        // Step 2 at lr 0.1: v = 0.9·1.55 + 0.1·(3 + 0.1·(−0.55)) = 1.6895, w = −2.2395.
        let grads = (w.as_tensor() * 3.0).unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&params, &grads, 0.1).unwrap();
        let w2 = w.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((w2 - (-2.2395)).abs() < 1e-5, "{w2}");
    }

    #[test]
    fn biases_get_double_lr_and_no_decay() {
        let mut params = Params::default();
        let b = params.add("b", Tensor::new(&[1.0f32], &Device::Cpu).unwrap(), ParamKind::Bias).unwrap();
        let mut opt = Sgd::new(SgdConfig { momentum: 0.9, weight_decay: 0.5, max_grad_norm: 0.0 }, &params);
        let grads = b.as_tensor().sum_all().unwrap().backward().unwrap();
        opt.step(&params, &grads, 0.1).unwrap();
        assert!((b.as_tensor().to_vec1::<f32>().unwrap()[0] - 0.8).abs() < 1e-6);
    }

    /// Gradients (3, 4) have norm 5: clipped at 1 they become (0.6, 0.8) across both
    /// parameters; a norm already below the limit is left alone.
    #[test]
    fn clipping_scales_every_gradient_by_the_global_norm() {
        let mut params = Params::default();
        let a = params.add("a", Tensor::new(&[0.0f32], &Device::Cpu).unwrap(), ParamKind::Weight).unwrap();
        let b = params.add("b", Tensor::new(&[0.0f32], &Device::Cpu).unwrap(), ParamKind::Weight).unwrap();
        let loss = || ((a.as_tensor() * 3.0).unwrap() + (b.as_tensor() * 4.0).unwrap()).unwrap().sum_all().unwrap();
        for (limit, want) in [(1.0, [-0.6f32, -0.8]), (10.0, [-3.0, -4.0]), (0.0, [-3.0, -4.0])] {
            a.set(&Tensor::new(&[0.0f32], &Device::Cpu).unwrap()).unwrap();
            b.set(&Tensor::new(&[0.0f32], &Device::Cpu).unwrap()).unwrap();
            let mut opt = Sgd::new(SgdConfig { momentum: 0.0, weight_decay: 0.0, max_grad_norm: limit }, &params);
            opt.step(&params, &loss().backward().unwrap(), 1.0).unwrap();
            let got = [a.as_tensor().to_vec1::<f32>().unwrap()[0], b.as_tensor().to_vec1::<f32>().unwrap()[0]];
            assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "limit {limit}: {got:?}");
        }
    }

    #[test]
    fn multistep_schedule() {
        let s = MultiStep { base: 0.01, gamma: 0.8, milestones: vec![5000, 8000] };
        assert_eq!(s.at(0), 0.01);
        assert_eq!(s.at(4999), 0.01);
        assert!((s.at(5000) - 0.008).abs() < 1e-15);
        assert!((s.at(9999) - 0.0064).abs() < 1e-15);
    }
}
