//! What the trainer reads images from: a set that turns indices into an `[n, 1, S, S]` f32
//! batch and u32 labels, with whatever augmentation it applies to training batches.

use candle_core::{Device, Result, Tensor};

pub trait Images: Sync {
    /// The images at `indices` as they are scored (no augmentation) and their labels.
    fn batch(&self, indices: &[usize], device: &Device) -> Result<(Tensor, Tensor)>;

    /// The training batch of `step`. Augmentation is drawn from the step, not from a running
    /// generator, so a run resumed from a checkpoint sees the same images as one never stopped.
    fn training_batch(&self, indices: &[usize], step: u64, device: &Device) -> Result<(Tensor, Tensor)> {
        let _ = step;
        self.batch(indices, device)
    }
}

impl Images for super::Split {
    fn batch(&self, indices: &[usize], device: &Device) -> Result<(Tensor, Tensor)> {
        super::Split::batch(self, indices, device)
    }
}
