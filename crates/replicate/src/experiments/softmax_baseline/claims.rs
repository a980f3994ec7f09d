//! What `softmax-baseline` claims, as rules from its recorded runs (and their test features) to claim rows.

use anyhow::Result;

use crate::experiments::seeds::Seeded;
use crate::experiments::setup::points_2d;
use crate::metrics::spoke_elongation;
use crate::results::{Record, Table};
use crate::stats::{self, Interval};
use crate::verdict::{fmt_pct, Claim, Direction, Section, Verdict, MIN_SEEDS};

/// The test accuracy above which 2-D features count as separable.
pub const SEPARABLE: f64 = 0.97;

/// A class is a spoke when it is at least this many times longer along its ray than across it
/// ([`spoke_elongation`]); fixed before the reruns from the recorded runs (seed 1): softmax-only
/// 1.77 and 1.66 (the center-loss sweep's λ = 0), center loss λ = 1e-4 1.43, 1e-3 1.37, 1e-2
/// 1.15, 0.1 0.90.
pub const SPOKE: f64 = 1.5;

/// (seed, value) of every finished run.
fn per_seed(runs: &Table, value: impl Fn(&Record) -> Result<Option<f64>>) -> Result<Vec<(u64, f64)>> {
    let all = Seeded::collect(runs.records(), |_| Ok(Some(0.0)), |r| if r.finished()? { value(r) } else { Ok(None) })?;
    Ok(all.seeds(0.0).to_vec())
}

/// A threshold claim over seeds: the interval of the mean lies above `threshold` (reproduced),
/// below it (not reproduced), or covers it.
fn above(values: &[(u64, f64)], threshold: f64) -> (Option<Interval>, Verdict) {
    let interval = stats::t_interval(&values.iter().map(|v| v.1).collect::<Vec<_>>());
    let verdict = Verdict::of_effect(interval.map(|i| i.minus(threshold)).as_ref(), Direction::Up, 0.0);
    (interval, verdict)
}

fn interval_text(i: Option<&Interval>, n: usize, show: impl Fn(f64) -> String) -> String {
    match i {
        Some(i) => format!("{} [{}, {}], t interval over {n} seeds", show(i.estimate), show(i.low), show(i.high)),
        None => format!("{} ({n} seed{}; a verdict needs {MIN_SEEDS})", "n/a", if n == 1 { "" } else { "s" }),
    }
}

/// Softmax alone separates the 2-D features: the interval of test accuracy over seeds lies above
/// [`SEPARABLE`].
pub fn separable(runs: &Table) -> Result<Claim> {
    let acc = per_seed(runs, |r| r.f64("test_accuracy"))?;
    let (interval, verdict) = above(&acc, SEPARABLE);
    let single = if acc.len() == 1 { format!("test accuracy {} (one seed)", fmt_pct(acc[0].1)) } else { String::new() };
    Ok(Claim::new(
        "Softmax alone makes the 2-D deep features separable (test accuracy above 97 %)",
        "Fig. 2 (no MNIST accuracy reported)",
        if single.is_empty() {
            format!("test accuracy {}", interval_text(interval.as_ref(), acc.len(), fmt_pct))
        } else {
            single
        },
        verdict,
    ))
}

/// …but each class spreads radially ("spokes"): the interval over seeds of the classes' median
/// elongation (test features, [`spoke_elongation`]) lies above [`SPOKE`].
pub fn spokes(runs: &Table, features: &Table) -> Result<Claim> {
    let elongation = per_seed(runs, |r| {
        let points = points_2d(features, r.run_id()?, "test")?;
        let flat: Vec<f32> = points.iter().flat_map(|p| [p.0, p.1]).collect();
        let labels: Vec<u8> = points.iter().map(|p| p.2).collect();
        Ok(spoke_elongation(&flat, &labels))
    })?;
    let (interval, verdict) = above(&elongation, SPOKE);
    let single = if elongation.len() == 1 { format!("{:.2} (one seed)", elongation[0].1) } else { String::new() };
    Ok(Claim::new(
        "…but not compact: each class spreads out radially from the origin (\"spokes\": at least 1.5× longer along its ray than across it)",
        "Fig. 2 (qualitative)",
        format!(
            "median elongation of the classes {}",
            if single.is_empty() { interval_text(interval.as_ref(), elongation.len(), |v| format!("{v:.2}")) } else { single }
        ),
        verdict,
    ))
}

/// The report section: claims over every seed, the deviations from the first finished run, and
/// the compute as the mean over the finished runs (whose CPUs the provenance line names).
pub fn section(runs: &Table, features: &Table) -> Result<Option<Section>> {
    let finished: Vec<_> = runs.records().filter(|r| r.finished().unwrap_or(false)).collect();
    let Some(run) = finished.first() else { return Ok(None) };
    let mean_of = |key: &str| -> Result<f64> {
        Ok(crate::stats::mean(&finished.iter().map(|r| r.num(key)).collect::<Result<Vec<f64>>>()?))
    };
    Ok(Some(Section {
        title: "Center loss (Wen et al., ECCV 2016): softmax-only features, Fig. 2".into(),
        claims: vec![separable(runs)?, spokes(runs, features)?],
        body: format!(
            "![Fig. 2](softmax-baseline/fig2.png)\n\n**Deviations.** LeNets++ at width {} for {} iterations of batch {} \
             (caffe-face: width 1.0, 10,000 iterations), last max-pool 2/2 instead of 3/2, the standard 60,000 training \
             images (the caption says 50K), Caffe-style momentum. Compute: {:.0} s of training per run at {:.0} \
             images/s, means over the {} runs (their CPUs are under Provenance).\n",
            run.num("width")?,
            run.num("iterations")?,
            run.num("batch_size")?,
            mean_of("train_seconds")?,
            mean_of("images_per_second")?,
            finished.len()
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Row};

    /// Runs with their accuracies, and test features: per run, one class of `spread`-long spoke
    /// (norms 1..=1+spread at a small angular wobble) and one isotropic-ish class.
    fn runs(accuracies: &[f64], spread: f32) -> (Table, Table) {
        let mut rows = Vec::new();
        let mut features: Vec<Row> = Vec::new();
        for (k, &a) in accuracies.iter().enumerate() {
            let id = format!("default-{k}");
            rows.push(vec![
                ("run_id".to_string(), Cell::from(id.as_str())),
                ("status".into(), "finished".into()),
                ("seed".into(), (k as u64 + 1).into()),
                ("test_accuracy".into(), a.into()),
            ]);
            for (i, step) in [0.0f32, 0.33, 0.66, 1.0].iter().enumerate() {
                let r = 1.0 + spread * step;
                let wobble = if i % 2 == 0 { 0.05 } else { -0.05 } * (1.0 + k as f32 * 0.1);
                features.push(vec![
                    ("run_id".to_string(), Cell::from(id.as_str())),
                    ("split".into(), "test".into()),
                    ("label".into(), 0u64.into()),
                    ("f0".into(), ((r * wobble.cos()) as f64).into()),
                    ("f1".into(), ((r * wobble.sin()) as f64).into()),
                ]);
            }
        }
        (Table::new("a hand-made runs table", rows), Table::new("hand-made features", features))
    }

    #[test]
    fn separable_needs_an_interval_above_97_percent() {
        let (t, _) = runs(&[0.975, 0.98, 0.978], 1.0);
        assert_eq!(separable(&t).unwrap().verdict, Verdict::Reproduced);
        let (t, _) = runs(&[0.96, 0.962, 0.958], 1.0);
        assert_eq!(separable(&t).unwrap().verdict, Verdict::NotReproduced);
        let (t, _) = runs(&[0.96, 0.98, 0.975], 1.0);
        assert_eq!(separable(&t).unwrap().verdict, Verdict::Inconclusive);
        let (t, _) = runs(&[0.975], 1.0);
        let c = separable(&t).unwrap();
        assert_eq!((c.verdict, c.ours.as_str()), (Verdict::Inconclusive, "test accuracy 97.50% (one seed)"));
    }

    #[test]
    fn spokes_need_classes_longer_along_their_ray_than_across_it() {
        let (t, f) = runs(&[0.98, 0.98, 0.98], 2.0);
        let c = spokes(&t, &f).unwrap();
        assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.ours);
        assert!(c.ours.contains("t interval over 3 seeds"), "{}", c.ours);
        // Short classes: about as long as they are wide.
        let (t, f) = runs(&[0.98, 0.98, 0.98], 0.05);
        assert_eq!(spokes(&t, &f).unwrap().verdict, Verdict::NotReproduced);
    }

    #[test]
    fn a_misspelt_column_is_an_error_naming_it() {
        let (t, f) = runs(&[0.98], 1.0);
        let err = t.records().next().unwrap().f64("radial_fractoin").unwrap_err().to_string();
        assert!(err.contains("radial_fractoin") && err.contains("hand-made runs table"), "{err}");
        assert!(section(&t, &f).is_err(), "the section needs width, iterations and timing");
    }
}
