//! results/REPORT.md, generated from the tables (never typed by hand): per experiment a claim
//! table (claim, paper, ours, verdict), its figures and numbers, and its deviations.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::results::{Cell, Row, Store, Table, STATUS_FINISHED};

/// How a claim fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reproduced,
    Partly,
    NotReproduced,
    /// Some runs the profile plans are not recorded yet. Set here, from the plan, never by an
    /// experiment: an experiment whose runs are all recorded but one did not finish (diverged)
    /// has an answer, and it is not "reproduced".
    Incomplete,
}

impl Verdict {
    pub fn text(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Partly => "partly",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Incomplete => "incomplete: runs missing",
        }
    }

    /// Whether `values` (in sweep order) rise (`rising`) or fall: reproduced when every step
    /// goes that way, partly when only the ends are in order, not reproduced when fewer than two
    /// values or any is missing (a setting whose runs all diverged).
    pub fn of_trend(values: &[Option<f64>], rising: bool) -> Verdict {
        let Some(v) = values.iter().copied().collect::<Option<Vec<f64>>>().filter(|v| v.len() >= 2) else {
            return Verdict::NotReproduced;
        };
        let ordered = |a: f64, b: f64| if rising { b > a } else { b < a };
        if v.windows(2).all(|w| ordered(w[0], w[1])) {
            Verdict::Reproduced
        } else if ordered(v[0], v[v.len() - 1]) {
            Verdict::Partly
        } else {
            Verdict::NotReproduced
        }
    }
}

/// One experiment's part of the report.
pub struct Section {
    pub title: String,
    /// (claim, the paper's value or description, ours, verdict)
    pub claims: Vec<(String, String, String, Verdict)>,
    /// Markdown after the claim table: numbers, figures, deviations.
    pub body: String,
}

impl Section {
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n| claim | paper | ours | verdict |\n|---|---|---|---|\n", self.title);
        for (claim, paper, ours, verdict) in &self.claims {
            out.push_str(&format!("| {claim} | {paper} | {ours} | **{}** |\n", verdict.text()));
        }
        out.push('\n');
        out.push_str(&self.body);
        out
    }
}

pub fn fmt_pct(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else {
        format!("{:.2}%", 100.0 * x)
    }
}

/// λ as the papers write it: 0, 1e-4, 0.05, ∞.
pub fn lambda_label(l: f64) -> String {
    if l == 0.0 {
        "0".into()
    } else if l.is_infinite() {
        "∞".into()
    } else if l < 0.01 {
        format!("{l:.0e}")
    } else {
        format!("{l}")
    }
}

/// One run per value of `key` (the seed-1 run when there are several seeds; else the first),
/// sorted by that value; finished runs first choice.
pub fn runs_by(store: &Store, key: &str) -> Result<Vec<(f64, Row)>> {
    Ok(first_of_each(store.current_runs()?.rows, key))
}

/// [`runs_by`] over rows already chosen (for an experiment whose runs differ in more than `key`).
pub fn first_of_each(mut rows: Vec<Row>, key: &str) -> Vec<(f64, Row)> {
    let mut out: Vec<(f64, Row)> = Vec::new();
    rows.sort_by_key(|r| {
        (
            Table::get(r, "status").and_then(Cell::as_str) != Some(STATUS_FINISHED),
            Table::get(r, "seed").and_then(Cell::as_f64).map(|s| s as i64).unwrap_or(0),
        )
    });
    for row in rows {
        // A column holding "inf" among numbers is stored as text.
        let value = match Table::get(&row, key) {
            Some(Cell::Str(s)) if s == "inf" => f64::INFINITY,
            Some(Cell::Str(s)) => match s.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
            Some(c) => match c.as_f64() {
                Some(v) => v,
                None => continue,
            },
            None => continue,
        };
        if !out.iter().any(|(v, _)| *v == value) {
            out.push((value, row));
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// (recorded, planned, profile name): how many of the runs that the profile of the experiment's
/// current runs plans (without overrides) are recorded.
fn plan_coverage(
    exp: &dyn crate::experiments::Experiment,
    store: &Store,
    results_dir: &Path,
) -> Result<(usize, usize, &'static str)> {
    let runs = store.current_runs()?;
    let Some(profile) = runs.rows.first().and_then(|r| Table::get(r, "profile")).and_then(Cell::as_str) else {
        return Ok((0, 0, "no"));
    };
    let profile = crate::experiments::Profile::parse(profile)?;
    let planned = crate::experiments::plan(exp, &crate::experiments::PlanOptions::new(profile, results_dir))?;
    let recorded = planned.iter().filter(|r| r.done.is_some()).count();
    Ok((recorded, planned.len(), profile.name()))
}

/// Writes results/REPORT.md from every experiment's tables; returns its path.
pub fn write(results_dir: &Path) -> Result<PathBuf> {
    let mut sections = Vec::new();
    for exp in crate::experiments::registry() {
        let store = Store::new(results_dir, exp.name());
        if store.path("runs").exists() {
            if let Some(mut section) = exp.report(&store)? {
                let (recorded, planned, profile) = plan_coverage(exp, &store, results_dir)?;
                if recorded < planned {
                    // A verdict drawn from part of a sweep could flip once the rest is in.
                    for claim in &mut section.claims {
                        claim.3 = Verdict::Incomplete;
                    }
                    section.body = format!(
                        "**Incomplete:** {recorded} of the {planned} runs the {profile} profile plans are recorded; \
                         `just reproduce-all` runs the rest, and the verdicts above wait for them.\n\n{}",
                        section.body
                    );
                }
                sections.push(section);
            }
        }
    }
    let mut out = String::from(
        "# REPORT: what was and was not reproduced\n\n\
         Generated by `replicate` from the tables in this directory (`just reproduce-all` rewrites it); \
         every number below comes from a training run recorded in a `runs.parquet`.\n\n",
    );
    if sections.is_empty() {
        out.push_str("No experiment has finished runs yet.\n");
    } else {
        out.push_str("| experiment | claim | verdict |\n|---|---|---|\n");
        for s in &sections {
            for (claim, _, _, verdict) in &s.claims {
                out.push_str(&format!("| {} | {claim} | {} |\n", s.title, verdict.text()));
            }
        }
        out.push('\n');
        for s in &sections {
            out.push_str(&s.markdown());
            out.push('\n');
        }
    }
    let path = results_dir.join("REPORT.md");
    crate::util::atomic_write(&path, out.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_need_every_step_for_reproduced_and_the_ends_for_partly() {
        let v = |xs: &[f64]| xs.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(Verdict::of_trend(&v(&[23.8, 31.8, 31.7, 31.4]), true), Verdict::Partly);
        assert_eq!(Verdict::of_trend(&v(&[13.8, 18.6, 20.6, 23.5]), true), Verdict::Reproduced);
        assert_eq!(Verdict::of_trend(&v(&[11.2, 2.9, 2.5, 2.0]), false), Verdict::Reproduced);
        assert_eq!(Verdict::of_trend(&v(&[2.0, 2.0]), true), Verdict::NotReproduced, "a tie is not a rise");
        assert_eq!(Verdict::of_trend(&[Some(1.0), None, Some(3.0)], true), Verdict::NotReproduced);
        assert_eq!(Verdict::of_trend(&v(&[1.0]), true), Verdict::NotReproduced);
    }

    #[test]
    fn labels_and_sections() {
        assert_eq!(lambda_label(0.0), "0");
        assert_eq!(lambda_label(1e-4), "1e-4");
        assert_eq!(lambda_label(0.05), "0.05");
        assert_eq!(lambda_label(f64::INFINITY), "∞");
        let s = Section {
            title: "T".into(),
            claims: vec![("c".into(), "p".into(), "o".into(), Verdict::Partly)],
            body: "b\n".into(),
        };
        assert_eq!(
            s.markdown(),
            "## T\n\n| claim | paper | ours | verdict |\n|---|---|---|---|\n| c | p | o | **partly** |\n\nb\n"
        );
    }
}
