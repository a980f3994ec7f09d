//! The budget study's rule, from tables to a reading per paper. Written before its runs: the gain
//! is the main metric at twice the quick budget minus the metric at the quick budget, paired by
//! seed (the same seed is the same initialisation and batch order), with its 95 % t interval.
//! - converged: the whole interval lies below [`TOLERANCE`] (doubling the budget buys less);
//! - still rising: the interval lies above zero (and reaches [`TOLERANCE`]);
//! - inconclusive: neither.

use anyhow::Result;

use crate::experiments::setup;
use crate::results::{Record, Table};
use crate::stats::{self, Interval};
use crate::verdict::{effect_text, fmt_pct, Scale, Section};

/// A gain below this (a fraction: 0.5 percentage points) counts as converged. Fixed before the
/// runs: it is the smallest effect the project's MNIST claims state (L-Softmax's m = 1 → 4 and
/// the leaderboard's differences are a few tenths of a point to a few points).
pub const TOLERANCE: f64 = 0.005;

/// A value a setting key takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key {
    Number(f64),
    Text(&'static str),
}

/// The setting of a paper's experiment that the study trains longer, and the metric it reads.
#[derive(Debug, Clone, Copy)]
pub struct Studied {
    pub experiment: &'static str,
    pub setting: &'static [(&'static str, Key)],
    /// How the metric is measured, set on the longer runs' config over the paper's current one:
    /// DeepID2 and FaceNet keep the pair-block folds their recorded quick runs were scored on,
    /// so that the two budgets pair (how pairs fall into folds does not change how long a run
    /// needs to train).
    pub measured_as: &'static [(&'static str, Key)],
    /// The final metric in runs.parquet (a fraction), which the paper's main claim reads.
    pub metric: &'static str,
    /// The same metric as the training curves log it (a subsample or the same pairs, see the paper's hook).
    pub curve: &'static str,
    pub metric_name: &'static str,
}

/// One setting per paper: the one its main claim rests on.
pub const PAPERS: [Studied; 5] = [
    Studied {
        experiment: "softmax-baseline",
        measured_as: &[],
        setting: &[],
        metric: "test_accuracy",
        curve: "test_accuracy",
        metric_name: "test accuracy",
    },
    Studied {
        experiment: "center-loss",
        measured_as: &[],
        setting: &[("lambda", Key::Number(0.01))],
        metric: "test_accuracy",
        curve: "test_accuracy",
        metric_name: "test accuracy",
    },
    Studied {
        experiment: "lsoftmax",
        measured_as: &[],
        setting: &[("m", Key::Number(4.0))],
        metric: "test_accuracy",
        curve: "test_accuracy",
        metric_name: "test accuracy",
    },
    Studied {
        experiment: "deepid2",
        measured_as: &[("verification_folds", Key::Text(setup::VerificationFolds::PairBlocks.name()))],
        setting: &[("lambda", Key::Number(0.05))],
        metric: "held_out_verification_accuracy",
        curve: "held_out_verification_accuracy",
        metric_name: "held-out verification accuracy",
    },
    Studied {
        experiment: "facenet",
        measured_as: &[("verification_folds", Key::Text(setup::VerificationFolds::PairBlocks.name()))],
        setting: &[("mining", Key::Text("semi_hard")), ("feature_dim", Key::Number(64.0))],
        metric: "held_out_val_at_far_1e-3",
        curve: "held_out_val_at_far_1e-3",
        metric_name: "held-out VAL@1e-3",
    },
];

impl Key {
    pub fn json(&self) -> serde_json::Value {
        match self {
            Key::Number(x) => serde_json::Value::from(*x),
            Key::Text(s) => serde_json::Value::from(*s),
        }
    }
}

impl Studied {
    /// Whether a run's config is this setting.
    pub fn holds(&self, config: &serde_json::Map<String, serde_json::Value>) -> bool {
        self.setting.iter().all(|(key, want)| match (want, config.get(*key)) {
            (Key::Number(x), Some(v)) => v.as_f64() == Some(*x),
            (Key::Text(s), Some(v)) => v.as_str() == Some(*s),
            (_, None) => false,
        })
    }

    /// Whether a recorded run is this setting.
    pub fn holds_row(&self, r: &Record) -> Result<bool> {
        for (key, want) in self.setting {
            let ok = match want {
                Key::Number(x) => r.f64(key)? == Some(*x),
                Key::Text(s) => r.str(key)? == Some(*s),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// "λ = 0.05", "mining = semi_hard, feature_dim = 64", "default".
    pub fn setting_text(&self) -> String {
        if self.setting.is_empty() {
            return "default".into();
        }
        let one = |(k, v): &(&str, Key)| match v {
            Key::Number(x) => format!("{} = {x}", if *k == "lambda" { "λ" } else { k }),
            Key::Text(s) => format!("{k} = {s}"),
        };
        self.setting.iter().map(one).collect::<Vec<_>>().join(", ")
    }
}

/// What the study says of one paper's quick budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Converged,
    StillRising,
    Inconclusive,
    /// Fewer than two seeds have both budgets.
    Waiting,
}

impl Reading {
    pub fn of(gain: Option<&Interval>) -> Reading {
        match gain {
            None => Reading::Waiting,
            Some(i) if i.below(TOLERANCE) => Reading::Converged,
            Some(i) if i.above(0.0) => Reading::StillRising,
            Some(_) => Reading::Inconclusive,
        }
    }

    pub fn text(&self) -> &'static str {
        match self {
            Reading::Converged => "converged",
            Reading::StillRising => "still rising",
            Reading::Inconclusive => "inconclusive",
            Reading::Waiting => "waiting for runs",
        }
    }
}

/// One paper's two budgets: (seed, metric) of the finished runs, the iterations, and the gain.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub quick: OneBudget,
    pub longer: OneBudget,
    pub gain: Option<Interval>,
}

impl Compared {
    pub fn reading(&self) -> Reading {
        Reading::of(self.gain.as_ref())
    }
}

/// The runs of one budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OneBudget {
    /// (seed, metric) of the finished runs, by seed.
    pub values: Vec<(u64, f64)>,
    pub iterations: Option<u64>,
    /// The finished runs' ids (the figure draws their curves).
    pub finished: Vec<String>,
    /// Runs that did not finish (diverged or collapsed), by run id.
    pub unfinished: Vec<String>,
}

/// [`OneBudget`] of the runs among `runs` that hold `paper`'s setting.
fn budget_of(paper: &Studied, runs: &Table) -> Result<OneBudget> {
    let mut out = OneBudget::default();
    for r in runs.records() {
        if !paper.holds_row(&r)? {
            continue;
        }
        out.iterations = r.f64("iterations")?.map(|i| i as u64).or(out.iterations);
        if !r.finished()? {
            out.unfinished.push(r.run_id()?.to_string());
            continue;
        }
        out.finished.push(r.run_id()?.to_string());
        if let Some(v) = r.f64(paper.metric)?.filter(|v| v.is_finite()) {
            out.values.push((r.seed()?, v));
        }
    }
    out.values.sort_by_key(|v| v.0);
    Ok(out)
}

/// Config keys that change what the metric measures, not how the model trains, with the value
/// that runs recorded before the key existed were measured with: the two budgets pair only where
/// these agree.
pub const MEASURED_THE_SAME: [(&str, &str); 1] = [("verification_folds", setup::FOLDS_BEFORE_THE_KEY.name())];

fn measured(r: &Record) -> Vec<String> {
    MEASURED_THE_SAME.iter().map(|(k, before)| r.str(k).ok().flatten().unwrap_or(before).to_string()).collect()
}

/// The paper's quick runs against the study's longer ones. `quick_runs` is the paper's whole
/// runs table: the quick runs paired are those of the longer runs' profile, measurement and
/// setting that trained 1/`budget_factor` of their iterations, the latest per seed (a later
/// change of the paper's config leaves the rows the study was run against in the table).
pub fn compare(paper: &Studied, quick_runs: &Table, budget_runs: &Table) -> Result<Compared> {
    let longer_runs = budget_runs.filter(|r| Ok(r.str("paper")? == Some(paper.experiment)))?;
    let first = longer_runs.records().next();
    let target = match &first {
        Some(r) => {
            let factor = r.f64("budget_factor")?.unwrap_or(1.0);
            let iterations = r.f64("iterations")?.map(|i| (i / factor).round());
            Some((r.str("profile")?.map(str::to_string), measured(r), iterations))
        }
        None => None,
    };
    let when = |r: &Record| r.f64("finished_at_unix").ok().flatten().unwrap_or(0.0);
    let mut latest: Vec<(u64, f64, crate::results::Row)> = Vec::new();
    for r in quick_runs.records() {
        let candidate = (r.str("profile")?.map(str::to_string), measured(&r), r.f64("iterations")?);
        if target.as_ref().is_some_and(|t| *t != candidate) || !paper.holds_row(&r)? {
            continue;
        }
        let (seed, at) = (r.seed()?, when(&r));
        match latest.iter_mut().find(|(s, _, _)| *s == seed) {
            Some(kept) if kept.1 >= at => {}
            Some(kept) => *kept = (seed, at, r.row.clone()),
            None => latest.push((seed, at, r.row.clone())),
        }
    }
    let latest = latest.into_iter().map(|(_, _, row)| row).collect();
    let quick_runs = Table::new(quick_runs.source.clone(), latest);
    let quick = budget_of(paper, &quick_runs)?;
    let longer = budget_of(paper, &longer_runs)?;
    let gain = stats::paired_interval(&quick.values, &longer.values);
    Ok(Compared { quick, longer, gain })
}

fn summary(values: &[(u64, f64)], iterations: Option<u64>) -> String {
    let xs: Vec<f64> = values.iter().map(|v| v.1).collect();
    let at = iterations.map_or(String::new(), |i| format!("{i} it.: "));
    match xs.len() {
        0 => format!("{at}—"),
        1 => format!("{at}{} (1 seed)", fmt_pct(xs[0])),
        n => format!("{at}{} ± {} (n = {n})", fmt_pct(stats::mean(&xs)), fmt_pct(stats::sample_std(&xs))),
    }
}

/// The study's section of REPORT.md; `paper_runs` gives a paper experiment's whole runs table.
pub fn section(budget_runs: &Table, paper_runs: impl Fn(&str) -> Result<Table>) -> Result<Option<Section>> {
    if budget_runs.rows.is_empty() {
        return Ok(None);
    }
    let mut body = format!(
        "Each paper's main setting trained again with every step count of its quick schedule doubled \
         (iterations and learning-rate milestones; L-Softmax's λ schedule rescales to the new length), over the \
         same seeds, set beside the quick runs its own experiment recorded. The gain is the main metric at twice \
         the budget minus the metric at the quick budget, paired by seed, with its 95 % t interval. The rule, \
         written before these runs: **converged** when the whole interval lies below {tol} pt (doubling buys \
         less), **still rising** when it lies above zero, **inconclusive** otherwise. A claim of a paper still \
         rising is a statement about the quick budget; an effect smaller than the gain could change with a \
         longer run.\n\n\
         | paper | setting | metric | quick budget (mean ± sample std) | twice the budget | gain | reading |\n\
         |---|---|---|---|---|---|---|\n",
        tol = TOLERANCE * 100.0
    );
    let mut notes = Vec::new();
    for paper in &PAPERS {
        let c = compare(paper, &paper_runs(paper.experiment)?, budget_runs)?;
        let gain = effect_text("×2", c.gain.as_ref(), c.gain.map_or(0, |i| i.n), Scale::Points, "paired by seed");
        body.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | **{}** |\n",
            paper.experiment,
            paper.setting_text(),
            paper.metric_name,
            summary(&c.quick.values, c.quick.iterations),
            summary(&c.longer.values, c.longer.iterations),
            gain,
            c.reading().text()
        ));
        let unfinished: Vec<&str> = c.quick.unfinished.iter().chain(&c.longer.unfinished).map(String::as_str).collect();
        if !unfinished.is_empty() {
            notes.push(format!(
                "{}: {} did not finish and {} left out of the pairs.",
                paper.experiment,
                unfinished.join(", "),
                if unfinished.len() == 1 { "is" } else { "are" }
            ));
        }
    }
    body.push('\n');
    for n in notes {
        body.push_str(&format!("{n}\n\n"));
    }
    body.push_str(
        "![budget](budget/budget.png)\n\nThe figure draws the metric as each run's training curve logs it (the \
         papers' hooks: 1,000 test images for the classifiers, the held-out pairs for DeepID2 and FaceNet), mean \
         over seeds with 95 % t intervals; the table reads the final evaluation.\n\n",
    );
    Ok(Some(Section {
        title: "Budget study: the quick schedule against twice its length".into(),
        claims: Vec::new(),
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Row, STATUS_DIVERGED, STATUS_FINISHED};

    fn run(paper: Option<&str>, lambda: f64, seed: u64, iterations: u64, status: &str, acc: f64) -> Row {
        let mut row: Row = vec![
            ("run_id".into(), format!("{paper:?}-{lambda}-{seed}-{iterations}").into()),
            ("status".into(), status.into()),
            ("seed".into(), seed.into()),
            ("lambda".into(), lambda.into()),
            ("iterations".into(), iterations.into()),
            ("held_out_verification_accuracy".into(), acc.into()),
            ("profile".into(), "quick".into()),
            ("finished_at_unix".into(), 1000u64.into()),
        ];
        if let Some(p) = paper {
            row.push(("paper".into(), p.into()));
            row.push(("budget_factor".into(), 2u64.into()));
        }
        row
    }

    fn deepid2() -> &'static Studied {
        PAPERS.iter().find(|p| p.experiment == "deepid2").unwrap()
    }

    fn tables(gains: [f64; 3]) -> (Table, Table) {
        let mut quick = Vec::new();
        let mut longer = Vec::new();
        for (i, g) in gains.iter().enumerate() {
            let seed = i as u64 + 1;
            let base = 0.90 + 0.01 * i as f64;
            quick.push(run(None, 0.05, seed, 600, STATUS_FINISHED, base));
            quick.push(run(None, 0.1, seed, 600, STATUS_FINISHED, 0.5));
            longer.push(run(Some("deepid2"), 0.05, seed, 1200, STATUS_FINISHED, base + g));
            longer.push(run(Some("center-loss"), 0.05, seed, 2000, STATUS_FINISHED, 0.1));
        }
        (Table::new("quick", quick), Table::new("budget", longer))
    }

    #[test]
    fn a_gain_below_the_tolerance_everywhere_in_its_interval_is_converged() {
        let (quick, longer) = tables([0.001, 0.002, 0.0015]);
        let c = compare(deepid2(), &quick, &longer).unwrap();
        assert_eq!(c.quick.values.len(), 3, "only λ = 0.05 and only deepid2's longer runs pair");
        assert_eq!((c.quick.iterations, c.longer.iterations), (Some(600), Some(1200)));
        assert!((c.gain.unwrap().estimate - 0.0015).abs() < 1e-12);
        assert_eq!(c.reading(), Reading::Converged);
    }

    #[test]
    fn a_gain_above_zero_that_reaches_the_tolerance_is_still_rising() {
        let (quick, longer) = tables([0.02, 0.025, 0.03]);
        assert_eq!(compare(deepid2(), &quick, &longer).unwrap().reading(), Reading::StillRising);
    }

    #[test]
    fn a_gain_whose_interval_covers_zero_and_the_tolerance_is_inconclusive() {
        let (quick, longer) = tables([0.03, -0.02, 0.01]);
        assert_eq!(compare(deepid2(), &quick, &longer).unwrap().reading(), Reading::Inconclusive);
    }

    #[test]
    fn unfinished_runs_leave_the_pairs_and_one_pair_cannot_tell() {
        let (quick, mut longer) = tables([0.02, 0.025, 0.03]);
        for row in longer.rows.iter_mut().filter(|r| Table::get(r, "paper").and_then(|c| c.as_str()) == Some("deepid2"))
        {
            let seed = Table::get(row, "seed").and_then(|c| c.as_f64()).unwrap();
            if seed > 1.0 {
                row.retain(|(k, _)| k != "status");
                row.push(("status".into(), STATUS_DIVERGED.into()));
            }
        }
        let c = compare(deepid2(), &quick, &longer).unwrap();
        assert_eq!(c.longer.unfinished.len(), 2);
        assert_eq!(c.reading(), Reading::Waiting);
        let others = Table::new("none", Vec::new());
        let section =
            section(&longer, |e| Ok(if e == "deepid2" { quick.clone() } else { others.clone() })).unwrap().unwrap();
        assert!(section.body.contains("did not finish"), "{}", section.body);
        assert!(section.body.contains("| deepid2 | λ = 0.05 | held-out verification accuracy |"), "{}", section.body);
    }

    #[test]
    fn the_latest_quick_run_of_a_seed_pairs_and_other_budgets_are_left_out() {
        let (mut quick, longer) = tables([0.001, 0.002, 0.0015]);
        let mut retrained = run(None, 0.05, 1, 600, STATUS_FINISHED, 0.5);
        retrained.retain(|(k, _)| k != "finished_at_unix");
        retrained.push(("finished_at_unix".into(), 2000u64.into()));
        quick.rows.push(retrained);
        quick.rows.push(run(None, 0.05, 2, 300, STATUS_FINISHED, 0.1));
        let c = compare(deepid2(), &quick, &longer).unwrap();
        assert_eq!(c.quick.values, [(1, 0.5), (2, 0.91), (3, 0.92)]);
    }

    #[test]
    fn runs_measured_on_other_folds_do_not_pair() {
        let (quick, mut longer) = tables([0.02, 0.025, 0.03]);
        for row in &mut longer.rows {
            row.push(("verification_folds".into(), "image_disjoint".into()));
        }
        let c = compare(deepid2(), &quick, &longer).unwrap();
        assert!(c.quick.values.is_empty() && c.reading() == Reading::Waiting, "{c:?}");
    }

    #[test]
    fn every_studied_setting_is_one_planned_quick_config() {
        // The five papers' sweeps read no selection, so no results directory needs to exist.
        let dir = std::env::temp_dir().join(format!("replicate-budget-{}", std::process::id()));
        for paper in &PAPERS {
            let config = super::super::longer_config(paper, crate::experiments::Profile::Quick, &dir, 2).unwrap();
            let quick = super::super::longer_config(paper, crate::experiments::Profile::Quick, &dir, 1).unwrap();
            let it = |c: &serde_json::Map<String, serde_json::Value>| c["iterations"].as_u64().unwrap();
            assert_eq!(it(&config), 2 * it(&quick), "{}", paper.experiment);
            assert!(paper.holds(&config));
        }
    }
}
