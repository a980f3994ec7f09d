//! Verification pair lists, as in LFW's protocol: a fixed, seeded list of same-class and
//! different-class pairs over a set of samples.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Pairs of positions into a feature matrix, and whether each pair shares a label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pairs {
    pub a: Vec<usize>,
    pub b: Vec<usize>,
    pub same: Vec<bool>,
}

impl Pairs {
    pub fn len(&self) -> usize {
        self.same.len()
    }

    pub fn is_empty(&self) -> bool {
        self.same.is_empty()
    }

    /// `n_same` distinct same-label pairs and `n_diff` distinct different-label pairs, drawn
    /// at random without replacement (fewer if the labels admit fewer), then interleaved in a
    /// seeded order so that consecutive folds mix both kinds.
    pub fn balanced(labels: &[u8], n_same: usize, n_diff: usize, rng: &mut ChaCha8Rng) -> Pairs {
        let n = labels.len();
        let total_pairs = n * n.saturating_sub(1) / 2;
        let same_available = {
            let mut counts = [0usize; 256];
            labels.iter().for_each(|&l| counts[l as usize] += 1);
            counts.iter().map(|&c| c * c.saturating_sub(1) / 2).sum::<usize>()
        };
        let want_same = n_same.min(same_available);
        let want_diff = n_diff.min(total_pairs - same_available);
        let mut seen = std::collections::HashSet::new();
        let (mut same, mut diff) = (Vec::new(), Vec::new());
        // Rejection sampling: fine while the requested pairs are a small part of all pairs.
        let mut attempts = 0usize;
        while (same.len() < want_same || diff.len() < want_diff) && attempts < 200 * (want_same + want_diff + 1) {
            attempts += 1;
            let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
            if i == j {
                continue;
            }
            let key = (i.min(j), i.max(j));
            let is_same = labels[i] == labels[j];
            let bucket = if is_same { &mut same } else { &mut diff };
            let want = if is_same { want_same } else { want_diff };
            if bucket.len() < want && seen.insert(key) {
                bucket.push(key);
            }
        }
        let mut all: Vec<((usize, usize), bool)> =
            same.into_iter().map(|p| (p, true)).chain(diff.into_iter().map(|p| (p, false))).collect();
        rand::seq::SliceRandom::shuffle(&mut all[..], rng);
        Pairs {
            a: all.iter().map(|p| p.0 .0).collect(),
            b: all.iter().map(|p| p.0 .1).collect(),
            same: all.iter().map(|p| p.1).collect(),
        }
    }

    /// Every unordered pair i < j (FaceNet scores all pairs of its hold-out set).
    pub fn all(labels: &[u8]) -> Pairs {
        let mut p = Pairs::default();
        for i in 0..labels.len() {
            for j in i + 1..labels.len() {
                p.a.push(i);
                p.b.push(j);
                p.same.push(labels[i] == labels[j]);
            }
        }
        p
    }

    /// Squared Euclidean distance of each pair, from row-major features of width `dim`.
    pub fn squared_distances(&self, features: &[f32], dim: usize) -> Vec<f64> {
        self.a
            .iter()
            .zip(&self.b)
            .map(|(&i, &j)| {
                let (x, y) = (&features[i * dim..(i + 1) * dim], &features[j * dim..(j + 1) * dim]);
                x.iter().zip(y).map(|(&u, &v)| ((u - v) as f64).powi(2)).sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng_for;

    #[test]
    fn balanced_pairs_are_distinct_correctly_labelled_and_seeded() {
        let labels: Vec<u8> = (0..200).map(|i| (i % 5) as u8).collect();
        let p = Pairs::balanced(&labels, 300, 400, &mut rng_for(3, "pairs"));
        assert_eq!(p.same.iter().filter(|&&s| s).count(), 300);
        assert_eq!(p.same.iter().filter(|&&s| !s).count(), 400);
        let mut keys = std::collections::HashSet::new();
        for k in 0..p.len() {
            assert_ne!(p.a[k], p.b[k]);
            assert_eq!(labels[p.a[k]] == labels[p.b[k]], p.same[k]);
            assert!(keys.insert((p.a[k], p.b[k])));
        }
        assert_eq!(p, Pairs::balanced(&labels, 300, 400, &mut rng_for(3, "pairs")));
    }

    #[test]
    fn all_pairs_and_distances() {
        let p = Pairs::all(&[0, 0, 1]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.same, vec![true, false, false]);
        let d = p.squared_distances(&[0.0, 0.0, 3.0, 4.0, 0.0, 1.0], 2);
        assert_eq!(d, vec![25.0, 1.0, 18.0]);
    }
}
