//! Whether a run had stopped improving when it stopped: the relative fall of its training loss
//! from the second-to-last tenth of its steps to the last tenth.

/// The loss fall (as a fraction of the earlier window's mean) above which a run counts as still
/// improving when it stops.
pub const STILL_IMPROVING: f64 = 0.05;

/// (mean loss over steps in (0.8·S, 0.9·S]) − (mean over (0.9·S, S]), over the first, where S is
/// the last logged step: positive while the loss still falls. None without a logged loss in
/// each window (too few log points) or with a non-finite one.
pub fn late_loss_fall(curve: &[(f64, f64)]) -> Option<f64> {
    let last = curve.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    if !last.is_finite() || last <= 0.0 {
        return None;
    }
    let mean_in = |lo: f64, hi: f64| {
        let v: Vec<f64> = curve.iter().filter(|p| p.0 > lo && p.0 <= hi).map(|p| p.1).collect();
        (!v.is_empty() && v.iter().all(|x| x.is_finite())).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let (earlier, later) = (mean_in(0.8 * last, 0.9 * last)?, mean_in(0.9 * last, last)?);
    (earlier > 0.0).then(|| (earlier - later) / earlier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_tail_has_converged_and_a_falling_one_has_not() {
        let flat: Vec<(f64, f64)> = (1..=100).map(|s| (s as f64 * 10.0, 0.5)).collect();
        assert_eq!(late_loss_fall(&flat), Some(0.0));
        // Loss 1/step: from steps 810-900 to 910-1000 it falls by about 10 %.
        let falling: Vec<(f64, f64)> = (1..=100).map(|s| (s as f64 * 10.0, 100.0 / s as f64)).collect();
        let fall = late_loss_fall(&falling).unwrap();
        assert!(fall > STILL_IMPROVING && (fall - 0.105).abs() < 0.01, "{fall}");
        assert_eq!(late_loss_fall(&[(1000.0, 0.5)]), None, "one point: no earlier window");
        assert_eq!(late_loss_fall(&[]), None);
    }
}
