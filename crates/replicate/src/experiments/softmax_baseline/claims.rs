//! What `softmax-baseline` claims, as rules from its recorded runs to claim rows.

use anyhow::Result;

use crate::results::{Record, Table};
use crate::verdict::{fmt_pct, or_na, Claim, Section, Verdict};

/// Softmax alone separates the 2-D features: test accuracy ≥ 97%.
pub fn separable(run: Record) -> Result<Claim> {
    let acc = run.f64("test_accuracy")?;
    Ok(Claim::new(
        "Softmax alone makes the 2-D deep features separable",
        "Fig. 2 (no MNIST accuracy reported)",
        acc.map(|a| format!("test accuracy {}", fmt_pct(a))).unwrap_or("n/a".into()),
        if acc.is_some_and(|a| a >= 0.97) { Verdict::Reproduced } else { Verdict::NotReproduced },
    ))
}

/// …but each class spreads radially ("spokes"): ≥ 80% of the within-class variance lies along
/// the class-mean direction.
pub fn spokes(run: Record) -> Result<Claim> {
    let radial = run.f64("radial_fraction")?;
    Ok(Claim::new(
        "…but not compact: each class spreads out radially from the origin (\"spokes\")",
        "Fig. 2 (qualitative)",
        format!(
            "{} of the within-class variance lies along the class-mean direction; R = intra/inter = {}",
            or_na(radial, fmt_pct),
            or_na(run.f64("r_ratio")?, |v| format!("{v:.3}"))
        ),
        if radial.is_some_and(|r| r >= 0.8) { Verdict::Reproduced } else { Verdict::NotReproduced },
    ))
}

/// The report section, from the first finished run.
pub fn section(runs: &Table) -> Result<Option<Section>> {
    let mut finished = runs.records().filter(|r| r.finished().unwrap_or(false));
    let Some(run) = finished.next() else { return Ok(None) };
    Ok(Some(Section {
        title: "Center loss (Wen et al., ECCV 2016): softmax-only features, Fig. 2".into(),
        claims: vec![separable(run)?, spokes(run)?],
        body: format!(
            "![Fig. 2](softmax-baseline/fig2.png)\n\n**Deviations.** LeNets++ at width {} for {} iterations of batch {} \
             (caffe-face: width 1.0, 10,000 iterations), last max-pool 2/2 instead of 3/2, the standard 60,000 training \
             images (the caption says 50K), Caffe-style momentum. Compute: {:.0} s of training at {:.0} images/s on this \
             machine's CPU.\n",
            run.num("width")?,
            run.num("iterations")?,
            run.num("batch_size")?,
            run.num("train_seconds")?,
            run.num("images_per_second")?
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Cell;

    fn run(accuracy: f64, radial: f64) -> Table {
        let row = vec![
            ("run_id".to_string(), Cell::from("default-1")),
            ("status".into(), "finished".into()),
            ("test_accuracy".into(), accuracy.into()),
            ("radial_fraction".into(), radial.into()),
            ("r_ratio".into(), 0.4.into()),
        ];
        Table::new("a hand-made runs table", vec![row])
    }

    #[test]
    fn separable_needs_97_percent() {
        let t = run(0.975, 0.9);
        assert_eq!(separable(t.records().next().unwrap()).unwrap().verdict, Verdict::Reproduced);
        let t = run(0.96, 0.9);
        let c = separable(t.records().next().unwrap()).unwrap();
        assert_eq!((c.verdict, c.ours.as_str()), (Verdict::NotReproduced, "test accuracy 96.00%"));
    }

    #[test]
    fn spokes_need_most_variance_along_the_class_direction() {
        let t = run(0.98, 0.85);
        let c = spokes(t.records().next().unwrap()).unwrap();
        assert_eq!(c.verdict, Verdict::Reproduced);
        assert!(c.ours.starts_with("85.00% of the within-class variance") && c.ours.ends_with("= 0.400"), "{}", c.ours);
        let t = run(0.98, 0.6);
        assert_eq!(spokes(t.records().next().unwrap()).unwrap().verdict, Verdict::NotReproduced);
    }

    #[test]
    fn a_misspelt_column_is_an_error_naming_it() {
        let t = run(0.98, 0.85);
        let err = t.records().next().unwrap().f64("radial_fractoin").unwrap_err().to_string();
        assert!(err.contains("radial_fractoin") && err.contains("hand-made runs table"), "{err}");
        assert!(section(&t).is_err(), "the section needs width, iterations and timing");
    }
}
