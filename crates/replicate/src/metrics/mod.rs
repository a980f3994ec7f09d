//! Metrics: classification, compactness, pair verification (10-fold, VAL@FAR, ROC), retrieval,
//! angles and convergence. All work on plain slices of features, after training.

pub mod angles;
pub mod classification;
pub mod compactness;
pub mod convergence;
pub mod hypersphere;
pub mod pca;
pub mod retrieval;
pub mod verification;

pub use angles::{mean_angle_to_class_weight, min_ray_gap, min_weight_angle};
pub use classification::{accuracy, nearest_center};
pub use compactness::{class_means, compactness, radial_fraction, spoke_elongation, Compactness};
pub use convergence::{late_loss_fall, STILL_IMPROVING};
pub use hypersphere::{angular_fisher_score, margin_met_by_class, planar_margin_bound};
pub use pca::pca_project;
pub use retrieval::{retrieval, Retrieval};
pub use verification::{
    contiguous_folds, held_out_accuracy, kfold_accuracy, kfold_accuracy_in, mean_std, roc, unit_rows, val_at_far,
    val_at_far_in, val_far, FoldAccuracy, ValAtFar,
};
