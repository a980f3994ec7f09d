//! Training objectives: what a paper adds to the one training loop. Each file is one objective,
//! built from the plain loss functions in [`crate::losses`] (and a mining rule where it needs one),
//! with its settings as a small serde struct that experiment configs flatten in, so a paper's
//! experiment and the leaderboard train a method from the same settings.

pub mod angular_margin;
pub mod ident_verif;
pub mod lsoftmax;
pub mod softmax;
pub mod softmax_center;
pub mod triplet;

use std::collections::HashMap;

use candle_core::{Result, Tensor};

use crate::nn::ModelOutput;

pub use angular_margin::{AngularMarginLoss, SphereAnnealing};
pub use ident_verif::{IdentVerif, MarginRule, VerificationSettings};
pub use lsoftmax::{LSoftmaxLoss, LambdaAnnealing, CAFFE_PLATEAU};
pub use softmax::Softmax;
pub use softmax_center::{CenterSettings, CenterUpdate, SoftmaxCenter};
pub use triplet::{Triplet, TripletSettings};

/// Named loss terms of one batch; `terms[0]` is the total that is back-propagated.
pub struct LossTerms {
    pub terms: Vec<(&'static str, Tensor)>,
    /// Scalars worth logging that are not losses (λ, margin, mining statistics …).
    pub stats: Vec<(&'static str, f64)>,
}

impl LossTerms {
    pub fn total(total: Tensor) -> Self {
        LossTerms { terms: vec![("loss", total)], stats: Vec::new() }
    }
}

/// What a paper adds to training.
pub trait Objective {
    /// Loss terms for one batch (named, so curves.parquet gets a column each); the first is the total.
    fn loss(&mut self, out: &ModelOutput, labels: &Tensor, step: u64) -> Result<LossTerms>;

    /// State updated outside autograd after the optimiser step (centers, an adaptive margin).
    fn after_step(&mut self, _out: &ModelOutput, _labels: &Tensor, _step: u64) -> Result<()> {
        Ok(())
    }

    /// A reason to stop this run although every number is finite (e.g. L-Softmax's 87.34 plateau).
    fn diverged(&self, _terms: &[(&'static str, f64)]) -> Option<String> {
        None
    }

    /// The state `after_step` keeps (centers, a margin and the distances it is chosen from), for
    /// a checkpoint; parameters the optimiser trains are the model's and are saved with it.
    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(Vec::new())
    }

    /// Takes back what [`Objective::state`] returned.
    fn restore(&mut self, _state: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
}

/// The tensor `name` of a saved objective state, or an error naming it.
fn saved<'a>(state: &'a HashMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    state.get(name).ok_or_else(|| candle_core::Error::Msg(format!("the saved objective state has no {name:?}")))
}

/// The classifier logits of a model output, or an error naming the objective that needs them.
fn logits<'a>(out: &'a ModelOutput, objective: &str) -> Result<&'a Tensor> {
    out.logits.as_ref().ok_or_else(|| candle_core::Error::Msg(format!("{objective} needs a classifier head")))
}
