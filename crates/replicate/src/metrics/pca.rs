//! Principal components of a small feature matrix (D up to a few hundred), for 2-D views.

/// Projects the rows of `features` (`dim` wide) onto their first `k` principal components.
/// Components come from power iteration with deflation on the covariance; each is signed so
/// that its largest coordinate is positive, so the view is the same on every run.
pub fn pca_project(features: &[f32], dim: usize, k: usize) -> Vec<Vec<f64>> {
    let n = features.len() / dim.max(1);
    if n == 0 {
        return Vec::new();
    }
    let mut mean = vec![0.0f64; dim];
    for x in features.chunks(dim) {
        for (m, &v) in mean.iter_mut().zip(x) {
            *m += v as f64 / n as f64;
        }
    }
    let mut cov = vec![0.0f64; dim * dim];
    for x in features.chunks(dim) {
        let c: Vec<f64> = x.iter().zip(&mean).map(|(&v, m)| v as f64 - m).collect();
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] += c[i] * c[j] / n as f64;
            }
        }
    }
    let mut components = Vec::with_capacity(k);
    for c in 0..k.min(dim) {
        let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + (i + c) as f64 * 0.01).collect();
        let mut eigen = 0.0;
        for _ in 0..500 {
            let w: Vec<f64> = (0..dim).map(|i| (0..dim).map(|j| cov[i * dim + j] * v[j]).sum()).collect();
            let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            v = w.iter().map(|x| x / norm).collect();
            eigen = norm;
        }
        let big = v.iter().copied().fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        if big < 0.0 {
            v.iter_mut().for_each(|x| *x = -*x);
        }
        for i in 0..dim {
            for j in 0..dim {
                cov[i * dim + j] -= eigen * v[i] * v[j];
            }
        }
        components.push(v);
    }
    features
        .chunks(dim)
        .map(|x| {
            components.iter().map(|v| x.iter().zip(&mean).zip(v).map(|((&a, m), w)| (a as f64 - m) * w).sum()).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_direction_of_largest_spread() {
        // Points along (1, 1, 0) with a little spread along z.
        let f: Vec<f32> = (0..20)
            .flat_map(|i| {
                let t = i as f32 - 10.0;
                [t, t, 0.1 * (i % 2) as f32]
            })
            .collect();
        let p = pca_project(&f, 3, 2);
        let spread = |k: usize| p.iter().map(|r| r[k] * r[k]).sum::<f64>();
        assert!(spread(0) > 100.0 * spread(1), "{} vs {}", spread(0), spread(1));
        // t runs over −10..9 (mean −0.5), so the last point lies 9.5·√2 along the first component.
        assert!((p[19][0] - 9.5 * 2f64.sqrt()).abs() < 1e-3, "{:?}", p[19]);
    }
}
