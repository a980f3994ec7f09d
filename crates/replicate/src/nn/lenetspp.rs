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

use super::backbone::Plan;

/// LeNets++'s layers at channel multiplier `width`.
pub fn plan(width: f64) -> Plan {
    Plan { input_side: crate::data::IMAGE_SIDE, kernel: 5, stages: super::backbone::stage_channels(width) }
}
