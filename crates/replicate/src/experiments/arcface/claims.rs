//! What `arcface` claims, as rules over its recorded runs (NormFace against ArcFace, paired by
//! seed): the additive angular margin narrows each class and widens the gaps between classes.

use anyhow::Result;

use crate::experiments::hypersphere::{self, network_note, settings_table};
use crate::experiments::published;
use crate::experiments::seeds::{Seeded, PAIRED};
use crate::results::{Record, Table};
use crate::verdict::{fmt_pct, Claim, Direction, Scale, Section, Verdict};

const NORMFACE: f64 = 0.0;
const ARCFACE: f64 = 1.0;

fn setting(r: &Record) -> Result<Option<f64>> {
    Ok(match r.str("loss")? {
        Some("normface") => Some(NORMFACE),
        Some("arcface") => Some(ARCFACE),
        _ => None,
    })
}

fn name(setting: f64) -> String {
    if setting == NORMFACE { "NormFace" } else { "ArcFace, m = 0.5" }.into()
}

fn seeded(runs: &Table, metric: &str) -> Result<Seeded> {
    hypersphere::seeded_metric(runs, setting, metric)
}

/// The run each loss's figure panel shows: its lowest finished seed.
pub fn drawn_runs(runs: &Table) -> Result<Vec<(String, Record<'_>)>> {
    hypersphere::drawn_runs(runs, setting, name)
}

fn comparison(runs: &Table, metric: &str, direction: Direction, claim: &str, paper: &str) -> Result<Claim> {
    let values = seeded(runs, metric)?;
    let change = values.paired(NORMFACE, ARCFACE);
    let means = [NORMFACE, ARCFACE]
        .map(|s| format!("{}: {}", name(s), values.mean(s).map_or("—".into(), |v| format!("{v:.1}°"))))
        .join(", ");
    Ok(Claim::new(
        claim,
        paper,
        format!("{means}; {}", change.text("NormFace → ArcFace", Scale::Plain(2, "°"), PAIRED)),
        Verdict::of_effect(change.interval.as_ref(), direction, 0.0),
    ))
}

/// ArcFace's classes are narrower in angle than NormFace's.
pub fn margin_narrows_classes(runs: &Table) -> Result<Claim> {
    comparison(
        runs,
        "mean_angle_to_class_weight",
        Direction::Down,
        "The additive angular margin makes each class more compact in angle than NormFace (mean angle between x and W_y)",
        "Fig. 3: \"ArcFace … obvious margin between nearest classes\", Norm-Softmax \"ambiguity\" (qualitative)",
    )
}

/// ArcFace's gaps between neighbouring classes are wider than NormFace's.
pub fn margin_opens_gaps(runs: &Table) -> Result<Claim> {
    comparison(
        runs,
        "min_ray_gap",
        Direction::Up,
        "…and opens wider gaps between neighbouring classes (smallest gap between the central 90 % arcs of test features)",
        "Fig. 3 (qualitative)",
    )
}

pub fn section(runs: &Table) -> Result<Option<Section>> {
    let Some(first) = runs.records().next() else { return Ok(None) };
    let degrees = |v: f64| format!("{v:.1}°");
    let columns = [
        ("test accuracy", seeded(runs, "test_accuracy")?, &fmt_pct as &dyn Fn(f64) -> String),
        ("mean ∠(x, W_y)", seeded(runs, "mean_angle_to_class_weight")?, &degrees),
        ("min ray gap (90 % arcs)", seeded(runs, "min_ray_gap")?, &degrees),
        ("final mean target angle (training batches)", seeded(runs, "final_target_angle")?, &degrees),
    ];
    let table = settings_table("loss", name, &columns);
    Ok(Some(Section {
        title: "ArcFace (Deng et al., CVPR 2019): the additive angular margin on 2-D features of eight classes, Fig. 3"
            .into(),
        claims: vec![margin_narrows_classes(runs)?, margin_opens_gaps(runs)?],
        body: format!(
            "Mean ± sample std (n − 1) over seeds, paired by seed.\n\n{table}\n![features](arcface/features.png)\n\n\
             ![target logits](arcface/target_logits.png)\n\nThe target-logit curves are drawn from the formulas, \
             not from a run: s = 1 and ‖x‖ = 1, SphereFace with λ = 0, ArcFace as trained here (past θ = π − m it \
             takes insightface's cos θ − m·sin m, a jump the paper's formula does not have), and the combined \
             margins CM1 and CM2 with the (m1, m2, m3) of the paper's Table 2 as we read it.\n\n\
             Published context (never measured here; ArcFace's own re-implementations): {table2}. The papers' own \
             settings: {sphereface_own}; {cosface_own}.\n\n**Deviations.** Digits 0-7 of MNIST \
             for the paper's eight face identities; LeNets++ (width {width}) with a {feature}, {iterations} \
             iterations at learning rate {lr} (×{gamma} at {milestones}); s = {scale} instead of 64 (a 512-D \
             setting).\n",
            width = first.num("width")?,
            iterations = first.num("iterations")?,
            lr = first.num("base_lr")?,
            gamma = first.num("lr_gamma")?,
            milestones = first.text("lr_milestones")?,
            scale = first.num("scale")?,
            feature = network_note(&first)?,
            table2 = published::table2_all(),
            sphereface_own = published::SPHEREFACE_OWN,
            cosface_own = published::COSFACE_OWN,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Row, STATUS_FINISHED};

    fn run(loss: &str, seed: u64, angle: f64, gap: f64) -> Row {
        vec![
            ("run_id".into(), format!("loss={loss},seed={seed}").into()),
            ("status".into(), STATUS_FINISHED.into()),
            ("seed".into(), seed.into()),
            ("loss".into(), loss.into()),
            ("mean_angle_to_class_weight".into(), angle.into()),
            ("min_ray_gap".into(), gap.into()),
        ]
    }

    fn table(angle_change: f64, gap_change: f64) -> Table {
        let rows = (1..=3u64)
            .flat_map(|seed| {
                let jitter = 0.3 * seed as f64;
                [
                    run("normface", seed, 12.0 + jitter, 5.0 - jitter),
                    run("arcface", seed, 12.0 + angle_change + 0.5 * jitter, 5.0 + gap_change),
                ]
            })
            .collect();
        Table::new("hand-made arcface runs", rows)
    }

    #[test]
    fn claims_compare_the_losses_paired_by_seed() {
        let runs = table(-6.0, 10.0);
        let narrows = margin_narrows_classes(&runs).unwrap();
        assert_eq!(narrows.verdict, Verdict::Reproduced);
        assert!(narrows.ours.contains("NormFace: 12.6°") && narrows.ours.contains("over 3 seeds"), "{}", narrows.ours);
        assert_eq!(margin_opens_gaps(&runs).unwrap().verdict, Verdict::Reproduced);
        let reversed = table(6.0, -10.0);
        assert_eq!(margin_narrows_classes(&reversed).unwrap().verdict, Verdict::NotReproduced);
        assert_eq!(margin_opens_gaps(&reversed).unwrap().verdict, Verdict::NotReproduced);
        let names: Vec<String> = drawn_runs(&runs).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["NormFace", "ArcFace, m = 0.5"]);
    }
}
