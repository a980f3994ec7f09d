//! Losses of the four papers and of their successors (the normalised-softmax family), one file
//! per rule, each opening with the equation it implements. They take and return candle tensors
//! (F32 or F64); labels are U32 `[B]`.

pub mod angular_margin;
pub mod center;
pub mod contrastive;
pub mod distance;
pub mod lsoftmax;
pub mod mining;
pub mod softmax;
pub mod triplet;

pub use angular_margin::{margin_logits, margin_test_logits, AngularMargin};
pub use center::CenterLoss;
pub use contrastive::{contrastive_loss, ContrastiveForm};
pub use distance::Distance;
pub use lsoftmax::{psi, LSoftmax, LambdaSchedule};
pub use mining::{mine, Mining, Triplets};
pub use softmax::{log_softmax, softmax_loss};
pub use triplet::{TripletLoss, TripletOutput};
