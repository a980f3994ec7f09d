//! Angles for L-Softmax: the mean angle between each feature and its class's weight vector,
//! and the smallest angle between two class weight vectors (in degrees).

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
    let angles: Vec<f64> = features.chunks(dim).zip(labels).map(|(x, &l)| angle(x, &weight[l as usize * dim..(l as usize + 1) * dim])).filter(|a| a.is_finite()).collect();
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
}
