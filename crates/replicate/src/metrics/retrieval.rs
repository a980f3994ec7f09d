//! Retrieval within one set (each sample queries all others): precision@1 and MAP@R
//! (Musgrave et al., "A Metric Learning Reality Check", 2020).
//!
//! MAP@R: for a query with R other samples of its class, AP@R = (1/R) Σ_{i ≤ R} P(i)·rel(i)
//! over its R nearest neighbours; MAP@R is the mean over queries with R ≥ 1.

use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retrieval {
    pub precision_at_1: f64,
    pub map_at_r: f64,
}

pub fn retrieval(features: &[f32], dim: usize, labels: &[u8]) -> Retrieval {
    let n = labels.len();
    let per_query: Vec<Option<(f64, f64)>> = (0..n)
        .into_par_iter()
        .map(|q| {
            let x = &features[q * dim..(q + 1) * dim];
            let r = labels.iter().enumerate().filter(|&(j, &l)| j != q && l == labels[q]).count();
            if r == 0 {
                return None;
            }
            let mut others: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != q)
                .map(|j| {
                    (x.iter().zip(&features[j * dim..(j + 1) * dim]).map(|(a, b)| ((a - b) as f64).powi(2)).sum(), j)
                })
                .collect();
            others.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let (mut hits, mut ap) = (0usize, 0.0);
            for (i, &(_, j)) in others.iter().take(r).enumerate() {
                if labels[j] == labels[q] {
                    hits += 1;
                    ap += hits as f64 / (i + 1) as f64;
                }
            }
            let p1 = f64::from(u8::from(labels[others[0].1] == labels[q]));
            Some((p1, ap / r as f64))
        })
        .collect();
    let valid: Vec<(f64, f64)> = per_query.into_iter().flatten().collect();
    let m = valid.len().max(1) as f64;
    Retrieval {
        precision_at_1: valid.iter().map(|v| v.0).sum::<f64>() / m,
        map_at_r: valid.iter().map(|v| v.1).sum::<f64>() / m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_built_retrieval() {
        // Two tight classes far apart: perfect.
        let f = [0.0, 0.1, 0.2, 10.0, 10.1, 10.2];
        let r = retrieval(&f, 1, &[0, 0, 0, 1, 1, 1]);
        assert_eq!(r, Retrieval { precision_at_1: 1.0, map_at_r: 1.0 });
        // 1-D points 0, 1, 2 labelled a, b, a: query 0 → nearest 1 (miss), then 2 (hit at rank 2).
        let r = retrieval(&[0.0, 1.0, 2.0], 1, &[0, 1, 0]);
        // Queries 0 and 2 each have R = 1 and miss at rank 1; query 1 has R = 0 and is skipped.
        assert_eq!(r, Retrieval { precision_at_1: 0.0, map_at_r: 0.0 });
    }
}
