//! Pairwise distances between the rows of a batch, with a gradient that stays finite where
//! two rows coincide.
//!
//! D²[i,j] = ‖x_i‖² + ‖x_j‖² − 2·x_i·x_j, clamped at 0, with the diagonal set to exactly 0.
//! D[i,j]  = √D²[i,j], computed as √(D² + ε·[D² = 0])·[D² > 0] (TF-Addons' trick): candle's
//! `sqrt` backward is g / (2√x), which is NaN at 0 even when that entry is masked later.

use candle_core::{DType, Result, Tensor};

/// Which distance a metric loss compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// ‖x_i − x_j‖₂ (TF-Addons' default "L2").
    Euclidean,
    /// ‖x_i − x_j‖₂² (FaceNet, Sec. 3).
    SquaredEuclidean,
}

/// `[B, B]` squared Euclidean distances.
pub fn pairwise_squared(x: &Tensor) -> Result<Tensor> {
    let b = x.dim(0)?;
    let sq = x.sqr()?.sum_keepdim(1)?;
    let gram = x.matmul(&x.t()?)?;
    let d2 = sq.broadcast_add(&sq.t()?)?.sub(&(gram * 2.0)?)?.relu()?;
    let off_diagonal = Tensor::ones((b, b), x.dtype(), x.device())?.sub(&Tensor::eye(b, x.dtype(), x.device())?)?;
    d2.mul(&off_diagonal)
}

/// √x elementwise with gradient 0 (not NaN) where x is 0.
pub fn safe_sqrt(x: &Tensor) -> Result<Tensor> {
    let zero = x.le(0.0)?.to_dtype(x.dtype())?;
    let eps = if x.dtype() == DType::F64 { 1e-300 } else { 1e-30 };
    let nonzero = (1.0 - &zero)?;
    (x + (&zero * eps)?)?.sqrt()?.mul(&nonzero)
}

/// `[B, B]` distances of the requested kind.
pub fn pairwise(x: &Tensor, distance: Distance) -> Result<Tensor> {
    let d2 = pairwise_squared(x)?;
    match distance {
        Distance::SquaredEuclidean => Ok(d2),
        Distance::Euclidean => safe_sqrt(&d2),
    }
}

/// A scalar zero that is still connected to `x`, so a loss with no valid term has a zero
/// gradient rather than none. (`x * 0.0` would not do: candle drops zero affine ops from the graph.)
pub fn connected_zero(x: &Tensor) -> Result<Tensor> {
    x.sum_all()?.mul(&Tensor::zeros((), x.dtype(), x.device())?)
}

/// Row-major copy of a small matrix for the mining rules (which need no gradient).
pub fn to_host(x: &Tensor) -> Result<Vec<f64>> {
    x.detach().to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn distances_match_a_loop_and_stay_finite_on_duplicates() {
        let x = Var::from_vec(vec![0.0f64, 0.0, 3.0, 4.0, 3.0, 4.0], (3, 2), &Device::Cpu).unwrap();
        let d = pairwise(x.as_tensor(), Distance::Euclidean).unwrap();
        let v = to_host(&d).unwrap();
        let expect = [0.0, 5.0, 5.0, 5.0, 0.0, 0.0, 5.0, 0.0, 0.0];
        for (a, b) in v.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{v:?}");
        }
        let g = d.sum_all().unwrap().backward().unwrap();
        let grad = to_host(g.get(x.as_tensor()).unwrap()).unwrap();
        assert!(grad.iter().all(|g| g.is_finite()), "{grad:?}");
    }
}
