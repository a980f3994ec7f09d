//! A sweep's metric per setting and per seed, read from runs.parquet, and the tests every claim
//! states: paired differences between two settings, and trends over a sweep as per-seed slopes.
//! The same seed is the same initialisation and batch order in every setting, so settings are
//! compared on the differences within a seed.

use anyhow::Result;

use crate::results::{Record, Table};
use crate::stats::{self, Interval};
use crate::verdict::{effect_text, effect_text_over, Scale};

/// One metric of a sweep: for each value of the swept key (ascending), the (seed, value) of every
/// finished run that has the metric, and how many runs the setting has in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seeded {
    pub settings: Vec<Setting>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub value: f64,
    pub runs: usize,
    pub seeds: Vec<(u64, f64)>,
}

impl Seeded {
    /// `metric` of the finished runs among `runs`, grouped by `key`.
    pub fn of<'a>(runs: impl IntoIterator<Item = Record<'a>>, key: &str, metric: &str) -> Result<Seeded> {
        Seeded::collect(runs, |r| r.f64(key), |r| Ok(if r.finished()? { r.f64(metric)? } else { None }))
    }

    /// The general form: each run's setting from `key` (runs without one are skipped) and its
    /// value from `value` (None: the run counts in the setting's runs but gives no seed).
    pub fn collect<'a>(
        runs: impl IntoIterator<Item = Record<'a>>,
        key: impl Fn(&Record<'a>) -> Result<Option<f64>>,
        value: impl Fn(&Record<'a>) -> Result<Option<f64>>,
    ) -> Result<Seeded> {
        Seeded::collect_by(runs, key, |r| r.seed(), value)
    }

    /// As [`Seeded::collect`], with replicates other than seeds (LFW's View 2 folds): runs pair
    /// by `replicate`, which the `seeds` lists hold in place of the seed.
    pub fn collect_by<'a>(
        runs: impl IntoIterator<Item = Record<'a>>,
        key: impl Fn(&Record<'a>) -> Result<Option<f64>>,
        replicate: impl Fn(&Record<'a>) -> Result<u64>,
        value: impl Fn(&Record<'a>) -> Result<Option<f64>>,
    ) -> Result<Seeded> {
        let mut settings: Vec<Setting> = Vec::new();
        for r in runs {
            let Some(setting) = key(&r)? else { continue };
            let at = match settings.iter().position(|s| s.value == setting) {
                Some(i) => i,
                None => {
                    settings.push(Setting { value: setting, runs: 0, seeds: Vec::new() });
                    settings.len() - 1
                }
            };
            settings[at].runs += 1;
            if let Some(v) = value(&r)?.filter(|v| v.is_finite()) {
                settings[at].seeds.push((replicate(&r)?, v));
            }
        }
        settings.sort_by(|a, b| a.value.total_cmp(&b.value));
        for s in &mut settings {
            s.seeds.sort_by_key(|v| v.0);
        }
        Ok(Seeded { settings })
    }

    /// [`Seeded::of`] over a whole table.
    pub fn from_table(runs: &Table, key: &str, metric: &str) -> Result<Seeded> {
        Seeded::of(runs.records(), key, metric)
    }

    pub fn at(&self, value: f64) -> Option<&Setting> {
        self.settings.iter().find(|s| s.value == value)
    }

    /// The seeds of a setting (empty when the setting is not there).
    pub fn seeds(&self, value: f64) -> &[(u64, f64)] {
        self.at(value).map(|s| s.seeds.as_slice()).unwrap_or(&[])
    }

    /// Mean over the seeds of a setting.
    pub fn mean(&self, value: f64) -> Option<f64> {
        let v: Vec<f64> = self.seeds(value).iter().map(|s| s.1).collect();
        (!v.is_empty()).then(|| stats::mean(&v))
    }

    /// A figure's series: each setting's mean over seeds at x = `at(value)` (settings `at` places
    /// nowhere are left out), times `scale`, with the half-width of the 95 % t interval over seeds
    /// as its error bar (0 for a single seed).
    pub fn mean_points(&self, at: impl Fn(f64) -> Option<f64>, scale: f64) -> (Vec<(f64, f64)>, Vec<f64>) {
        let (mut points, mut errors) = (Vec::new(), Vec::new());
        for setting in &self.settings {
            let (Some(x), Some(mean)) = (at(setting.value), self.mean(setting.value)) else { continue };
            let values: Vec<f64> = setting.seeds.iter().map(|v| v.1).collect();
            points.push((x, mean * scale));
            errors.push(stats::t_interval(&values).map_or(0.0, |i| (i.high - i.estimate) * scale));
        }
        (points, errors)
    }

    /// The setting with the best mean among those `keep` admits, and that mean (the first of
    /// equal means, in ascending order of value).
    pub fn best_where(&self, keep: impl Fn(f64) -> bool) -> Option<(f64, f64)> {
        self.settings.iter().filter(|s| keep(s.value)).filter_map(|s| self.mean(s.value).map(|m| (s.value, m))).fold(
            None,
            |best: Option<(f64, f64)>, (v, m)| if best.is_none_or(|b| m > b.1) { Some((v, m)) } else { best },
        )
    }

    /// The interior setting (0 < value < ∞, as λ of a sweep from 0 to ∞) with the best mean, and
    /// that mean.
    pub fn best_interior(&self) -> Option<(f64, f64)> {
        self.best_where(|v| v > 0.0 && v.is_finite())
    }

    /// Settings with runs none of which finished.
    pub fn all_diverged(&self) -> Vec<f64> {
        self.settings.iter().filter(|s| s.runs > 0 && s.seeds.is_empty()).map(|s| s.value).collect()
    }

    /// The paired difference `to − from` over the seeds both settings have.
    pub fn paired(&self, from: f64, to: f64) -> Comparison {
        let differences: Vec<f64> =
            stats::paired_differences(self.seeds(from), self.seeds(to)).into_iter().map(|(_, d)| d).collect();
        Comparison { interval: stats::t_interval(&differences), seeds: differences.len() }
    }

    /// The per-seed trend over `values` (in this order): each seed that has every one of them
    /// gives the least-squares slope of the metric on `x(value)`; the interval is over those seeds.
    pub fn trend(&self, values: &[f64], x: impl Fn(f64) -> f64) -> Comparison {
        let mut seeds: Vec<u64> = values.iter().flat_map(|&v| self.seeds(v).iter().map(|s| s.0)).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let xs: Vec<f64> = values.iter().map(|&v| x(v)).collect();
        let slopes: Vec<f64> = seeds
            .iter()
            .filter_map(|&seed| {
                let ys = values
                    .iter()
                    .map(|&v| self.seeds(v).iter().find(|s| s.0 == seed).map(|s| s.1))
                    .collect::<Option<Vec<f64>>>()?;
                stats::slope(&xs, &ys)
            })
            .collect();
        Comparison { interval: stats::t_interval(&slopes), seeds: slopes.len() }
    }
}

/// An effect between settings: its interval (None below two seeds) and how many seeds it uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub interval: Option<Interval>,
    pub seeds: usize,
}

impl Comparison {
    /// The row's words for it: "{what}: +0.74 pt [+0.51, +0.97], {test} over 3 seeds (MDE …)".
    pub fn text(&self, what: &str, scale: Scale, test: &str) -> String {
        effect_text(what, self.interval.as_ref(), self.seeds, scale, test)
    }

    /// As [`Comparison::text`], over replicates of another kind ("fold").
    pub fn text_over(&self, what: &str, scale: Scale, test: &str, replicate: &str) -> String {
        effect_text_over(what, self.interval.as_ref(), self.seeds, scale, test, replicate)
    }
}

/// The words for the two tests the claims use.
pub const PAIRED: &str = "paired by seed, t interval";
pub const SLOPE: &str = "least-squares slope per seed, t interval";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Row, STATUS_DIVERGED, STATUS_FINISHED};

    fn run(lambda: f64, seed: u64, status: &str, acc: f64) -> Row {
        vec![
            ("run_id".into(), format!("l={lambda},s={seed}").into()),
            ("status".into(), status.into()),
            ("seed".into(), seed.into()),
            ("lambda".into(), lambda.into()),
            ("test_accuracy".into(), acc.into()),
        ]
    }

    #[test]
    fn settings_pair_by_seed_and_trends_are_slopes_per_seed() {
        let rows = vec![
            run(0.1, 2, STATUS_FINISHED, 0.96),
            run(0.0, 1, STATUS_FINISHED, 0.90),
            run(0.0, 2, STATUS_FINISHED, 0.94),
            run(0.1, 1, STATUS_FINISHED, 0.92),
            run(0.0, 3, STATUS_FINISHED, 0.92),
            run(0.1, 3, STATUS_FINISHED, 0.94),
            run(1.0, 1, STATUS_DIVERGED, f64::NAN),
        ];
        let s = Seeded::from_table(&Table::new("hand-made", rows), "lambda", "test_accuracy").unwrap();
        assert_eq!(s.settings.iter().map(|x| x.value).collect::<Vec<_>>(), [0.0, 0.1, 1.0]);
        assert_eq!(s.seeds(0.1), [(1, 0.92), (2, 0.96), (3, 0.94)]);
        assert_eq!(s.all_diverged(), [1.0]);
        let c = s.paired(0.0, 0.1);
        let i = c.interval.unwrap();
        assert_eq!(c.seeds, 3);
        assert!((i.estimate - 0.02).abs() < 1e-12 && i.high - i.low < 1e-9, "the same +2 points every seed");
        let t = s.trend(&[0.0, 0.1], |l| l);
        assert!((t.interval.unwrap().estimate - 0.2).abs() < 1e-9, "0.02 per 0.1");
        assert_eq!(s.trend(&[0.0, 1.0], |l| l).seeds, 0, "no seed has every setting");
        assert!(c
            .text("λ = 0 → 0.1", Scale::Points, PAIRED)
            .starts_with("λ = 0 → 0.1: +2.00 pt [+2.00, +2.00], paired"));
    }
}
