//! Classification accuracy, by the classifier's logits or by the nearest class center.

/// Fraction of `predictions` equal to `labels`.
pub fn accuracy(predictions: &[usize], labels: &[u8]) -> f64 {
    assert_eq!(predictions.len(), labels.len());
    if labels.is_empty() {
        return f64::NAN;
    }
    predictions.iter().zip(labels).filter(|(&p, &l)| p == l as usize).count() as f64 / labels.len() as f64
}

/// Index of the nearest (Euclidean) center for each row of `features` (`dim` wide).
pub fn nearest_center(features: &[f32], dim: usize, centers: &[f32]) -> Vec<usize> {
    features
        .chunks(dim)
        .map(|x| {
            centers
                .chunks(dim)
                .map(|c| x.iter().zip(c).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>())
                .enumerate()
                .fold((0, f64::INFINITY), |best, (i, d)| if d < best.1 { (i, d) } else { best })
                .0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_and_nearest_center() {
        assert_eq!(accuracy(&[1, 2, 3, 0], &[1, 2, 0, 0]), 0.75);
        let p = nearest_center(&[0.1, 0.0, 0.9, 1.2], 2, &[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(p, vec![0, 1]);
    }
}
