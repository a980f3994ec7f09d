//! Angles for L-Softmax: the mean angle between each feature and its class's weight vector,
//! the smallest angle between two class weight vectors, and the smallest empty gap between the
//! rays that neighbouring classes form in a 2-D feature plane (all in degrees).

fn angle(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return f64::NAN;
    }
    (dot / (na * nb)).clamp(-1.0, 1.0).acos().to_degrees()
}

/// Mean over samples of ∠(x_i, W_{y_i}); `weight` is `[C, dim]` row-major.
pub fn mean_angle_to_class_weight(features: &[f32], dim: usize, labels: &[u8], weight: &[f32]) -> f64 {
    let angles: Vec<f64> = features
        .chunks(dim)
        .zip(labels)
        .map(|(x, &l)| angle(x, &weight[l as usize * dim..(l as usize + 1) * dim]))
        .filter(|a| a.is_finite())
        .collect();
    angles.iter().sum::<f64>() / angles.len().max(1) as f64
}

/// min over class pairs of ∠(W_c, W_c').
pub fn min_weight_angle(weight: &[f32], dim: usize) -> f64 {
    let rows: Vec<&[f32]> = weight.chunks(dim).collect();
    let mut best = f64::INFINITY;
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            best = best.min(angle(rows[i], rows[j]));
        }
    }
    best
}

/// The smallest empty angle between the rays of two neighbouring classes of 2-D features, the
/// gap L-Softmax's Fig. 2 shows widening with m. Each class's ray is the arc, around the mean
/// direction of its features, that holds their central `coverage` share (0.9: 90%), so that a few
/// strays, such as misclassified images sitting in another class's ray, do not close a gap; classes are taken
/// in the order of their mean directions around the origin, and the gap between neighbours is
/// the angle between their mean directions less the half-arcs that face each other. Negative
/// when neighbouring rays overlap. `None` unless `dim` is 2 and at least two classes have a
/// finite feature off the origin.
pub fn min_ray_gap(features: &[f32], dim: usize, labels: &[u8], coverage: f64) -> Option<f64> {
    if dim != 2 {
        return None;
    }
    let mut by_class: std::collections::BTreeMap<u8, Vec<f64>> = std::collections::BTreeMap::new();
    for (x, &label) in features.chunks(2).zip(labels) {
        if x.iter().all(|v| v.is_finite()) && x.iter().any(|&v| v != 0.0) {
            by_class.entry(label).or_default().push((x[1] as f64).atan2(x[0] as f64));
        }
    }
    let wrap = |a: f64| (a + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
    // (mean direction, clockwise half-arc, counter-clockwise half-arc), radians.
    let mut rays: Vec<(f64, f64, f64)> = by_class
        .values()
        .map(|angles| {
            let mean = angles.iter().map(|a| a.sin()).sum::<f64>().atan2(angles.iter().map(|a| a.cos()).sum::<f64>());
            let mut offsets: Vec<f64> = angles.iter().map(|&a| wrap(a - mean)).collect();
            offsets.sort_by(f64::total_cmp);
            let tail = (1.0 - coverage) / 2.0;
            (mean, -quantile(&offsets, tail), quantile(&offsets, 1.0 - tail))
        })
        .collect();
    if rays.len() < 2 {
        return None;
    }
    rays.sort_by(|a, b| a.0.total_cmp(&b.0));
    let gaps = (0..rays.len()).map(|i| {
        let (here, next) = (rays[i], rays[(i + 1) % rays.len()]);
        (next.0 - here.0).rem_euclid(std::f64::consts::TAU) - here.2 - next.1
    });
    Some(gaps.fold(f64::INFINITY, f64::min).to_degrees())
}

/// Linear-interpolation quantile of sorted values (numpy's default), `q` in [0, 1].
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn right_angles() {
        let w = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0];
        assert!((min_weight_angle(&w, 2) - 90.0).abs() < 1e-9);
        let m = mean_angle_to_class_weight(&[1.0, 1.0, 0.0, 2.0], 2, &[0, 1], &w);
        assert!((m - 22.5).abs() < 1e-9);
    }

    /// Points at `(degrees, class)` on the unit circle.
    fn rays(points: &[(f64, u8)]) -> (Vec<f32>, Vec<u8>) {
        let features =
            points.iter().flat_map(|(d, _)| [d.to_radians().cos() as f32, d.to_radians().sin() as f32]).collect();
        (features, points.iter().map(|p| p.1).collect())
    }

    #[test]
    fn ray_gaps_subtract_the_facing_half_arcs() {
        // Rays centred at 0° and 90° (three evenly spaced angles each, ±10°) and a single ray at
        // 200°: their centres are 90°, 110° and 160° apart, and the central 90% of ±10° reaches 9°
        // a side, so the smallest gap is 90 − 9 − 9.
        let (f, l) = rays(&[(-10.0, 0), (0.0, 0), (10.0, 0), (80.0, 1), (90.0, 1), (100.0, 1), (200.0, 2)]);
        let gap = min_ray_gap(&f, 2, &l, 0.9).unwrap();
        assert!((gap - (90.0 - 9.0 - 9.0)).abs() < 1e-4, "{gap}");
        // Whole arcs (coverage 1) reach the outermost points: 90 − 10 − 10.
        assert!((min_ray_gap(&f, 2, &l, 1.0).unwrap() - 70.0).abs() < 1e-4);
        // Class 0 at 0° and 100° (a ray centred at 50° reaching 45° a side) overlaps class 1 at 90°.
        let (f, l) = rays(&[(0.0, 0), (100.0, 0), (90.0, 1), (90.0, 1)]);
        let gap = min_ray_gap(&f, 2, &l, 0.9).unwrap();
        assert!((gap - (40.0 - 45.0)).abs() < 1e-4, "{gap}");
        // Two points of one class either side of ±180° are a narrow ray at 180°, not a wide one at 0°.
        let (f, l) = rays(&[(179.0, 0), (-179.0, 0), (90.0, 1)]);
        assert!((min_ray_gap(&f, 2, &l, 0.9).unwrap() - (90.0 - 0.9)).abs() < 1e-4);
        assert_eq!(min_ray_gap(&f, 3, &l, 0.9), None);
        assert_eq!(min_ray_gap(&[1.0, 0.0], 2, &[0], 0.9), None);
    }
}
