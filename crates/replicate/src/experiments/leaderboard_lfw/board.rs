//! The leaderboard-lfw section's tables: the board (each method's and baseline's View 2 folds,
//! mean ± sample std (n − 1) and standard error, as LFW's results page prints them), each
//! method's setting and batches in words, and the View 1 sweeps that chose the settings.

use anyhow::Result;

use super::claims::{method_key, method_of, view1_of, view2_by_method, Baselines};
use crate::experiments::faces::{fold_number, on_view1, view2_cells};
use crate::experiments::leaderboard::Method;
use crate::experiments::lfw_baselines;
use crate::experiments::seeds::Seeded;
use crate::results::Table;
use crate::verdict::{fmt_pct, or_na};

fn view2_metric(runs: &Table, metric: &str) -> Result<Seeded> {
    let view2 = runs.records().filter(|r| !on_view1(r));
    Seeded::collect_by(view2, |r| Ok(method_of(r).map(method_key)), fold_number, |r| r.f64(metric))
}

/// A method's setting as its View 2 runs hold it, in words.
fn setting(runs: &Table, m: Method) -> String {
    let Some(r) = runs.records().find(|r| !on_view1(r) && method_of(r) == Some(m)) else { return "—".into() };
    let num = |key: &str| r.f64(key).ok().flatten();
    match m {
        Method::Softmax => "—".into(),
        Method::Contrastive => num("lambda").map_or("—".into(), |l| format!("λ = {l} (deepid2-lfw View 1)")),
        Method::Triplet => {
            format!("{}, α = {}", r.text("mining").unwrap_or("?"), num("margin").unwrap_or(f64::NAN))
        }
        Method::Center => num("center_lambda").map_or("—".into(), |l| format!("λ = {l} (View 1)")),
        Method::Lsoftmax => num("lsoftmax_m").map_or("—".into(), |v| format!("m = {v} (View 1)")),
        Method::NormFace => format!("s = {}", num("scale").unwrap_or(f64::NAN)),
        Method::SphereFace => num("sphere_m").map_or("—".into(), |v| format!("m = {v} (View 1), λ_min = 5")),
        Method::CosFace => format!(
            "s = {}, m = {} (View 1)",
            num("scale").unwrap_or(f64::NAN),
            num("additive_margin").unwrap_or(f64::NAN)
        ),
        Method::ArcFace => format!(
            "s = {}, m = {} rad (View 1)",
            num("scale").unwrap_or(f64::NAN),
            num("additive_margin").unwrap_or(f64::NAN)
        ),
    }
}

/// Each method's batches as its runs hold them, in words (the triplet loss trains on P × K
/// batches of people with K or more images, as facenet-lfw does).
pub fn batches(runs: &Table) -> String {
    let mut words = Vec::new();
    for m in Method::ALL {
        let Some(r) = runs.records().find(|r| method_of(r) == Some(m)) else { continue };
        let num = |key: &str| r.num(key).unwrap_or(f64::NAN);
        let (people, batch) = (num("classes_per_batch"), num("batch_size"));
        words.push(format!(
            "{} {people} people × {} images (people with {} or more)",
            m.name(),
            batch / people,
            num("min_images")
        ));
    }
    if words.is_empty() {
        return String::new();
    }
    format!("Batches: {}.", words.join("; "))
}

/// The board: each method's View 2 folds, mean ± std, standard error and VAL@FAR=1e-2, then the
/// baselines of the same folds.
pub fn board(runs: &Table, baselines: &Baselines) -> Result<String> {
    let acc = view2_by_method(runs)?;
    let val = view2_metric(runs, "val_at_far_1e-2")?;
    let mut table = String::from(
        "| method | setting | View 2 folds | mean ± std | standard error | VAL@FAR=1e-2 |\n|---|---|---|---|---|---|\n",
    );
    for m in Method::ALL {
        let folds: Vec<f64> = acc.seeds(method_key(m)).iter().map(|s| s.1).collect();
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            m.label(),
            setting(runs, m),
            view2_cells(&folds),
            or_na(val.mean(method_key(m)), fmt_pct)
        ));
    }
    for b in lfw_baselines::Method::ALL {
        let folds: Vec<f64> = baselines.get(b.name()).map(|v| v.iter().map(|f| f.1).collect()).unwrap_or_default();
        table.push_str(&format!("| {} (lfw-baselines) | nothing trained | {} | — |\n", b.name(), view2_cells(&folds)));
    }
    Ok(table)
}

/// The View 1 sweeps that chose the center-loss λ, L-Softmax's m and the successors' margins.
pub fn view1_table(runs: &Table) -> Result<String> {
    let mut table = String::from(
        "| method | setting | View 1 runs | test accuracy, mean over seeds | seed std (n − 1) |\n|---|---|---|---|---|\n",
    );
    for (m, key, _) in super::CHOSEN {
        let name = if m == Method::Center { "λ" } else { "m" };
        let view1 = view1_of(runs, m, key)?;
        for s in &view1.settings {
            let values: Vec<f64> = s.seeds.iter().map(|v| v.1).collect();
            let std = if values.len() > 1 { fmt_pct(crate::stats::sample_std(&values)) } else { "—".into() };
            table.push_str(&format!(
                "| {} | {name} = {} | {} | {} | {std} |\n",
                m.name(),
                s.value,
                s.runs,
                or_na(view1.mean(s.value), fmt_pct)
            ));
        }
    }
    Ok(table)
}

/// How far above ln C a classifier's final training loss may be and still count as having
/// learned nothing: the cross-entropy of uniform predictions over C people is ln C.
const NOTHING_LEARNT: f64 = 0.02;

/// The softmax-trained methods' runs whose last logged classification loss stayed within
/// [`NOTHING_LEARNT`] of ln(training people): the model predicts every person alike (L-Softmax's
/// collapse on faces), as a paragraph, or nothing when none did.
pub fn learnt_nothing(runs: &Table, curves: &Table) -> Result<String> {
    let mut lines = Vec::new();
    for method in [Method::Softmax, Method::Center, Method::Lsoftmax] {
        let (mut stalled, mut total) = (Vec::new(), 0);
        for r in runs.records().filter(|r| method_of(r) == Some(method)) {
            let Some(people) = r.f64("training_people")? else { continue };
            // Center loss logs its softmax part apart from the total.
            let column = if method == Method::Center { "softmax_loss" } else { "loss" };
            let run_id = r.run_id()?;
            let mut last = None;
            for c in curves.records().filter(|c| c.run_id().is_ok_and(|id| id == run_id)) {
                if let (Some(step), Some(loss)) = (c.f64("step")?, c.f64(column).ok().flatten()) {
                    if last.is_none_or(|(s, _)| step > s) {
                        last = Some((step, loss));
                    }
                }
            }
            let Some((_, loss)) = last else { continue };
            total += 1;
            if (loss - people.ln()).abs() <= NOTHING_LEARNT * people.ln() {
                let view = if on_view1(&r) {
                    let label = r.text("label")?;
                    format!("View 1 {}", label.split_once(',').map_or(label, |(_, setting)| setting))
                } else {
                    format!("fold {}", fold_number(&r)?)
                };
                stalled.push(format!("{view} {loss:.3} (ln {people} = {:.3})", people.ln()));
            }
        }
        if !stalled.is_empty() {
            lines.push(format!(
                "{} of {total} {} runs ended with a training loss within {:.0} % of ln C, the loss of uniform \
                 predictions over C training people: {}",
                stalled.len(),
                method.label(),
                100.0 * NOTHING_LEARNT,
                stalled.join(", ")
            ));
        }
    }
    Ok(if lines.is_empty() {
        String::new()
    } else {
        format!("\n\n**Runs that learnt nothing.** {}.", lines.join(". "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Row};

    #[test]
    fn a_run_whose_last_loss_is_ln_c_learnt_nothing() {
        let run = |id: &str, label: &str, split: &str| -> Row {
            vec![
                ("run_id".into(), id.into()),
                ("label".into(), label.into()),
                ("method".into(), "lsoftmax".into()),
                ("split".into(), split.into()),
                ("training_people".into(), Cell::F64(100.0)),
            ]
        };
        let curve = |id: &str, step: f64, loss: f64| -> Row {
            vec![("run_id".into(), id.into()), ("step".into(), Cell::F64(step)), ("loss".into(), Cell::F64(loss))]
        };
        let runs = Table::new(
            "runs",
            vec![
                run("a", "method=lsoftmax,lsoftmax_m=2,seed=1", "view1"),
                run("b", "method=lsoftmax,split=fold3", "fold3"),
            ],
        );
        // a ends at ln 100 = 4.605 (after 2.0 earlier on); b falls from ln 100 to 2.0.
        let curves = Table::new(
            "curves",
            vec![curve("a", 10.0, 2.0), curve("a", 20.0, 4.6), curve("b", 10.0, 4.6), curve("b", 20.0, 2.0)],
        );
        let text = learnt_nothing(&runs, &curves).unwrap();
        assert!(text.contains("1 of 2 L-Softmax runs"), "{text}");
        assert!(text.contains("View 1 lsoftmax_m=2,seed=1 4.600 (ln 100 = 4.605)"), "{text}");
        assert!(!text.contains("fold 3"), "{text}");
        let learnt = Table::new("curves", vec![curve("a", 20.0, 2.0), curve("b", 20.0, 2.0)]);
        assert_eq!(learnt_nothing(&runs, &learnt).unwrap(), "");
    }
}
