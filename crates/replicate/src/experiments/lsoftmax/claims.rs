//! What `lsoftmax` claims, as rules from its recorded 2-D runs (grouped by m, averaged over
//! seeds) to claim rows: accuracy, the class-weight angle, the gaps between rays, the narrowing.

use anyhow::Result;

use crate::experiments::seeds::{Comparison, Seeded, Setting, SLOPE};
use crate::experiments::setup::{first_of_each, points_2d};
use crate::results::{Cell, Record, Store, Table};
use crate::stats;
use crate::verdict::{fmt_pct, Claim, Direction, Scale, Verdict};

/// The paper's 2-D test accuracies for m = 1, 2, 3, 4 (Fig. 2).
pub const PAPER_2D_ACCURACY: [f64; 4] = [0.9845, 0.9896, 0.9922, 0.9934];
/// The paper's MNIST error table (%, a wider network), m = 1, 2, 3, 4.
pub const PAPER_ERROR_PERCENT: [f64; 4] = [0.40, 0.32, 0.31, 0.31];

/// Not runs.parquet columns: [`with_ray_gaps`] derives them from the test features recorded for
/// Fig. 2. The claim reads the 90% arcs; the other two show how much it depends on that choice.
pub(super) const MIN_RAY_GAP: &str = "min_ray_gap";
pub(super) const MIN_RAY_GAP_80: &str = "min_ray_gap_80";
pub(super) const MIN_RAY_GAP_95: &str = "min_ray_gap_95";
const RAY_COVERAGES: [(&str, f64); 3] = [(MIN_RAY_GAP, 0.9), (MIN_RAY_GAP_80, 0.8), (MIN_RAY_GAP_95, 0.95)];

const MARGIN_METRICS: [&str; 9] = [
    "test_accuracy",
    "final_lambda",
    "final_loss",
    "mean_angle_to_class_weight",
    "min_class_weight_angle",
    MIN_RAY_GAP,
    MIN_RAY_GAP_80,
    MIN_RAY_GAP_95,
    "r_ratio",
];

/// One margin's runs of the 2-D sweep: how many, and each metric per finished seed.
#[derive(Debug, Clone)]
pub struct MarginRuns {
    pub m: usize,
    pub runs: usize,
    pub finished: usize,
    /// Notes of the runs that did not finish (diverged), for the report.
    pub notes: Vec<String>,
    metrics: Vec<(&'static str, Vec<(u64, f64)>)>,
}

impl MarginRuns {
    /// (mean, sample std) of a metric over the finished seeds, `None` when no seed finished (the
    /// std is NaN for one seed).
    pub fn get(&self, metric: &str) -> Option<(f64, f64)> {
        let values: Vec<f64> = self.seeded(metric).iter().map(|v| v.1).collect();
        (!values.is_empty()).then(|| (stats::mean(&values), stats::sample_std(&values)))
    }

    /// (seed, value) of a metric for every finished seed that has it.
    pub fn seeded(&self, metric: &str) -> &[(u64, f64)] {
        self.metrics.iter().find(|(n, _)| *n == metric).map(|(_, v)| v.as_slice()).unwrap_or(&[])
    }
}

/// A run of the 2-D sweep (Fig. 2), not the `paper` profile's wide-feature run.
fn is_two_d(run: Record) -> Result<bool> {
    Ok(run.f64("feature_dim")? == Some(2.0))
}

/// Each 2-D run with the smallest empty angle between neighbouring classes' rays at each of
/// [`RAY_COVERAGES`], measured on the test features it recorded for Fig. 2 (the gaps the figure shows).
pub fn with_ray_gaps(runs: &Table, features: &Table) -> Result<Table> {
    let mut out = runs.clone();
    for (row, r) in out.rows.iter_mut().zip(runs.records()) {
        if !is_two_d(r)? {
            continue;
        }
        let points = points_2d(features, r.run_id()?, "test")?;
        let flat: Vec<f32> = points.iter().flat_map(|p| [p.0, p.1]).collect();
        let labels: Vec<u8> = points.iter().map(|p| p.2).collect();
        for (column, coverage) in RAY_COVERAGES {
            if let Some(gap) = crate::metrics::min_ray_gap(&flat, 2, &labels, coverage) {
                row.push((column.into(), gap.into()));
            }
        }
    }
    Ok(out)
}

/// The run Fig. 2 draws for each m: the lowest finished seed of the 2-D sweep (the `paper`
/// profile's wide runs have the same m values).
pub fn fig2_runs(runs: &Table) -> Result<Vec<(f64, Record<'_>)>> {
    let two_d = runs.records().filter(|r| is_two_d(*r).unwrap_or(false));
    first_of_each(two_d, "m")
}

/// The 2-D runs grouped by m (ascending), averaged over seeds; a metric a run lacks (a ray gap
/// of a run without features) is left out of its mean.
pub fn margins(runs: &Table) -> Result<Vec<MarginRuns>> {
    let mut out = Vec::new();
    for m in 1..=4usize {
        let mut of_m = Vec::new();
        for r in runs.records() {
            if is_two_d(r)? && r.f64("m")? == Some(m as f64) {
                of_m.push(r);
            }
        }
        if of_m.is_empty() {
            continue;
        }
        let mut finished = Vec::new();
        let mut notes = Vec::new();
        for r in &of_m {
            if r.finished()? {
                finished.push(*r);
            } else {
                notes.push(r.str("note")?.unwrap_or_default().to_string());
            }
        }
        let mut metrics = Vec::new();
        for name in MARGIN_METRICS {
            let mut values = Vec::new();
            for r in &finished {
                if let Some(v) = r.f64(name).ok().flatten() {
                    values.push((r.seed()?, v));
                }
            }
            metrics.push((name, values));
        }
        out.push(MarginRuns { m, runs: of_m.len(), finished: finished.len(), notes, metrics });
    }
    Ok(out)
}

/// The 2-D sweep's runs grouped by m, with the ray gaps from the recorded features.
pub fn margin_runs(store: &Store) -> Result<Vec<MarginRuns>> {
    margins(&with_ray_gaps(&store.current_runs()?, &store.load("features")?)?)
}

pub(super) fn listed(groups: &[MarginRuns], metric: &str, unit: &dyn Fn(f64) -> String) -> String {
    groups
        .iter()
        .map(|g| format!("m={}: {}", g.m, g.get(metric).map(|v| unit(v.0)).unwrap_or("diverged".into())))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn deg1(v: f64) -> String {
    format!("{v:.1}°")
}

/// The per-seed trend of a metric over m = 1..4: each seed's least-squares slope of the metric
/// on m (a seed lacking a margin is left out), and the t interval of those slopes over seeds.
/// Seeds are paired by construction: the same seed is the same initialisation and batch order
/// at every m.
pub fn trend_over_m(groups: &[MarginRuns], metric: &str) -> Comparison {
    let seeded = Seeded {
        settings: groups
            .iter()
            .map(|g| Setting { value: g.m as f64, runs: g.runs, seeds: g.seeded(metric).to_vec() })
            .collect(),
    };
    seeded.trend(&[1.0, 2.0, 3.0, 4.0], |m| m)
}

/// A trend claim over m: the per-seed slope's interval in `direction`; a margin whose every
/// seed diverged counts against it.
fn trend_claim(groups: &[MarginRuns], metric: &str, direction: Direction, scale: Scale) -> (String, Verdict) {
    let slope = trend_over_m(groups, metric);
    let all_diverged = groups.iter().any(|g| g.runs > 0 && g.finished == 0);
    let verdict =
        if all_diverged { Verdict::NotReproduced } else { Verdict::of_effect(slope.interval.as_ref(), direction, 0.0) };
    (slope.text("slope per step of m", scale, SLOPE), verdict)
}

/// Test accuracy rises with m: the per-seed slope of accuracy on m ([`trend_over_m`]) has an
/// interval above zero. A seed with a margin that did not finish is left out of the test (and so
/// counts against reaching three seeds).
pub fn accuracy_rises(groups: &[MarginRuns]) -> Claim {
    let (test, verdict) = trend_claim(groups, "test_accuracy", Direction::Up, Scale::Points);
    Claim::new(
        "Test accuracy of 2-D features rises with m (m = 1 → 4)",
        "98.45 / 98.96 / 99.22 / 99.34 %",
        format!("{}; {test}", listed(groups, "test_accuracy", &fmt_pct)),
        verdict,
    )
}

/// The smallest angle between class weights grows with m (per-seed slope).
pub fn weight_angle_grows(groups: &[MarginRuns]) -> Claim {
    let (test, verdict) = trend_claim(groups, "min_class_weight_angle", Direction::Up, Scale::Plain(2, "°"));
    Claim::new(
        "The angular gaps between classes widen with m (smallest angle between class weights)",
        "Fig. 2 (qualitative)",
        format!("{}; {test}", listed(groups, "min_class_weight_angle", &deg1)),
        verdict,
    )
}

/// The smallest empty gap between neighbouring rays (90% arcs) grows with m (per-seed slope).
pub fn ray_gap_widens(groups: &[MarginRuns]) -> Claim {
    let (test, verdict) = trend_claim(groups, MIN_RAY_GAP, Direction::Up, Scale::Plain(2, "°"));
    Claim::new(
        "The empty gaps between neighbouring class rays widen with m (smallest gap between the central 90% arcs of test features)",
        "Fig. 2 (qualitative)",
        format!("{}; {test}", listed(groups, MIN_RAY_GAP, &deg1)),
        verdict,
    )
}

/// The mean angle between a feature and its class weight falls with m (per-seed slope).
pub fn classes_narrow(groups: &[MarginRuns]) -> Claim {
    let (test, verdict) = trend_claim(groups, "mean_angle_to_class_weight", Direction::Down, Scale::Plain(2, "°"));
    Claim::new(
        "Each class narrows in angle as m grows (mean angle between x and W_y)",
        "Fig. 2 (qualitative)",
        format!("{}; {test}", listed(groups, "mean_angle_to_class_weight", &deg1)),
        verdict,
    )
}

/// Our test accuracy for each m (mean ± std over seeds) beside the paper's 2-D accuracy (Fig. 2)
/// and its MNIST error table (a wider network).
pub fn paper_comparison(store: &Store) -> Result<polars::prelude::DataFrame> {
    let pct = |v: Option<(f64, f64)>, i: usize| {
        v.map(|v| Cell::F64(100.0 * if i == 0 { v.0 } else { v.1 })).unwrap_or(Cell::Null)
    };
    // Accuracy only: the ray gaps (and the features they need) stay out of it.
    let rows = margins(&store.current_runs()?)?
        .iter()
        .map(|g| {
            vec![
                ("m".to_string(), Cell::I64(g.m as i64)),
                ("seeds finished".to_string(), Cell::Str(format!("{} of {}", g.finished, g.runs))),
                ("ours: 2-D test accuracy (%)".to_string(), pct(g.get("test_accuracy"), 0)),
                ("ours: std over seeds (%)".to_string(), pct(g.get("test_accuracy"), 1)),
                ("paper: 2-D test accuracy (%)".to_string(), Cell::F64(100.0 * PAPER_2D_ACCURACY[g.m - 1])),
                ("paper: MNIST error, wide net (%)".to_string(), Cell::F64(PAPER_ERROR_PERCENT[g.m - 1])),
            ]
        })
        .collect();
    Table::new("lsoftmax's comparison with the paper", rows).to_frame()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Row, STATUS_DIVERGED, STATUS_FINISHED};

    /// One 2-D run's runs.parquet row.
    fn run(m: usize, seed: u64, status: &str, accuracy: f64, weight_angle: f64, spread: f64) -> Row {
        let mut row: Row = vec![
            ("run_id".into(), format!("m={m},seed={seed}").into()),
            ("status".into(), status.into()),
            ("note".into(), "NaN loss".into()),
            ("seed".into(), seed.into()),
            ("m".into(), (m as u64).into()),
            ("feature_dim".into(), 2u64.into()),
        ];
        if status == STATUS_FINISHED {
            row.extend([
                ("test_accuracy".into(), accuracy.into()),
                ("min_class_weight_angle".into(), weight_angle.into()),
                ("mean_angle_to_class_weight".into(), spread.into()),
            ]);
        }
        row
    }

    /// Test features of ten classes, one ray every 36°, each three points at −half, 0 and +half
    /// degrees from its centre: the smallest ray gap is 36 − 2·0.9·half.
    fn ray_features(run_id: &str, half: f64) -> Vec<Row> {
        (0..10u8)
            .flat_map(|class| {
                [-half, 0.0, half].map(move |offset| (class, (36.0 * class as f64 + offset).to_radians()))
            })
            .map(|(class, a)| {
                vec![
                    ("run_id".into(), run_id.into()),
                    ("split".into(), "test".into()),
                    ("label".into(), (class as u64).into()),
                    ("f0".into(), (10.0 * a.cos()).into()),
                    ("f1".into(), (10.0 * a.sin()).into()),
                ]
            })
            .collect()
    }

    /// Three seeds per m: (m, accuracies, weight angles) of seeds 1-3; ray half-widths
    /// 10 − 2m + 0.2·seed, class spread 20 − m + 0.1·seed.
    fn sweep(per_m: &[(usize, [f64; 3], [f64; 3])]) -> (Table, Table) {
        let mut rows = Vec::new();
        let mut features = Vec::new();
        for &(m, accuracies, angles) in per_m {
            for seed in 1..=3u64 {
                let k = seed as usize - 1;
                let jitter = 0.1 * seed as f64;
                rows.push(run(m, seed, STATUS_FINISHED, accuracies[k], angles[k], 20.0 - m as f64 + jitter));
                features.extend(ray_features(&format!("m={m},seed={seed}"), 10.0 - 2.0 * m as f64 + 2.0 * jitter));
            }
        }
        (Table::new("hand-made lsoftmax runs", rows), Table::new("hand-made lsoftmax features", features))
    }

    fn verdicts(groups: &[MarginRuns]) -> [Verdict; 4] {
        [
            accuracy_rises(groups).verdict,
            weight_angle_grows(groups).verdict,
            ray_gap_widens(groups).verdict,
            classes_narrow(groups).verdict,
        ]
    }

    /// Every claim is a per-seed slope over m: seed 1 alone would put m = 3 above m = 4, yet
    /// every seed's slope rises.
    #[test]
    fn claims_test_per_seed_slopes() {
        let (runs, features) = sweep(&[
            (1, [0.975, 0.977, 0.976], [20.0, 22.0, 21.0]),
            (2, [0.984, 0.986, 0.985], [30.0, 31.0, 30.0]),
            (3, [0.990, 0.984, 0.988], [33.0, 31.0, 32.0]),
            (4, [0.989, 0.989, 0.990], [32.5, 33.0, 33.5]),
        ]);
        let groups = margins(&with_ray_gaps(&runs, &features).unwrap()).unwrap();
        assert_eq!(verdicts(&groups), [Verdict::Reproduced; 4]);
        // Sample std (n − 1): 30, 31, 30 give 0.577.
        let (mean, std) = groups[1].get("min_class_weight_angle").unwrap();
        assert!((mean - 91.0 / 3.0).abs() < 1e-12 && (std - (1.0f64 / 3.0).sqrt()).abs() < 1e-12, "{std}");
        // The ray gaps come from the recorded test features: 36 − 1.8·(10 − 2m + 0.2·seed), mean over seeds.
        let gaps = ray_gap_widens(&groups).ours;
        assert!(gaps.contains("m=1: 20.9°") && gaps.contains("m=4: 31.7°"), "{gaps}");
        assert!(accuracy_rises(&groups).ours.contains("m=3: 98.73%"));
    }

    #[test]
    fn each_rule_says_not_reproduced_when_its_trend_goes_the_other_way() {
        // The weight angle falls with m in every seed (not reproduced); accuracy rises then falls,
        // a slope that the seeds do not agree on.
        let (runs, features) = sweep(&[
            (1, [0.980, 0.985, 0.983], [34.0, 34.5, 35.0]),
            (2, [0.985, 0.980, 0.990], [33.0, 33.5, 34.0]),
            (3, [0.990, 0.984, 0.979], [32.0, 32.5, 33.0]),
            (4, [0.981, 0.988, 0.982], [29.0, 29.5, 30.0]),
        ]);
        let groups = margins(&with_ray_gaps(&runs, &features).unwrap()).unwrap();
        assert_eq!(verdicts(&groups)[..2], [Verdict::Inconclusive, Verdict::NotReproduced]);
        // Without recorded features there are no ray gaps to judge.
        let groups = margins(&runs).unwrap();
        assert_eq!(ray_gap_widens(&groups).verdict, Verdict::Inconclusive);
    }

    /// A margin whose every seed diverged is "not reproduced" and says so, never "incomplete"
    /// (that is the plan's business, in the runner's report writer).
    #[test]
    fn margins_whose_seeds_all_diverged_count_against_the_claims() {
        let (mut runs, features) = sweep(&[
            (1, [0.975, 0.977, 0.976], [20.0, 22.0, 21.0]),
            (2, [0.984, 0.986, 0.985], [30.0, 31.0, 30.0]),
            (3, [0.990, 0.984, 0.988], [33.0, 31.0, 32.0]),
        ]);
        runs.rows.extend([run(4, 1, STATUS_DIVERGED, 0.0, 0.0, 0.0), run(4, 2, STATUS_DIVERGED, 0.0, 0.0, 0.0)]);
        let groups = margins(&with_ray_gaps(&runs, &features).unwrap()).unwrap();
        assert_eq!(verdicts(&groups), [Verdict::NotReproduced; 4]);
        assert!(accuracy_rises(&groups).ours.contains("m=4: diverged"));
        assert_eq!(groups[3].notes, ["NaN loss", "NaN loss"]);
    }

    /// Three seeds per m, each seed's accuracy at m = 1..4.
    fn accuracy_sweep(per_seed: [[f64; 4]; 3]) -> Vec<MarginRuns> {
        let mut rows = Vec::new();
        for (seed, accuracies) in per_seed.iter().enumerate() {
            for (m, &a) in accuracies.iter().enumerate() {
                rows.push(run(m + 1, seed as u64 + 1, STATUS_FINISHED, a, 30.0, 10.0));
            }
        }
        margins(&Table::new("hand-made lsoftmax runs", rows)).unwrap()
    }

    /// "Rises" is a trend test over seeds: the interval of the per-seed slopes, one table per verdict.
    #[test]
    fn accuracy_rises_is_a_per_seed_slope_interval() {
        let rising =
            accuracy_sweep([[0.975, 0.984, 0.988, 0.990], [0.980, 0.986, 0.990, 0.991], [0.977, 0.985, 0.987, 0.989]]);
        let claim = accuracy_rises(&rising);
        assert_eq!(claim.verdict, Verdict::Reproduced);
        assert!(
            claim.ours.contains("slope per step of m: +0.4") && claim.ours.contains("over 3 seeds"),
            "{}",
            claim.ours
        );
        let falling =
            accuracy_sweep([[0.990, 0.988, 0.984, 0.975], [0.991, 0.990, 0.986, 0.980], [0.989, 0.987, 0.985, 0.977]]);
        assert_eq!(accuracy_rises(&falling).verdict, Verdict::NotReproduced);
        // Means in order (98.3 → 98.6) but the seeds disagree on the direction: the data cannot tell.
        let noisy =
            accuracy_sweep([[0.980, 0.990, 0.975, 0.992], [0.990, 0.980, 0.985, 0.978], [0.979, 0.982, 0.990, 0.988]]);
        assert_eq!(accuracy_rises(&noisy).verdict, Verdict::Inconclusive);
    }

    /// The paper profile's wide runs share m and seed with the 2-D ones; Fig. 2 draws only 2-D runs.
    #[test]
    fn fig2_draws_the_two_d_runs_only() {
        let (mut runs, _) =
            sweep(&[(1, [0.975, 0.977, 0.976], [20.0, 22.0, 21.0]), (2, [0.984, 0.986, 0.985], [30.0, 31.0, 30.0])]);
        let mut wide = run(2, 1, STATUS_FINISHED, 0.99, 30.0, 1.0);
        wide.retain(|(n, _)| n != "feature_dim");
        wide.push(("feature_dim".into(), 256u64.into()));
        runs.rows.insert(0, wide);
        let drawn: Vec<(f64, f64, f64)> = fig2_runs(&runs)
            .unwrap()
            .iter()
            .map(|(m, r)| (*m, r.num("feature_dim").unwrap(), r.num("seed").unwrap()))
            .collect();
        assert_eq!(drawn, [(1.0, 2.0, 1.0), (2.0, 2.0, 1.0)]);
    }
}
