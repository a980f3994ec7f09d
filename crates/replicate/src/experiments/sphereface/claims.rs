//! What `sphereface` claims, as rules over its recorded runs (m = 1..4, paired by seed): each a
//! per-seed least-squares slope over m with a 95 % t interval over seeds.

use anyhow::Result;

use crate::experiments::hypersphere::settings_table;
use crate::experiments::seeds::{Seeded, SLOPE};
use crate::results::Table;
use crate::verdict::{fmt_pct, Claim, Direction, Scale, Section, Verdict};

const MARGINS: [f64; 4] = [1.0, 2.0, 3.0, 4.0];

/// A trend over m of `metric` in `direction`: the per-seed slope's interval; an m whose every
/// run diverged counts against it.
/// `metric` of the finished runs by m (a column the table lacks reads as missing).
fn by_m(runs: &Table, metric: &str) -> Result<Seeded> {
    Seeded::collect(
        runs.records(),
        |r| r.f64("m"),
        |r| Ok(if r.finished()? { r.f64(metric).ok().flatten() } else { None }),
    )
}

fn trend(runs: &Table, metric: &str, direction: Direction, scale: Scale) -> Result<(String, Verdict, Seeded)> {
    let seeded = by_m(runs, metric)?;
    let slope = seeded.trend(&MARGINS, |m| m);
    let verdict = if seeded.all_diverged().is_empty() {
        Verdict::of_effect(slope.interval.as_ref(), direction, 0.0)
    } else {
        Verdict::NotReproduced
    };
    Ok((slope.text("slope per step of m", scale, SLOPE), verdict, seeded))
}

fn means(seeded: &Seeded, format: impl Fn(f64) -> String) -> String {
    seeded
        .settings
        .iter()
        .map(|s| format!("m={}: {}", s.value, seeded.mean(s.value).map_or("diverged".into(), &format)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The angular Fisher score (within- over between-class angular scatter) falls as m grows.
pub fn fisher_score_falls(runs: &Table) -> Result<Claim> {
    let (test, verdict, seeded) = trend(runs, "angular_fisher_score", Direction::Down, Scale::Plain(4, ""))?;
    Ok(Claim::new(
        "The angular Fisher score of the test features falls as m grows (m = 1 → 4): more discriminative angles",
        "Larger m, smaller angular Fisher score (Sec. 4; the table's values are for faces, not MNIST)",
        format!("{}; {test}", means(&seeded, |v| format!("{v:.4}"))),
        verdict,
    ))
}

/// Each class narrows in angle: the mean angle between a feature and its class weight falls.
pub fn classes_narrow(runs: &Table) -> Result<Claim> {
    let (test, verdict, seeded) = trend(runs, "mean_angle_to_class_weight", Direction::Down, Scale::Plain(2, "°"))?;
    Ok(Claim::new(
        "Each class narrows in angle as m grows (mean angle between x and W_y)",
        "appendix figure (qualitative)",
        format!("{}; {test}", means(&seeded, |v| format!("{v:.1}°"))),
        verdict,
    ))
}

pub fn section(runs: &Table) -> Result<Option<Section>> {
    let Some(first) = runs.records().next() else { return Ok(None) };
    let metric = |name: &str| by_m(runs, name);
    let columns = [
        ("test accuracy", metric("test_accuracy")?, &fmt_pct as &dyn Fn(f64) -> String),
        ("angular Fisher score", metric("angular_fisher_score")?, &|v: f64| format!("{v:.4}")),
        ("mean ∠(x, W_y)", metric("mean_angle_to_class_weight")?, &|v: f64| format!("{v:.1}°")),
        ("min ray gap (90 % arcs)", metric("min_ray_gap")?, &|v: f64| format!("{v:.1}°")),
        ("final λ", metric("final_lambda")?, &|v: f64| format!("{v:.2}")),
    ];
    let table = settings_table("m", |m| m.to_string(), &columns);
    Ok(Some(Section {
        title: "SphereFace (Liu et al., CVPR 2017): A-Softmax's margin m on 2-D features, appendix".into(),
        claims: vec![fisher_score_falls(runs)?, classes_narrow(runs)?],
        body: format!(
            "Mean ± sample std (n − 1) over seeds; the same seed is the same initialisation and batch order at every \
             m. The angular Fisher score is S_w / S_b with S_w = Σ_i Σ_{{x ∈ class i}} (1 − cos⟨x, m_i⟩) and S_b = \
             Σ_i n_i (1 − cos⟨m_i, m⟩), m_i a class's mean test feature and m the mean of all (the paper's \
             definition as we read it).\n\n{table}\n![features](sphereface/features.png)\n\n**Deviations.** \
             LeNets++ (width {width}) with a 2-D PReLU feature on all ten digits; {iterations} iterations at \
             learning rate {lr} (×{gamma} at {milestones}), the lsoftmax experiment's schedule, instead of the \
             authors' CASIA solver. λ = max(5, 1000·(1 + γ·iter)^−1) as in the authors' prototxt, with γ rescaled \
             from their 0.12 over 28,000 iterations so that λ reaches 5 at the same {at:.1} % of the run. The \
             authors' Caffe layer normalises its gradient's coefficients; we back-propagate the exact gradient. \
             Test logits are ‖x‖·cos θ_j, whose arg-max is the largest cosine.\n",
            width = first.num("width")?,
            iterations = first.num("iterations")?,
            lr = first.num("base_lr")?,
            gamma = first.num("lr_gamma")?,
            milestones = first.text("lr_milestones")?,
            at = 100.0 * first.num("lambda_min_at")?,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Row, STATUS_DIVERGED, STATUS_FINISHED};

    fn run(m: u64, seed: u64, status: &str, fisher: f64, angle: f64) -> Row {
        let mut row: Row = vec![
            ("run_id".into(), format!("m={m},seed={seed}").into()),
            ("status".into(), status.into()),
            ("seed".into(), seed.into()),
            ("m".into(), m.into()),
        ];
        if status == STATUS_FINISHED {
            row.push(("angular_fisher_score".into(), fisher.into()));
            row.push(("mean_angle_to_class_weight".into(), angle.into()));
        }
        row
    }

    /// Three seeds per m; `fisher[seed][m − 1]`, angles falling by `angle_step` per m.
    fn sweep(fisher: [[f64; 4]; 3], angle_step: f64) -> Table {
        let mut rows = Vec::new();
        for (s, per_m) in fisher.iter().enumerate() {
            for (i, &f) in per_m.iter().enumerate() {
                let angle = 20.0 - angle_step * i as f64 + 0.3 * s as f64;
                rows.push(run(i as u64 + 1, s as u64 + 1, STATUS_FINISHED, f, angle));
            }
        }
        Table::new("hand-made sphereface runs", rows)
    }

    #[test]
    fn falling_scores_and_narrowing_classes_are_reproduced() {
        let runs = sweep([[0.30, 0.20, 0.16, 0.12], [0.32, 0.22, 0.15, 0.13], [0.29, 0.21, 0.17, 0.11]], 2.0);
        let fisher = fisher_score_falls(&runs).unwrap();
        assert_eq!(fisher.verdict, Verdict::Reproduced);
        assert!(fisher.ours.contains("m=1: 0.3033") && fisher.ours.contains("over 3 seeds"), "{}", fisher.ours);
        assert_eq!(classes_narrow(&runs).unwrap().verdict, Verdict::Reproduced);
    }

    #[test]
    fn rising_or_disagreeing_trends_are_not_reproduced_or_inconclusive() {
        let rising = sweep([[0.10, 0.12, 0.14, 0.16], [0.11, 0.13, 0.15, 0.17], [0.10, 0.13, 0.14, 0.18]], -1.0);
        assert_eq!(fisher_score_falls(&rising).unwrap().verdict, Verdict::NotReproduced);
        assert_eq!(classes_narrow(&rising).unwrap().verdict, Verdict::NotReproduced);
        let noisy = sweep([[0.30, 0.10, 0.30, 0.10], [0.10, 0.30, 0.10, 0.30], [0.20, 0.20, 0.20, 0.19]], 0.0);
        assert_eq!(fisher_score_falls(&noisy).unwrap().verdict, Verdict::Inconclusive);
        // Two seeds are never enough for a verdict.
        let mut two = sweep([[0.30, 0.20, 0.16, 0.12], [0.32, 0.22, 0.15, 0.13], [0.29, 0.21, 0.17, 0.11]], 2.0);
        two.rows.retain(|r| !r.iter().any(|(k, v)| k == "seed" && *v == 3u64.into()));
        assert_eq!(fisher_score_falls(&two).unwrap().verdict, Verdict::Inconclusive);
    }

    #[test]
    fn an_m_whose_every_seed_diverged_counts_against_the_claims() {
        let mut runs = sweep([[0.30, 0.20, 0.16, 0.12], [0.32, 0.22, 0.15, 0.13], [0.29, 0.21, 0.17, 0.11]], 2.0);
        runs.rows.retain(|r| !r.iter().any(|(k, v)| k == "m" && *v == 4u64.into()));
        runs.rows.extend((1..=3).map(|s| run(4, s, STATUS_DIVERGED, 0.0, 0.0)));
        let claim = fisher_score_falls(&runs).unwrap();
        assert_eq!(claim.verdict, Verdict::NotReproduced);
        assert!(claim.ours.contains("m=4: diverged"), "{}", claim.ours);
    }
}
