//! Networks: LeNets++ (the MNIST experiments' backbone) and the face backbone, both built by
//! `backbone` from the same layers, their heads, seeded parameters, and fast CPU kernels for
//! those layers.

pub mod backbone;
pub mod face_cnn;
pub mod heads;
pub mod kernels;
pub mod layers;
pub mod lenetspp;
pub mod params;

use candle_core::{Device, Result, Tensor};

pub use backbone::{Architecture, Backbone, BackboneConfig};
pub use heads::{l2_normalize, Head, HeadKind};
pub use layers::Kernels;
pub use params::{Init, ParamKind, Params};

/// What one forward pass gives an objective.
pub struct ModelOutput {
    /// The deep feature (after the fc layer's PReLU), `[B, feature_dim]`.
    pub features: Tensor,
    /// `features` L2-normalised for an embedding head; otherwise the features themselves.
    pub embedding: Tensor,
    /// Prediction logits x·Wᵀ for classifier heads.
    pub logits: Option<Tensor>,
}

/// A backbone and a head, with their parameters in a fixed order.
pub struct Model {
    pub backbone: Backbone,
    pub head: Head,
    pub params: Params,
    pub config: BackboneConfig,
}

impl Model {
    /// Builds the model; every initial value is drawn from `seed` in a fixed order.
    pub fn new(config: BackboneConfig, head: HeadKind, seed: u64, kernels: Kernels, device: &Device) -> Result<Model> {
        let mut rng = crate::util::rng_for(seed, "init");
        let mut params = Params::default();
        let mut init = params::Init { params: &mut params, rng: &mut rng, device };
        let backbone = Backbone::new(&config, &mut init, kernels)?;
        let head = Head::new(head, config.feature_dim, &mut init)?;
        Ok(Model { backbone, head, params, config })
    }

    /// The forward pass of evaluation (batch normalisation, if any, by its running statistics).
    pub fn forward(&self, x: &Tensor) -> Result<ModelOutput> {
        self.forward_in_mode(x, false)
    }

    /// The forward pass of a training step (batch normalisation by the batch's statistics,
    /// updating the running ones).
    pub fn forward_train(&self, x: &Tensor) -> Result<ModelOutput> {
        self.forward_in_mode(x, true)
    }

    fn forward_in_mode(&self, x: &Tensor, training: bool) -> Result<ModelOutput> {
        let features = self.backbone.forward_in_mode(x, training)?;
        let logits = self.head.logits(&features)?;
        let embedding = match self.head {
            Head::Embedding => l2_normalize(&features)?,
            _ => features.clone(),
        };
        Ok(ModelOutput { features, embedding, logits })
    }

    /// Every parameter by name, copied to the CPU (what a safetensors file holds).
    pub fn weights(&self) -> Result<Vec<(String, Tensor)>> {
        self.params
            .iter()
            .map(|p| Ok((p.name.clone(), p.var.as_tensor().to_device(&Device::Cpu)?.contiguous()?)))
            .collect()
    }

    /// Sets every parameter from `weights` (by name, as [`Model::weights`] gives them); a missing
    /// name or another shape is an error naming the parameter.
    pub fn set_weights(&self, weights: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        for p in self.params.iter() {
            let Some(w) = weights.get(&p.name) else {
                candle_core::bail!("the weights have no parameter {} (another model?)", p.name)
            };
            if w.dims() != p.var.dims() {
                candle_core::bail!(
                    "parameter {}: the weights have shape {:?}, the model {:?}",
                    p.name,
                    w.dims(),
                    p.var.dims()
                )
            }
            p.var.set(&w.to_device(p.var.device())?)?;
        }
        Ok(())
    }
}
