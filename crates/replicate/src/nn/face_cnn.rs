//! The face backbone: LeNets++'s layers (conv + PReLU pairs, 2×2 max-pooling, an fc feature with
//! PReLU) with 3×3 kernels, sized for aligned grayscale faces:
//!
//! ```text
//! [conv 3×3/1 pad 1 + PReLU] ×2 (32)  → max-pool 2/2    S   → S/2
//! [conv 3×3/1 pad 1 + PReLU] ×2 (64)  → max-pool 2/2    S/2 → S/4
//! [conv 3×3/1 pad 1 + PReLU] ×2 (128) → max-pool 2/2    S/4 → S/8
//! fc 128·(S/8)² → feature_dim, + PReLU                    the face descriptor
//! ```
//!
//! S is the input side (a multiple of 8: 32 for View 1 sweeps, up to LFW's 64). It is the
//! 6-layer 3×3 network of ../shared/FACES.md's CPU calibration without its batch norm: the
//! project's kernels have none, and LeNets++ trains without it. `width` scales the channels.

use super::backbone::Plan;

/// The face backbone's layers for `input_side`×`input_side` images at channel multiplier `width`.
pub fn plan(width: f64, input_side: usize) -> Plan {
    Plan { input_side, kernel: 3, stages: super::backbone::stage_channels(width) }
}
