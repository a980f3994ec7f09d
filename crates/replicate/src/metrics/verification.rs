//! Pair verification, as LFW's protocol and FaceNet's Eqs. 5-7 define it.
//!
//! * 10-fold accuracy: the pairs are in 10 folds (contiguous blocks of the pair list, or folds
//!   given per pair: pairs within 10 disjoint sets of images, so that no image is in two folds);
//!   for each, the threshold that maximises accuracy on the other nine is applied to it; mean ±
//!   std over folds.
//! * VAL(d) = |{same pairs with D ≤ d}| / |same|,  FAR(d) = |{different pairs with D ≤ d}| / |different|.
//! * VAL at a target FAR: on the nine training folds, the threshold is the midpoint between the
//!   k-th and (k+1)-th smallest different-pair distance, k = ⌊FAR·n_diff⌋, so that the training
//!   FAR is as close to the target as the pairs allow without exceeding it (davidsandberg's
//!   `calculate_val` interpolates the same point on a grid); VAL and FAR are then measured on the
//!   held-out fold. Mean over folds.

/// Accuracy at threshold t: same pairs with D ≤ t and different pairs with D > t count as right.
fn accuracy_at(dist: &[f64], same: &[bool], t: f64) -> f64 {
    let right = dist.iter().zip(same).filter(|(&d, &s)| (d <= t) == s).count();
    right as f64 / dist.len().max(1) as f64
}

/// The threshold with the highest accuracy on these pairs (a midpoint between two distances).
pub fn best_threshold(dist: &[f64], same: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..dist.len()).collect();
    order.sort_by(|&i, &j| dist[i].total_cmp(&dist[j]));
    // Threshold below everything: all pairs called "different".
    let mut right = same.iter().filter(|&&s| !s).count() as i64;
    let (mut best, mut best_t) = (right, dist.get(order.first().copied().unwrap_or(0)).copied().unwrap_or(0.0) - 1.0);
    for (k, &i) in order.iter().enumerate() {
        right += if same[i] { 1 } else { -1 };
        let next = order.get(k + 1).map(|&j| dist[j]);
        if next == Some(dist[i]) {
            continue;
        }
        if right > best {
            best = right;
            best_t = match next {
                Some(n) => 0.5 * (dist[i] + n),
                None => dist[i] + 1.0,
            };
        }
    }
    best_t
}

fn fold_of(k: usize, n: usize, folds: usize) -> usize {
    k * folds / n.max(1)
}

/// The accuracy on the pairs `held_out` marks at the threshold that maximises accuracy on all the
/// others: one fold of a protocol whose folds are given (LFW's View 2 folds of disjoint people,
/// or View 1's training and test pairs). Returns (accuracy, threshold).
pub fn held_out_accuracy(dist: &[f64], same: &[bool], held_out: &[bool]) -> (f64, f64) {
    let pick = |want: bool| -> (Vec<f64>, Vec<bool>) {
        (0..dist.len()).filter(|&k| held_out[k] == want).map(|k| (dist[k], same[k])).unzip()
    };
    let (train_d, train_s) = pick(false);
    let (test_d, test_s) = pick(true);
    let t = best_threshold(&train_d, &train_s);
    (accuracy_at(&test_d, &test_s, t), t)
}

#[derive(Debug, Clone, PartialEq)]
pub struct FoldAccuracy {
    pub mean: f64,
    pub std: f64,
    pub thresholds: Vec<f64>,
}

/// Each pair's fold when the pair list is cut into `folds` contiguous blocks.
pub fn contiguous_folds(pairs: usize, folds: usize) -> Vec<usize> {
    (0..pairs).map(|k| fold_of(k, pairs, folds)).collect()
}

/// The pairs of fold `f` (test) and of all the others (train), as (distances, same).
fn split_fold(dist: &[f64], same: &[bool], fold: &[usize], f: usize) -> [(Vec<f64>, Vec<bool>); 2] {
    let (mut train, mut test) = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
    for k in 0..dist.len() {
        let to = if fold[k] == f { &mut test } else { &mut train };
        to.0.push(dist[k]);
        to.1.push(same[k]);
    }
    [train, test]
}

/// `folds`-fold verification accuracy (contiguous folds of the pair list, which is shuffled).
pub fn kfold_accuracy(dist: &[f64], same: &[bool], folds: usize) -> FoldAccuracy {
    kfold_accuracy_in(dist, same, &contiguous_folds(dist.len(), folds), folds)
}

/// [`kfold_accuracy`] with each pair's fold (0..`folds`) given.
pub fn kfold_accuracy_in(dist: &[f64], same: &[bool], fold: &[usize], folds: usize) -> FoldAccuracy {
    let mut accs = Vec::with_capacity(folds);
    let mut thresholds = Vec::with_capacity(folds);
    for f in 0..folds {
        let [(train_d, train_s), (test_d, test_s)] = split_fold(dist, same, fold, f);
        let t = best_threshold(&train_d, &train_s);
        accs.push(accuracy_at(&test_d, &test_s, t));
        thresholds.push(t);
    }
    let (mean, std) = mean_std(&accs);
    FoldAccuracy { mean, std, thresholds }
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (mean, var.sqrt())
}

/// (VAL, FAR) at threshold t.
pub fn val_far(dist: &[f64], same: &[bool], t: f64) -> (f64, f64) {
    let (mut ta, mut fa, mut ns, mut nd) = (0usize, 0usize, 0usize, 0usize);
    for (&d, &s) in dist.iter().zip(same) {
        if s {
            ns += 1;
            ta += usize::from(d <= t);
        } else {
            nd += 1;
            fa += usize::from(d <= t);
        }
    }
    (ta as f64 / ns.max(1) as f64, fa as f64 / nd.max(1) as f64)
}

/// The threshold whose FAR on these pairs is the largest achievable value ≤ `target`.
pub fn threshold_at_far(dist: &[f64], same: &[bool], target: f64) -> f64 {
    let mut diff: Vec<f64> = dist.iter().zip(same).filter(|(_, &s)| !s).map(|(&d, _)| d).collect();
    diff.sort_by(f64::total_cmp);
    let n = diff.len();
    if n == 0 {
        return f64::INFINITY;
    }
    let k = ((target * n as f64).floor() as usize).min(n);
    if k == 0 {
        // Below the closest different pair: FAR 0.
        return diff[0] - f64::EPSILON * diff[0].abs().max(1.0);
    }
    if k == n {
        return f64::INFINITY;
    }
    0.5 * (diff[k - 1] + diff[k])
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValAtFar {
    pub val: f64,
    pub val_std: f64,
    pub far: f64,
}

/// VAL at a target FAR, thresholds chosen on training folds (see the module doc).
pub fn val_at_far(dist: &[f64], same: &[bool], target: f64, folds: usize) -> ValAtFar {
    val_at_far_in(dist, same, &contiguous_folds(dist.len(), folds), target, folds)
}

/// [`val_at_far`] with each pair's fold (0..`folds`) given.
pub fn val_at_far_in(dist: &[f64], same: &[bool], fold: &[usize], target: f64, folds: usize) -> ValAtFar {
    let (mut vals, mut fars) = (Vec::new(), Vec::new());
    for f in 0..folds {
        let [(train_d, train_s), (test_d, test_s)] = split_fold(dist, same, fold, f);
        let t = threshold_at_far(&train_d, &train_s, target);
        let (v, fa) = val_far(&test_d, &test_s, t);
        vals.push(v);
        fars.push(fa);
    }
    let (val, val_std) = mean_std(&vals);
    ValAtFar { val, val_std, far: mean_std(&fars).0 }
}

/// ROC points (FAR, VAL, threshold) at every distinct distance, thinned to about `max_points`
/// spaced evenly in log FAR (FaceNet's Fig. 5 has a log FAR axis).
pub fn roc(dist: &[f64], same: &[bool], max_points: usize) -> Vec<(f64, f64, f64)> {
    let mut order: Vec<usize> = (0..dist.len()).collect();
    order.sort_by(|&i, &j| dist[i].total_cmp(&dist[j]));
    let ns = same.iter().filter(|&&s| s).count().max(1) as f64;
    let nd = same.iter().filter(|&&s| !s).count().max(1) as f64;
    let (mut ta, mut fa) = (0usize, 0usize);
    let mut points = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if same[i] {
            ta += 1
        } else {
            fa += 1
        }
        if order.get(k + 1).map(|&j| dist[j]) != Some(dist[i]) {
            points.push((fa as f64 / nd, ta as f64 / ns, dist[i]));
        }
    }
    if points.len() <= max_points {
        return points;
    }
    let min_far = points.iter().map(|p| p.0).find(|&f| f > 0.0).unwrap_or(1.0 / nd);
    let mut kept = Vec::with_capacity(max_points + 1);
    let mut next_log = min_far.ln();
    let step = (-min_far.ln()) / max_points as f64;
    for p in &points {
        if p.0 == 0.0 || p.0.ln() >= next_log {
            kept.push(*p);
            if p.0 > 0.0 {
                next_log = p.0.ln() + step;
            }
        }
    }
    if kept.last() != points.last() {
        kept.push(*points.last().expect("non-empty"));
    }
    kept
}

/// Each `dim`-long row scaled to unit length (a zero row stays zero): squared L2 distances
/// between unit rows are 2 − 2·cos, so thresholding them is cosine-similarity verification.
pub fn unit_rows(features: &[f32], dim: usize) -> Vec<f32> {
    features
        .chunks(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
            row.iter().map(move |x| x * scale)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_folds_take_each_threshold_from_the_other_folds() {
        // Fold 0 separates at 1.5, fold 1 at 3.5: each is scored at the other's threshold.
        let (dist, same) = ([1.0, 2.0, 3.0, 4.0], [true, false, true, false]);
        let acc = kfold_accuracy_in(&dist, &same, &[0, 0, 1, 1], 2);
        assert_eq!(acc.thresholds, [3.5, 1.5]);
        assert_eq!(acc.mean, 0.5);
        let interleaved = kfold_accuracy_in(&dist, &same, &[0, 1, 0, 1], 2);
        assert_ne!(interleaved.thresholds, acc.thresholds);
        assert_eq!(kfold_accuracy(&dist, &same, 2), acc, "contiguous blocks are these folds");
        let val = val_at_far_in(&dist, &same, &[0, 0, 1, 1], 0.0, 2);
        assert_eq!(val, val_at_far(&dist, &same, 0.0, 2));
        // Below each other fold's closest different pair (4.0, then 2.0): fold 0 accepts its
        // same pair at 1.0, fold 1 rejects its own at 3.0.
        assert_eq!(val.val, 0.5);
    }

    #[test]
    fn perfect_separation_gives_full_accuracy_and_val() {
        let dist = [0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 0.15, 1.05, 0.25, 1.15];
        let same = [true, true, true, false, false, false, true, false, true, false];
        let acc = kfold_accuracy(&dist, &same, 5);
        assert_eq!(acc.mean, 1.0);
        let t = best_threshold(&dist, &same);
        assert!(t > 0.3 && t < 1.0, "{t}");
        assert_eq!(val_far(&dist, &same, t), (1.0, 0.0));
    }

    #[test]
    fn known_roc() {
        // same: 1, 3; different: 2, 4 → at each distinct distance (FAR, VAL).
        let dist = [1.0, 2.0, 3.0, 4.0];
        let same = [true, false, true, false];
        let r = roc(&dist, &same, 100);
        assert_eq!(r, vec![(0.0, 0.5, 1.0), (0.5, 0.5, 2.0), (0.5, 1.0, 3.0), (1.0, 1.0, 4.0)]);
    }

    #[test]
    fn threshold_at_far_keeps_far_at_or_below_target() {
        let diff: Vec<f64> = (1..=1000).map(|i| i as f64).collect();
        let same = vec![false; 1000];
        let t = threshold_at_far(&diff, &same, 0.01);
        assert_eq!(val_far(&diff, &same, t).1, 0.01);
        let t0 = threshold_at_far(&diff, &same, 1e-4);
        assert_eq!(val_far(&diff, &same, t0).1, 0.0);
    }

    #[test]
    fn unit_rows_keep_direction_and_drop_norm() {
        let u = unit_rows(&[3.0, 4.0, 0.0, 0.0, -2.0, 0.0], 2);
        assert_eq!(u, vec![0.6, 0.8, 0.0, 0.0, -1.0, 0.0]);
    }

    #[test]
    fn the_held_out_pairs_are_scored_at_the_threshold_of_the_others() {
        // Training pairs put the threshold between 0.2 and 0.8 (at 0.5); on the held-out pairs it
        // calls 0.4 same (right) and 0.6 different (wrong, they are the same person).
        let dist = [0.1, 0.2, 0.8, 0.9, 0.4, 0.6];
        let same = [true, true, false, false, true, true];
        let held_out = [false, false, false, false, true, true];
        let (accuracy, t) = held_out_accuracy(&dist, &same, &held_out);
        assert_eq!((accuracy, t), (0.5, 0.5));
    }
}
