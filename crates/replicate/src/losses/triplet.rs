//! # Triplet loss — FaceNet (Schroff et al., CVPR 2015, Sec. 3.1, Eq. 1)
//!
//! L = (1/|T|) Σ_{(a,p,n) ∈ T} max(0, D(a,p) − D(a,n) + α)
//!
//! D is `Distance::SquaredEuclidean` (FaceNet) or `Distance::Euclidean` (TF-Addons' default);
//! T comes from a named mining rule (`losses::mining`), chosen online in the batch. The mean
//! counts zero-loss terms (TF-Addons' reduction). No valid term gives 0 with a zero gradient.

use candle_core::{Result, Tensor};

use super::distance::{connected_zero, pairwise, to_host, Distance};
use super::mining::{mine, Mining};

/// The loss with its mining rule and distance: FaceNet is `margin 0.2, SemiHard, SquaredEuclidean`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TripletLoss {
    pub margin: f64,
    pub mining: Mining,
    pub distance: Distance,
}

/// The loss and what the mining found.
pub struct TripletOutput {
    pub loss: Tensor,
    /// Number of triplets averaged over.
    pub terms: usize,
    /// Fraction of those with a positive hinge.
    pub active_fraction: f64,
    /// Mean D(a,p) and D(a,n) over the chosen triplets (NaN when there is none).
    pub mean_ap: f64,
    pub mean_an: f64,
}

impl TripletLoss {
    pub fn facenet(margin: f64) -> Self {
        TripletLoss { margin, mining: Mining::SemiHard, distance: Distance::SquaredEuclidean }
    }

    pub fn forward(&self, embeddings: &Tensor, labels: &Tensor) -> Result<TripletOutput> {
        let b = embeddings.dim(0)?;
        if labels.dims() != [b] {
            candle_core::bail!("TripletLoss: labels have shape {:?}, expected [{b}]", labels.dims());
        }
        let d = pairwise(embeddings, self.distance)?;
        let host = to_host(&d)?;
        let labels_host = labels.to_dtype(candle_core::DType::U32)?.to_vec1::<u32>()?;
        let triplets = mine(self.mining, &host, &labels_host);
        let terms = triplets.len();
        if terms == 0 {
            return Ok(TripletOutput {
                loss: connected_zero(embeddings)?,
                terms: 0,
                active_fraction: 0.0,
                mean_ap: f64::NAN,
                mean_an: f64::NAN,
            });
        }
        let (mut sum_ap, mut sum_an, mut active) = (0.0, 0.0, 0usize);
        let index = |rows: &[u32], cols: &[u32]| -> Vec<u32> {
            rows.iter().zip(cols).map(|(&r, &c)| r * b as u32 + c).collect()
        };
        let (ap, an) = (index(&triplets.anchors, &triplets.positives), index(&triplets.anchors, &triplets.negatives));
        for (&i, &j) in ap.iter().zip(&an) {
            let (dap, dan) = (host[i as usize], host[j as usize]);
            sum_ap += dap;
            sum_an += dan;
            active += usize::from(dap - dan + self.margin > 0.0);
        }
        let flat = d.flatten_all()?;
        let gather =
            |idx: Vec<u32>| -> Result<Tensor> { flat.index_select(&Tensor::from_vec(idx, terms, d.device())?, 0) };
        let hinge = ((gather(ap)? - gather(an)?)? + self.margin)?.relu()?;
        Ok(TripletOutput {
            loss: hinge.mean_all()?,
            terms,
            active_fraction: active as f64 / terms as f64,
            mean_ap: sum_ap / terms as f64,
            mean_an: sum_an / terms as f64,
        })
    }
}
