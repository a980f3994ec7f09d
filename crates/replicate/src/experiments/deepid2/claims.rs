//! What `deepid2` claims, as rules from its recorded runs (one per λ) to claim rows, and the best
//! interior λ that the leaderboard takes from this sweep.

use anyhow::Result;

use crate::experiments::setup::{first_of_each, shown};
use crate::results::{Record, Table};
use crate::verdict::{fmt_pct, lambda_label, or_na, Claim, Section, Verdict};

const HELD_OUT: &str = "held_out_verification_accuracy";

/// The runs of the sweep, one per λ (the lowest seed), ascending (∞ last).
pub fn by_lambda(runs: &Table) -> Result<Vec<(f64, Record<'_>)>> {
    first_of_each(runs.records(), "lambda")
}

/// The interior λ (0 < λ < ∞) with the best held-out verification accuracy, and that accuracy.
pub fn best_interior(runs: &[(f64, Record)]) -> Result<Option<(f64, f64)>> {
    let mut best: Option<(f64, f64)> = None;
    for (l, r) in runs.iter().filter(|(l, _)| *l > 0.0 && l.is_finite()) {
        if let Some(a) = r.f64(HELD_OUT)? {
            if best.is_none_or(|b| a > b.1) {
                best = Some((*l, a));
            }
        }
    }
    Ok(best)
}

fn held_out(runs: &[(f64, Record)], lambda: f64) -> Result<Option<f64>> {
    match runs.iter().find(|(l, _)| *l == lambda) {
        Some((_, r)) => r.f64(HELD_OUT),
        None => Ok(None),
    }
}

/// The inverted U: the best interior λ beats both λ = 0 and λ = ∞ (partly: one of them).
pub fn inverted_u(runs: &[(f64, Record)]) -> Result<Claim> {
    let (zero, inf) = (held_out(runs, 0.0)?, held_out(runs, f64::INFINITY)?);
    let (ours, verdict) = match (best_interior(runs)?, zero, inf) {
        (Some((bl, ba)), Some(z), Some(i)) => {
            let std = match runs.iter().find(|(l, _)| *l == bl) {
                Some((_, r)) => r.f64("held_out_verification_accuracy_std")?,
                None => None,
            };
            let text = format!(
                "best interior λ = {} at {}; λ = 0: {}; λ = ∞: {} (the best is {:+.2} points from λ = 0, against a fold std of {})",
                lambda_label(bl),
                fmt_pct(ba),
                fmt_pct(z),
                fmt_pct(i),
                100.0 * (ba - z),
                or_na(std, fmt_pct)
            );
            let verdict = if ba > z && ba > i {
                Verdict::Reproduced
            } else if ba > z || ba > i {
                Verdict::Partly
            } else {
                Verdict::NotReproduced
            };
            (text, verdict)
        }
        _ => ("a run the comparison needs did not finish".into(), Verdict::NotReproduced),
    };
    Ok(Claim::new(
        "Verification on unseen identities peaks at an intermediate λ and is worse at both ends (an inverted U)",
        "LFW accuracy against λ (Fig. 3; values not retrieved)",
        ours,
        verdict,
    ))
}

/// The best interior λ lies in [0.01, 0.1].
pub fn best_near_005(runs: &[(f64, Record)]) -> Result<Claim> {
    let best = best_interior(runs)?;
    let near = best.is_some_and(|(l, _)| (0.01..=0.1).contains(&l));
    Ok(Claim::new(
        "The best λ is near 0.05",
        "≈ 0.05 (secondary source)",
        best.map(|b| format!("λ = {}", lambda_label(b.0))).unwrap_or("n/a".into()),
        if near { Verdict::Reproduced } else { Verdict::NotReproduced },
    ))
}

pub fn section(runs: &Table) -> Result<Option<Section>> {
    let runs = by_lambda(runs)?;
    let Some((_, first)) = runs.first().copied() else { return Ok(None) };
    let mut table = String::from(
        "| λ | status | held-out verification (10-fold) | all digits | held-out VAL@FAR=1e-3 | identification (0-6) \
         | tr S_w | tr S_b | R (0-6) | final m |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (l, r) in &runs {
        table.push_str(&format!(
            "| {} | {} | {} ± {} | {} | {} | {} | {} | {} | {} | {} |\n",
            lambda_label(*l),
            r.status()?,
            shown(*r, HELD_OUT, fmt_pct)?,
            shown(*r, "held_out_verification_accuracy_std", fmt_pct)?,
            shown(*r, "all_digits_verification_accuracy", fmt_pct)?,
            shown(*r, "held_out_val_at_far_1e-3", fmt_pct)?,
            shown(*r, "identification_accuracy", fmt_pct)?,
            shown(*r, "within_trace", |v| format!("{v:.3}"))?,
            shown(*r, "between_trace", |v| format!("{v:.3}"))?,
            shown(*r, "r_ratio", |v| format!("{v:.4}"))?,
            shown(*r, "final_margin", |v| format!("{v:.3}"))?,
        ));
    }
    let rule = match first.str("margin_rule")? {
        Some("adaptive") => format!(
            "re-set every {} steps to the threshold that best separates that window's pairs",
            first.num("margin_every")?
        ),
        _ => format!("fixed at {}", first.num("margin")?),
    };
    Ok(Some(Section {
        title: "DeepID2 (Sun et al., NIPS 2014): identification + λ·verification".into(),
        claims: vec![inverted_u(&runs)?, best_near_005(&runs)?],
        body: format!(
            "{table}\n![λ sweep](deepid2/lambda_sweep.png)\n\n![PCA](deepid2/pca.png)\n\n\
             **Deviations.** Identities are digits: the identification head trains on 0-6 and verification is tested on \
             balanced pairs of the unseen 7-9 (10-fold, threshold chosen on nine folds, as on LFW). The network is LeNets++ \
             (width {w}) with a {d}-D PReLU feature (the paper: a 4-layer ConvNet on face patches, 160-D ReLU feature, 200 \
             nets + Joint Bayesian). Batches hold {k} identities × {per} images and the verification loss covers all pairs of \
             the batch (the paper: one pair per SGD step). The margin form is ½·max(0, m − d)²; m is {rule}. The paper's exact \
             λ grid and accuracies were not retrieved, so only the shape is compared.\n",
            w = first.num("width")?,
            d = first.num("feature_dim")?,
            k = first.num("classes_per_batch")?,
            per = first.num("batch_size")? / first.num("classes_per_batch")?,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Row};

    /// A runs table of the sweep: (λ, held-out verification accuracy) per run.
    fn sweep(runs: &[(f64, f64)]) -> Table {
        let rows: Vec<Row> = runs
            .iter()
            .map(|&(lambda, accuracy)| {
                vec![
                    ("run_id".to_string(), Cell::Str(format!("lambda={lambda}"))),
                    ("status".into(), "finished".into()),
                    ("seed".into(), 1u64.into()),
                    ("lambda".into(), if lambda.is_infinite() { "inf".into() } else { Cell::Str(lambda.to_string()) }),
                    (HELD_OUT.into(), accuracy.into()),
                    ("held_out_verification_accuracy_std".into(), 0.02.into()),
                ]
            })
            .collect();
        Table::new("a hand-made deepid2 table", rows)
    }

    fn verdicts(t: &Table) -> (Verdict, Verdict) {
        let runs = by_lambda(t).unwrap();
        (inverted_u(&runs).unwrap().verdict, best_near_005(&runs).unwrap().verdict)
    }

    #[test]
    fn the_inverted_u_needs_the_best_interior_lambda_above_both_ends() {
        let u = sweep(&[(0.0, 0.80), (0.01, 0.83), (0.05, 0.85), (1.0, 0.82), (f64::INFINITY, 0.70)]);
        assert_eq!(verdicts(&u), (Verdict::Reproduced, Verdict::Reproduced));
        let ours = inverted_u(&by_lambda(&u).unwrap()).unwrap().ours;
        assert!(ours.starts_with("best interior λ = 0.05 at 85.00%") && ours.contains("+5.00 points"), "{ours}");
        let rising = sweep(&[(0.0, 0.80), (0.05, 0.85), (f64::INFINITY, 0.90)]);
        assert_eq!(verdicts(&rising).0, Verdict::Partly);
        let falling = sweep(&[(0.0, 0.90), (0.05, 0.85), (f64::INFINITY, 0.95)]);
        assert_eq!(verdicts(&falling).0, Verdict::NotReproduced);
        let no_ends = sweep(&[(0.05, 0.85)]);
        assert_eq!(verdicts(&no_ends).0, Verdict::NotReproduced);
    }

    #[test]
    fn the_best_lambda_must_lie_between_001_and_01() {
        let far = sweep(&[(0.0, 0.80), (1e-4, 0.86), (0.05, 0.85), (f64::INFINITY, 0.70)]);
        assert_eq!(verdicts(&far), (Verdict::Reproduced, Verdict::NotReproduced));
        assert_eq!(best_interior(&by_lambda(&far).unwrap()).unwrap(), Some((1e-4, 0.86)));
    }
}
