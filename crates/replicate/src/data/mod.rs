//! Data: MNIST and LFW files → validated splits → seeded batches and verification pairs.

pub mod datasets;
pub mod faces;
pub mod images;
pub mod lfw;
pub mod lfw_build;
pub mod mnist;
pub mod pairs;
pub mod sampler;

pub use datasets::{Dataset, Datasets};
pub use faces::{Augmentation, FaceImages, FaceWindow};
pub use images::Images;
pub use lfw::{FacePair, Lfw, LfwError, LfwSource};
pub use mnist::{fetch, DataError, Mnist, Source, Split, IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES};
pub use pairs::Pairs;
pub use sampler::{BatchSampler, ClassBalancedBatches, ShuffledBatches};
