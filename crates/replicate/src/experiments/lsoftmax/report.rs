//! `lsoftmax`'s section of REPORT.md: the claims over seeds, the per-m table and the deviations.

use anyhow::Result;

use super::claims::{
    accuracy_rises, classes_narrow, deg1, fig2_runs, listed, margins, ray_gap_widens, weight_angle_grows,
    with_ray_gaps, MarginRuns, MIN_RAY_GAP, MIN_RAY_GAP_80, MIN_RAY_GAP_95, PAPER_2D_ACCURACY, PAPER_ERROR_PERCENT,
};
use crate::experiments::setup::ALL_DIGITS;
use crate::results::Table;
use crate::verdict::{fmt_pct, Section};

fn mean_pm(g: &MarginRuns, metric: &str, fmt: &dyn Fn(f64) -> String) -> String {
    match g.get(metric) {
        Some((m, s)) if g.finished > 1 => format!("{} ± {}", fmt(m), fmt(s)),
        Some((m, _)) => fmt(m),
        None => "n/a".into(),
    }
}

pub fn section(current: &Table, features: &Table) -> Result<Option<Section>> {
    let runs = with_ray_gaps(current, features)?;
    // Width, iterations and schedule are the same for every run of the 2-D sweep.
    let Some(first) = runs.records().find(|r| r.f64("feature_dim").ok().flatten() == Some(2.0)) else {
        return Ok(None);
    };
    let groups = margins(&runs)?;
    let deg = |v: f64| format!("{v:.2}°");
    let mut table = String::from(
        "| m | seeds finished | test accuracy | paper (2-D) | final λ | final loss | mean ∠(x, W_y) | min ∠(W_c, W_c') \
         | min ray gap | R |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for g in &groups {
        table.push_str(&format!(
            "| {} | {} of {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            g.m,
            g.finished,
            g.runs,
            mean_pm(g, "test_accuracy", &fmt_pct),
            fmt_pct(PAPER_2D_ACCURACY[g.m - 1]),
            g.get("final_lambda").map(|v| format!("{:.2e}", v.0)).unwrap_or_default(),
            mean_pm(g, "final_loss", &|v| format!("{v:.4}")),
            mean_pm(g, "mean_angle_to_class_weight", &deg),
            mean_pm(g, "min_class_weight_angle", &deg),
            mean_pm(g, MIN_RAY_GAP, &deg),
            mean_pm(g, "r_ratio", &|v| format!("{v:.4}")),
        ));
    }
    let diverged: Vec<String> =
        groups.iter().flat_map(|g| g.notes.iter().map(move |n| format!("m = {}: {n}", g.m))).collect();
    let seeds = groups.iter().map(|g| g.runs).max().unwrap_or(1);
    let seed = match fig2_runs(&runs)?.first() {
        Some((_, r)) => r.f64("seed")?.unwrap_or(1.0),
        None => 1.0,
    };
    Ok(Some(Section {
        title: "L-Softmax (Liu et al., ICML 2016): the margin m, Fig. 2".into(),
        claims: vec![
            accuracy_rises(&groups),
            weight_angle_grows(&groups),
            ray_gap_widens(&groups),
            classes_narrow(&groups),
        ],
        body: format!(
            "{means_line}\n\n{table}\n{diverged}In a plane, {classes} class weights are at most 360°/{classes} = \
             {bound:.0}° apart at their closest pair (evenly spread), so the smallest class-weight angle cannot keep \
             growing with m once the margin has spread the weights almost evenly. The gaps that Fig. 2 shows are the \
             empty angles between the rays of neighbouring classes, and they can widen as each ray narrows: \"min ray gap\" \
             takes, for each class, the arc around its mean direction that holds the central 90% of its test features \
             (those recorded for the figure in features.parquet), and gives the smallest angle between neighbouring arcs. \
             With 80% arcs the means are {gaps_80}; with 95% arcs, which reach the test images a run misclassifies into \
             other classes' rays, {gaps_95}.\n\nThe figures show seed {seed}.\n\n![Fig. 2](lsoftmax/fig2.png)\n\n\
             ![λ schedule](lsoftmax/lambda_schedule.png)\n\n**Deviations.** The paper's 2-D network is not specified \
             beyond a 2-D feature without bias; we use LeNets++ (width {}) with PReLU and no batch normalisation, trained \
             for {} iterations at learning rate {} (×{} at iterations {}), λ annealed with the authors' base 1000, power \
             35 and λ_min 0 but γ rescaled so that λ reaches 1e-3 at {:.0}% of training. The MNIST error table ({} %) used \
             a wider network; the `paper` profile adds a 256-D feature run for it. The accuracy rule was changed after \
             these runs were recorded: it read \"does not fall from one m to the next, every m ≥ 97.5%\" (reproduced on \
             the same runs) and now tests a rise; an earlier 3-seed sweep with another schedule, not kept, gave \
             97.77 / 98.49 / 98.33 / 98.31 % for m = 1..4 (a fall after m = 2).\n",
            first.num("width")?,
            first.num("iterations")?,
            first.num("base_lr")?,
            first.num("lr_gamma")?,
            first.text("lr_milestones")?,
            100.0 * first.num("lambda_reaches_1e3_at")?,
            PAPER_ERROR_PERCENT.map(|e| format!("{e:.2}")).join(" / "),
            means_line = if seeds > 1 {
                format!(
                    "Mean ± sample std (n − 1) over the finished seeds (up to {seeds} per m). The accuracy claim is a \
                     trend test over seeds (each seed's least-squares slope of accuracy on m, a 95 % Student-t interval \
                     of those slopes); the angle claims still compare the means step by step (issue 19 moves them to \
                     intervals)."
                )
            } else {
                "One seed per m.".to_string()
            },
            diverged = if diverged.is_empty() {
                String::new()
            } else {
                format!("Runs that did not finish: {}.\n\n", diverged.join("; "))
            },
            classes = ALL_DIGITS.len(),
            bound = 360.0 / ALL_DIGITS.len() as f64,
            gaps_80 = listed(&groups, MIN_RAY_GAP_80, &deg1),
            gaps_95 = listed(&groups, MIN_RAY_GAP_95, &deg1),
        ),
    }))
}
