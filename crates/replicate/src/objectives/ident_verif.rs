//! # Identification + λ·verification — DeepID2, Sun et al., NIPS 2014, Sec. 2, Eqs. 1-2
//!
//! ```text
//! L = Ident + λ·Verif,   Ident = −log p̂_y   (softmax over the training identities)
//! Verif(f_i, f_j) = ½‖f_i − f_j‖²                     if y_i = y_j
//!                 = ½ max(0, m − ‖f_i − f_j‖)²        otherwise
//! ```
//!
//! Variant: the verification term covers every pair of the batch (the paper: one pair per step);
//! λ = ∞ trains on verification alone; m is fixed, or re-set every few steps to the distance
//! threshold that best separates that window's pairs (the paper does not learn m by gradient).

use std::collections::HashMap;

use candle_core::{Result, Tensor};

use super::{logits, saved, LossTerms, Objective};
use crate::losses::distance::{pairwise_squared, to_host};
use crate::losses::{contrastive_loss, softmax_loss, ContrastiveForm};
use crate::metrics::verification::best_threshold;
use crate::nn::ModelOutput;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarginRule {
    /// m stays at `margin`.
    Fixed,
    /// Every `margin_every` steps m is reset to the distance threshold that best separates the
    /// same and different pairs of those steps (DeepID2: m is not learned by gradient descent).
    Adaptive,
}

/// The verification term's settings besides λ (configs flatten them: keys `margin`,
/// `margin_rule`, `margin_every`, `form`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VerificationSettings {
    pub margin: f64,
    pub margin_rule: MarginRule,
    pub margin_every: u64,
    pub form: ContrastiveForm,
}

impl VerificationSettings {
    /// DeepID2's rule as this project runs it: the distance form, m starting at 1 and reset every
    /// `margin_every` steps to the threshold that best separates the recent pairs.
    pub fn adaptive(margin_every: u64) -> VerificationSettings {
        VerificationSettings {
            margin: 1.0,
            margin_rule: MarginRule::Adaptive,
            margin_every,
            form: ContrastiveForm::Distance,
        }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.margin > 0.0, "margin must be > 0, got {}", self.margin);
        Ok(())
    }

    pub fn objective(&self, lambda: f64) -> IdentVerif {
        let adaptive_every = (self.margin_rule == MarginRule::Adaptive).then_some(self.margin_every);
        IdentVerif { lambda, margin: self.margin, form: self.form, adaptive_every, recent: (Vec::new(), Vec::new()) }
    }
}

/// Ident + λ·Verif with the margin handled outside autograd.
pub struct IdentVerif {
    pub lambda: f64,
    pub margin: f64,
    pub form: ContrastiveForm,
    pub adaptive_every: Option<u64>,
    recent: (Vec<f64>, Vec<bool>),
}

impl Objective for IdentVerif {
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, _step: u64) -> Result<LossTerms> {
        let verif = contrastive_loss(&out.features, labels, self.margin, self.form)?;
        let stats = vec![("margin", self.margin)];
        if self.lambda.is_infinite() {
            return Ok(LossTerms { terms: vec![("loss", verif.clone()), ("verification_loss", verif)], stats });
        }
        let ident = softmax_loss(logits(out, "identification + verification")?, labels)?;
        let total = (&ident + (&verif * self.lambda)?)?;
        Ok(LossTerms {
            terms: vec![("loss", total), ("identification_loss", ident), ("verification_loss", verif)],
            stats,
        })
    }

    fn after_step(&mut self, out: &ModelOutput, labels: &Tensor, step: u64) -> Result<()> {
        let Some(every) = self.adaptive_every else { return Ok(()) };
        let d2 = to_host(&pairwise_squared(&out.features.detach())?)?;
        let l = labels.to_vec1::<u32>()?;
        let b = l.len();
        for i in 0..b {
            for j in i + 1..b {
                // The threshold lives on the quantity the hinge compares with m.
                let d = match self.form {
                    ContrastiveForm::Distance => d2[i * b + j].sqrt(),
                    ContrastiveForm::SquaredDistance => d2[i * b + j],
                };
                self.recent.0.push(d);
                self.recent.1.push(l[i] == l[j]);
            }
        }
        if (step + 1).is_multiple_of(every.max(1)) {
            let t = best_threshold(&self.recent.0, &self.recent.1);
            if t.is_finite() && t > 0.0 {
                self.margin = t;
            }
            self.recent.0.clear();
            self.recent.1.clear();
        }
        Ok(())
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let device = candle_core::Device::Cpu;
        let same: Vec<u8> = self.recent.1.iter().map(|&s| s as u8).collect();
        Ok(vec![
            ("margin".into(), Tensor::new(&[self.margin], &device)?),
            ("recent_distances".into(), Tensor::new(self.recent.0.as_slice(), &device)?),
            ("recent_same".into(), Tensor::new(same.as_slice(), &device)?),
        ])
    }

    fn restore(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let margin = saved(state, "margin")?.to_vec1::<f64>()?;
        let distances = saved(state, "recent_distances")?.to_vec1::<f64>()?;
        let same = saved(state, "recent_same")?.to_vec1::<u8>()?;
        let [margin] = margin[..] else { candle_core::bail!("the saved margin is not one number") };
        if distances.len() != same.len() {
            candle_core::bail!("the saved pair distances and same-class flags differ in length");
        }
        self.margin = margin;
        self.recent = (distances, same.into_iter().map(|s| s != 0).collect());
        Ok(())
    }
}
