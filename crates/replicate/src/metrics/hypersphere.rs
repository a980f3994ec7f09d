//! Measures of the normalised-softmax family's features, where only directions count.
//!
//! - The angular Fisher score of SphereFace (Liu et al., CVPR 2017, appendix, as we read it):
//!   AFS = S_w / S_b, S_w = Σ_i Σ_{x ∈ X_i} (1 − cos⟨x, m_i⟩), S_b = Σ_i n_i (1 − cos⟨m_i, m⟩),
//!   with m_i the mean feature of class i and m the mean of all; lower is more discriminative.
//! - CosFace's margin, met or not: cos θ_y − m > max_{j≠y} cos θ_j for a feature of class y. In
//!   a plane no arrangement of C class weights lets every class meet m > 1 − cos(2π/C) (CosFace,
//!   Sec. 3.4): some class has a neighbour within 2π/C on both sides at best.

use std::collections::BTreeMap;

fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    (na > 0.0 && nb > 0.0).then(|| (dot / (na * nb)).clamp(-1.0, 1.0))
}

fn as_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// SphereFace's angular Fisher score of `features` (`[N, dim]` row-major) with labels; NaN with
/// fewer than two classes or no spread between class means. Features at the origin have no
/// direction and are left out.
pub fn angular_fisher_score(features: &[f32], dim: usize, labels: &[u8]) -> f64 {
    let mut by_class: BTreeMap<u8, Vec<Vec<f64>>> = BTreeMap::new();
    for (x, &label) in features.chunks(dim).zip(labels) {
        if x.iter().any(|&v| v != 0.0) && x.iter().all(|v| v.is_finite()) {
            by_class.entry(label).or_default().push(as_f64(x));
        }
    }
    let mean = |rows: &[&Vec<f64>]| -> Vec<f64> {
        (0..dim).map(|k| rows.iter().map(|r| r[k]).sum::<f64>() / rows.len() as f64).collect()
    };
    let all: Vec<&Vec<f64>> = by_class.values().flatten().collect();
    if by_class.len() < 2 {
        return f64::NAN;
    }
    let overall = mean(&all);
    let (mut within, mut between) = (0.0, 0.0);
    for rows in by_class.values() {
        let class_mean = mean(&rows.iter().collect::<Vec<_>>());
        within += rows.iter().filter_map(|x| cosine(x, &class_mean)).map(|c| 1.0 - c).sum::<f64>();
        between += rows.len() as f64 * cosine(&class_mean, &overall).map_or(0.0, |c| 1.0 - c);
    }
    if between > 0.0 {
        within / between
    } else {
        f64::NAN
    }
}

/// For each class (ascending), the fraction of its features whose target cosine beats every
/// other class's by more than `margin`: cos θ_y − margin > max_{j≠y} cos θ_j. `weight` is the
/// class weights `[C, dim]` row-major.
pub fn margin_met_by_class(features: &[f32], dim: usize, labels: &[u8], weight: &[f32], margin: f64) -> Vec<(u8, f64)> {
    let weights: Vec<Vec<f64>> = weight.chunks(dim).map(as_f64).collect();
    let mut counts: BTreeMap<u8, (usize, usize)> = BTreeMap::new();
    for (x, &label) in features.chunks(dim).zip(labels) {
        let x = as_f64(x);
        let cos: Vec<f64> = weights.iter().map(|w| cosine(&x, w).unwrap_or(0.0)).collect();
        let target = cos[label as usize];
        let rival = cos.iter().enumerate().filter(|(j, _)| *j != label as usize).map(|(_, c)| *c).fold(-1.0, f64::max);
        let entry = counts.entry(label).or_default();
        entry.0 += usize::from(target - margin > rival);
        entry.1 += 1;
    }
    counts.into_iter().map(|(label, (met, n))| (label, met as f64 / n as f64)).collect()
}

/// The largest cosine margin every one of `classes` evenly spread 2-D class weights can meet:
/// 1 − cos(2π/C) (CosFace, Sec. 3.4).
pub fn planar_margin_bound(classes: usize) -> f64 {
    1.0 - (std::f64::consts::TAU / classes as f64).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_degrees(points: &[(f64, f64, u8)]) -> (Vec<f32>, Vec<u8>) {
        let f =
            points.iter().flat_map(|&(d, r, _)| [(r * d.to_radians().cos()) as f32, (r * d.to_radians().sin()) as f32]);
        (f.collect(), points.iter().map(|p| p.2).collect())
    }

    #[test]
    fn angular_fisher_score_by_hand() {
        // Class 0 at ±10° (radius 1), class 1 at 180° ± 10° (radius 2): both class means lie on
        // their class's axis, so S_w = 4·(1 − cos 10°); the overall mean, (−cos 10° / 2, 0), points
        // at 180°, so S_b = 2·(1 − cos 180°) + 2·(1 − cos 0°) = 4.
        let (f, l) = at_degrees(&[(-10.0, 1.0, 0), (10.0, 1.0, 0), (170.0, 2.0, 1), (190.0, 2.0, 1)]);
        let within = 4.0 * (1.0 - 10f64.to_radians().cos());
        let score = angular_fisher_score(&f, 2, &l);
        assert!((score - within / 4.0).abs() < 1e-6, "{score}");
        // Tighter classes score lower; a single class or coincident means have no score.
        let (tight, l2) = at_degrees(&[(-2.0, 1.0, 0), (2.0, 1.0, 0), (178.0, 2.0, 1), (182.0, 2.0, 1)]);
        assert!(angular_fisher_score(&tight, 2, &l2) < score);
        assert!(angular_fisher_score(&f[..4], 2, &l[..2]).is_nan());
    }

    #[test]
    fn margins_above_the_planar_bound_fail_some_class() {
        // Eight class weights evenly spread, each class's features on its own weight: every
        // class meets any margin below the bound and none meets one above it.
        let classes = 8;
        let weight: Vec<f32> = (0..classes)
            .flat_map(|c| {
                let a = (c as f64 * 360.0 / classes as f64).to_radians();
                [a.cos() as f32, a.sin() as f32]
            })
            .collect();
        let labels: Vec<u8> = (0..classes as u8).collect();
        let bound = planar_margin_bound(classes);
        assert!((bound - 0.2929).abs() < 1e-4 && (planar_margin_bound(10) - 0.191).abs() < 1e-3);
        let below = margin_met_by_class(&weight, 2, &labels, &weight, bound - 0.01);
        assert!(below.iter().all(|&(_, f)| f == 1.0), "{below:?}");
        let above = margin_met_by_class(&weight, 2, &labels, &weight, bound + 0.01);
        assert!(above.iter().all(|&(_, f)| f == 0.0), "{above:?}");
        // A feature halfway between two weights meets no margin at all.
        let half = [(22.5f64.to_radians().cos()) as f32, (22.5f64.to_radians().sin()) as f32];
        assert_eq!(margin_met_by_class(&half, 2, &[0], &weight, 0.0), [(0, 0.0)]);
    }
}
