//! # replicate
//!
//! Rebuilds, from raw MNIST and with one command, the key figures of four papers on intra- and
//! inter-class losses: DeepID2 (softmax + contrastive verification), FaceNet (triplet loss with
//! semi-hard mining), center loss and Large-Margin Softmax.
//!
//! Data flows one way through the crate's rooms; each imports only rooms to its left
//! (`tests/layers.rs` checks it):
//!
//! ```text
//! util → stats → data → losses → nn → descriptors → metrics → optim → objectives → progress → train → results → plot
//!   → verdict → experiments → runner → notebook, bench, main
//! ```
//!
//! `objectives` are what a paper trains (built from `losses`), `verdict` is the vocabulary its
//! claims are stated in, `experiments` holds one folder per paper (config, run, figures, claims),
//! and `runner` plans, trains, records, merges and writes REPORT.md for all of them.

pub mod bench;
pub mod data;
pub mod descriptors;
pub mod experiments;
pub mod losses;
pub mod metrics;
pub mod nn;
pub mod notebook;
pub mod objectives;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod results;
pub mod runner;
pub mod stats;
pub mod train;
pub mod util;
pub mod verdict;

pub use experiments::{Experiment, Profile};
pub use results::Results;
pub use runner::RunOptions;

/// The crates whose types the API returns, so a notebook needs no `:dep` of its own for them.
pub use candle_core;
pub use polars;
