//! How compact and separated the classes are, from the class means μ_c of the features
//! (not from learned centers):
//!
//! ```text
//! intra = mean_i ‖x_i − μ_{y_i}‖        inter = mean_{c < c'} ‖μ_c − μ_{c'}‖       R = intra / inter
//! tr S_w = (1/N) Σ_i ‖x_i − μ_{y_i}‖²    tr S_b = Σ_c (n_c / N) ‖μ_c − μ‖²
//! ```
//!
//! R is scale-free, so it compares feature spaces of different sizes (L-Softmax's features
//! grow to hundreds, center loss's shrink).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Compactness {
    pub intra: f64,
    pub inter: f64,
    pub ratio: f64,
    pub within_trace: f64,
    pub between_trace: f64,
    pub mean_norm: f64,
}

/// Class means `[C, dim]` (classes absent from `labels` get NaN rows) and counts.
pub fn class_means(features: &[f32], dim: usize, labels: &[u8], classes: usize) -> (Vec<f64>, Vec<usize>) {
    let mut sums = vec![0.0f64; classes * dim];
    let mut counts = vec![0usize; classes];
    for (x, &l) in features.chunks(dim).zip(labels) {
        counts[l as usize] += 1;
        for (s, &v) in sums[l as usize * dim..(l as usize + 1) * dim].iter_mut().zip(x) {
            *s += v as f64;
        }
    }
    for c in 0..classes {
        for s in &mut sums[c * dim..(c + 1) * dim] {
            *s = if counts[c] > 0 { *s / counts[c] as f64 } else { f64::NAN };
        }
    }
    (sums, counts)
}

pub fn compactness(features: &[f32], dim: usize, labels: &[u8]) -> Compactness {
    let n = labels.len();
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let (means, counts) = class_means(features, dim, labels, classes);
    let dist2 = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| (u - v).powi(2)).sum::<f64>();
    let mut intra = 0.0;
    let mut within = 0.0;
    let mut norm = 0.0;
    for (x, &l) in features.chunks(dim).zip(labels) {
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let d2 = dist2(&x, &means[l as usize * dim..(l as usize + 1) * dim]);
        intra += d2.sqrt();
        within += d2;
        norm += x.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    let present: Vec<usize> = (0..classes).filter(|&c| counts[c] > 0).collect();
    let mut inter = 0.0;
    let mut pairs = 0usize;
    for (k, &c) in present.iter().enumerate() {
        for &d in &present[k + 1..] {
            inter += dist2(&means[c * dim..(c + 1) * dim], &means[d * dim..(d + 1) * dim]).sqrt();
            pairs += 1;
        }
    }
    let mut global = vec![0.0; dim];
    for &c in &present {
        for (g, m) in global.iter_mut().zip(&means[c * dim..(c + 1) * dim]) {
            *g += m * counts[c] as f64 / n as f64;
        }
    }
    let between =
        present.iter().map(|&c| counts[c] as f64 / n as f64 * dist2(&means[c * dim..(c + 1) * dim], &global)).sum();
    let intra = intra / n as f64;
    let inter = if pairs > 0 { inter / pairs as f64 } else { f64::NAN };
    Compactness {
        intra,
        inter,
        ratio: intra / inter,
        within_trace: within / n as f64,
        between_trace: between,
        mean_norm: norm / n as f64,
    }
}

/// The share of within-class variance that lies along each class mean's direction (pooled over
/// classes): near 1 when classes are radial "spokes" from the origin, 1/dim when isotropic.
pub fn radial_fraction(features: &[f32], dim: usize, labels: &[u8]) -> f64 {
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let (means, _) = class_means(features, dim, labels, classes);
    let (mut radial, mut total) = (0.0, 0.0);
    for (x, &l) in features.chunks(dim).zip(labels) {
        let mu = &means[l as usize * dim..(l as usize + 1) * dim];
        let norm = mu.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let d: Vec<f64> = x.iter().zip(mu).map(|(&a, &m)| a as f64 - m).collect();
        let along: f64 = d.iter().zip(mu).map(|(a, m)| a * m / norm).sum();
        radial += along * along;
        total += d.iter().map(|v| v * v).sum::<f64>();
    }
    radial / total
}

/// How much longer each class of 2-D features is along its ray from the origin than across it:
/// for each class, the std of the feature norms over the std of the arc length across the ray
/// (mean norm × std of the angle to the class's mean direction, wrapped to ±π); the median over
/// classes. 1 for an isotropic blob, large for a spoke; None for features that are not 2-D or a
/// class without angular spread.
pub fn spoke_elongation(features: &[f32], labels: &[u8]) -> Option<f64> {
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut ratios = Vec::new();
    for class in 0..classes {
        let points: Vec<(f64, f64)> = features
            .chunks(2)
            .zip(labels)
            .filter(|(x, &l)| l as usize == class && x.len() == 2)
            .map(|(x, _)| (x[0] as f64, x[1] as f64))
            .collect();
        if points.len() < 2 {
            continue;
        }
        let n = points.len() as f64;
        let (sx, sy) = points.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
        let direction = sy.atan2(sx);
        let norms: Vec<f64> = points.iter().map(|p| p.0.hypot(p.1)).collect();
        let angles: Vec<f64> = points
            .iter()
            .map(|p| {
                let d = p.1.atan2(p.0) - direction;
                (d + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI) - std::f64::consts::PI
            })
            .collect();
        let std = |v: &[f64]| {
            let m = v.iter().sum::<f64>() / n;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt()
        };
        let across = norms.iter().sum::<f64>() / n * std(&angles);
        if across > 0.0 {
            ratios.push(std(&norms) / across);
        }
    }
    if ratios.is_empty() || features.len() != 2 * labels.len() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    Some(if ratios.len() % 2 == 1 { ratios[mid] } else { 0.5 * (ratios[mid - 1] + ratios[mid]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_built_clusters() {
        // Class 0 at (±1, 0), class 1 at (10 ± 1, 0): means (0,0) and (10,0).
        let f = [-1.0, 0.0, 1.0, 0.0, 9.0, 0.0, 11.0, 0.0];
        let c = compactness(&f, 2, &[0, 0, 1, 1]);
        assert!((c.intra - 1.0).abs() < 1e-12);
        assert!((c.inter - 10.0).abs() < 1e-12);
        assert!((c.ratio - 0.1).abs() < 1e-12);
        assert!((c.within_trace - 1.0).abs() < 1e-12);
        assert!((c.between_trace - 25.0).abs() < 1e-12);
        // Perfectly tight classes: R = 0.
        let tight = compactness(&[1.0, 1.0, 1.0, 1.0, 5.0, 5.0], 2, &[0, 0, 1]);
        assert_eq!(tight.ratio, 0.0);
    }

    #[test]
    fn spokes_are_radial() {
        // Class 0 along +x (1..3), class 1 along +y: all spread is radial.
        let spokes = [1.0, 0.0, 3.0, 0.0, 0.0, 1.0, 0.0, 3.0];
        assert!((radial_fraction(&spokes, 2, &[0, 0, 1, 1]) - 1.0).abs() < 1e-12);
        // Spread across the direction of the mean: none of it radial.
        let across = [5.0, -1.0, 5.0, 1.0];
        assert!(radial_fraction(&across, 2, &[0, 0]).abs() < 1e-12);
    }

    #[test]
    fn spokes_are_longer_along_their_ray_than_across_it() {
        // Class 0: norms 1..4 along +x with a small angular wobble; class 1: a ring segment at
        // norm 10 spread across the ray (more arc than radius).
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for (i, r) in [1.0f32, 2.0, 3.0, 4.0].iter().enumerate() {
            let a = if i % 2 == 0 { 0.02f32 } else { -0.02 };
            features.extend([r * a.cos(), r * a.sin()]);
            labels.push(0);
        }
        let spoke = spoke_elongation(&features, &labels).unwrap();
        assert!(spoke > 10.0, "{spoke}");
        for (i, a) in [-0.2f32, -0.1, 0.1, 0.2].iter().enumerate() {
            let r = if i % 2 == 0 { 10.1f32 } else { 9.9 };
            features.extend([r * (1.5 + a).cos(), r * (1.5 + a).sin()]);
            labels.push(1);
        }
        // The median of one spoke and one ring is between them; the ring alone is below 1.
        let ring: Vec<f32> = features[8..].to_vec();
        assert!(spoke_elongation(&ring, &[1, 1, 1, 1].map(|_| 0u8)).unwrap() < 0.1);
        assert!(spoke_elongation(&[1.0, 2.0, 3.0], &[0]).is_none(), "not 2-D");
    }
}
