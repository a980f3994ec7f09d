//! # replicate
//!
//! Rebuilds, from raw MNIST and with one command, the key figures of four papers on intra- and
//! inter-class losses: DeepID2 (softmax + contrastive verification), FaceNet (triplet loss with
//! semi-hard mining), center loss and Large-Margin Softmax.
//!
//! Data flows one way through the crate's rooms:
//!
//! ```text
//! data (MNIST files → batches, pairs) → nn (LeNets++ → features, logits)
//!   → losses (softmax, contrastive, triplet + mining, center, L-Softmax)
//!   → train (Objective, SGD, schedule) → results (parquet tables) → plot (figures)
//!   → experiments (one file per paper: config, sweep, figure) → notebooks, REPORT.md
//! ```
//!
//! `metrics` measures finished features (accuracy, compactness, verification, retrieval, angles);
//! `notebook` shows tables and figures in the evcxr Jupyter kernel.

pub mod bench;
pub mod data;
pub mod experiments;
pub mod losses;
pub mod metrics;
pub mod nn;
pub mod notebook;
pub mod optim;
pub mod plot;
pub mod report;
pub mod results;
pub mod train;
pub mod util;

pub use experiments::{Experiment, Profile, RunOptions};
pub use results::Results;

/// The crates whose types the API returns, so a notebook needs no `:dep` of its own for them.
pub use candle_core;
pub use polars;
