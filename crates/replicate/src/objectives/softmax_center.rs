//! # Softmax + λ·center loss — Wen et al., ECCV 2016, Sec. 3.2, Eqs. 2-4
//!
//! ```text
//! L = L_S + λ·L_C,   L_C = ½ Σ_i ‖x_i − c_{y_i}‖²
//! Δc_j = Σ_i δ(y_i = j)(c_j − x_i) / (1 + Σ_i δ(y_i = j)),   c_j ← c_j − α·Δc_j   (Eq. 4)
//! ```
//!
//! Variant: the paper's update with a fixed α, or caffe-face's (Δc applied by the solver with the
//! current learning rate and momentum).

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor};

use super::{logits, saved, LossTerms, Objective};
use crate::losses::{softmax_loss, CenterLoss};
use crate::nn::ModelOutput;
use crate::optim::MultiStep;

/// How the centers move after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CenterUpdate {
    /// The paper's Eq. 4 with a fixed α: c ← c − α·Δc.
    Paper,
    /// caffe-face: Δc is the centers' "gradient", applied by the SGD solver with the current
    /// learning rate and momentum 0.9 (so α = lr, decaying with the schedule).
    Caffe,
}

/// The center loss's settings besides λ (configs flatten them: keys `alpha`, `center_update`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CenterSettings {
    pub alpha: f64,
    pub center_update: CenterUpdate,
}

impl CenterSettings {
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.alpha),
            "alpha must lie in [0, 1] (the paper's range), got {}",
            self.alpha
        );
        Ok(())
    }

    /// The objective for `classes` centers of `dim` dimensions with weight `lambda`; the caffe
    /// update follows the run's learning-rate `schedule` and `momentum`.
    pub fn objective(
        &self,
        lambda: f64,
        classes: usize,
        dim: usize,
        schedule: MultiStep,
        momentum: f64,
        device: &Device,
    ) -> Result<SoftmaxCenter> {
        let center = CenterLoss::new(classes, dim, self.alpha, device)?;
        Ok(SoftmaxCenter { center, lambda, update: self.center_update, schedule, momentum, velocity: None })
    }
}

/// L_S + λ·L_C, with the centers updated after every step.
pub struct SoftmaxCenter {
    pub center: CenterLoss,
    pub lambda: f64,
    pub update: CenterUpdate,
    pub schedule: MultiStep,
    pub momentum: f64,
    velocity: Option<Tensor>,
}

impl Objective for SoftmaxCenter {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, _step: u64) -> Result<LossTerms> {
        let softmax = softmax_loss(logits(out, "center loss")?, labels)?;
        let center = self.center.loss(&out.features, labels)?;
        let total = (&softmax + (&center * self.lambda)?)?;
        Ok(LossTerms {
            terms: vec![("loss", total), ("softmax_loss", softmax), ("center_loss", center)],
            stats: Vec::new(),
        })
    }

    fn after_step(&mut self, out: &ModelOutput, labels: &Tensor, step: u64) -> Result<()> {
        match self.update {
            CenterUpdate::Paper => self.center.update(&out.features, labels),
            CenterUpdate::Caffe => {
                let delta = (self.center.delta(&out.features, labels)? * self.schedule.at(step))?;
                let v = match self.velocity.take() {
                    Some(v) => ((v * self.momentum)? + delta)?,
                    None => delta,
                };
                let moved = (self.center.centers() - &v)?;
                self.velocity = Some(v);
                self.center.set_centers(moved)
            }
        }
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut state = vec![("centers".to_string(), self.center.centers().clone())];
        state.extend(self.velocity.iter().map(|v| ("center_velocity".to_string(), v.clone())));
        Ok(state)
    }

    fn restore(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let centers = saved(state, "centers")?;
        let device = self.center.centers().device().clone();
        let velocity = state.get("center_velocity").map(|v| v.to_device(&device)).transpose()?;
        self.center.set_centers(centers.to_device(&device)?)?;
        self.velocity = velocity;
        Ok(())
    }
}
