//! results/REPORT.md, generated from the tables (never typed by hand): a summary of every
//! claim, then per experiment its claim table, figures, numbers and deviations. Verdicts wait
//! (as "incomplete") until every run the profile plans is recorded.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{plan, PlanOptions};
use crate::experiments::{registry, Experiment, Profile, Waiting};
use crate::metrics::{late_loss_fall, STILL_IMPROVING};
use crate::results::Store;
use crate::verdict::{Section, Verdict};

/// Why the verdicts of `exp` must wait, if they must: part of the plan of the profile of its
/// current runs (without overrides) is not recorded, or that plan waits for a selection.
fn incomplete(exp: &dyn Experiment, store: &Store, results_dir: &Path) -> Result<Option<String>> {
    let runs = store.current_runs()?;
    let Some(first) = runs.records().next() else { return Ok(None) };
    let profile = Profile::parse(first.text("profile")?)?;
    let planned = match plan(exp, &PlanOptions::new(profile, results_dir)) {
        Ok(planned) => planned,
        Err(e) => match e.downcast::<Waiting>() {
            Ok(w) => return Ok(Some(format!("**Incomplete:** {w}; the verdicts above wait for it."))),
            Err(e) => return Err(e),
        },
    };
    let recorded = planned.iter().filter(|r| r.done.is_some()).count();
    Ok((recorded < planned.len()).then(|| {
        format!(
            "**Incomplete:** {recorded} of the {} runs the {} profile plans are recorded; `just reproduce-all` runs \
             the rest, and the verdicts above wait for them.",
            planned.len(),
            profile.name()
        )
    }))
}

/// A paragraph on whether the experiment's runs had stopped improving: each finished run's loss
/// fall over the last tenth of its steps ([`late_loss_fall`]), flagged above [`STILL_IMPROVING`].
fn convergence(store: &Store) -> Result<String> {
    let (runs, curves) = (store.current_runs()?, store.load("curves")?);
    let mut falls = Vec::new();
    for r in runs.records() {
        if !r.finished()? {
            continue;
        }
        let curve = crate::experiments::setup::series_of(&curves, r.run_id()?, "step", "loss")?;
        if let Some(fall) = late_loss_fall(&curve) {
            falls.push((r.run_id()?.to_string(), fall));
        }
    }
    if falls.is_empty() {
        return Ok(String::new());
    }
    let still: Vec<String> = falls
        .iter()
        .filter(|(_, f)| *f > STILL_IMPROVING)
        .map(|(id, f)| format!("{id} ({:.0} %)", 100.0 * f))
        .collect();
    let worst = falls.iter().map(|f| f.1).fold(f64::NEG_INFINITY, f64::max);
    Ok(format!(
        "\n**Convergence.** {} of {} finished runs were still improving when they stopped (training loss fell by more \
         than {:.0} % from the second-to-last to the last tenth of their steps; largest fall {:.0} %){}. The loss is the \
         one trained, so a learning-rate step or a schedule (L-Softmax's λ, the center term) inside those steps moves \
         it too. A run still improving is judged at its budget, not at convergence.\n",
        still.len(),
        falls.len(),
        100.0 * STILL_IMPROVING,
        100.0 * worst.max(0.0),
        if still.is_empty() { String::new() } else { format!(": {}", still.join(", ")) },
    ))
}

/// A line on where the experiment's runs come from: their commits and CPUs, and the runs recorded
/// from a tree whose sources differed from their commit (`git_dirty`), which no commit reproduces.
fn provenance(store: &Store) -> Result<String> {
    let runs = store.current_runs()?;
    let (mut commits, mut cpus, mut dirty) = (Vec::new(), Vec::new(), Vec::new());
    for r in runs.records() {
        let commit: String = r.str("git_commit")?.unwrap_or("unknown").chars().take(7).collect();
        if !commits.contains(&commit) {
            commits.push(commit);
        }
        let cpu = r
            .str("cpu")
            .ok()
            .flatten()
            .filter(|c| !c.is_empty())
            .unwrap_or("a CPU not recorded (runs from before the cpu column)")
            .to_string();
        if !cpus.contains(&cpu) {
            cpus.push(cpu);
        }
        if matches!(r.cell("git_dirty"), Ok(crate::results::Cell::Bool(true))) {
            dirty.push(r.run_id()?.to_string());
        }
    }
    if commits.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "\n**Provenance.** {} runs from {} commit{} ({}) on {}; {}.\n",
        runs.rows.len(),
        commits.len(),
        if commits.len() == 1 { "" } else { "s" },
        commits.join(", "),
        cpus.join("; "),
        if dirty.is_empty() {
            "none was recorded from a dirty tree".to_string()
        } else {
            format!(
                "{} recorded from a dirty tree (sources differed from the commit): {}",
                dirty.len(),
                dirty.join(", ")
            )
        }
    ))
}

/// Writes results/REPORT.md from every experiment's tables; returns its path.
pub fn write(results_dir: &Path) -> Result<PathBuf> {
    let mut sections = Vec::new();
    for exp in registry() {
        let store = Store::new(results_dir, exp.name());
        if store.path("runs").exists() {
            if let Some(mut section) = exp.report(&store)? {
                if let Some(why) = incomplete(exp, &store, results_dir)? {
                    // A verdict drawn from part of a sweep could flip once the rest is in.
                    for claim in &mut section.claims {
                        claim.verdict = Verdict::Incomplete;
                    }
                    section.body = format!("{why}\n\n{}", section.body);
                }
                section.body.push_str(&convergence(&store)?);
                section.body.push_str(&provenance(&store)?);
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
            for c in &s.claims {
                out.push_str(&format!("| {} | {} | {} |\n", s.title, c.claim, c.verdict.text()));
            }
        }
        out.push('\n');
        out.push_str(&how_verdicts_are_decided(&sections));
        for s in &sections {
            out.push_str(&s.markdown());
            out.push('\n');
        }
    }
    let path = results_dir.join("REPORT.md");
    crate::util::atomic_write(&path, out.as_bytes())?;
    Ok(path)
}

/// The paragraph under the summary table: how many claims, the tests, the verdicts' meaning and
/// the policy for testing many claims at once.
fn how_verdicts_are_decided(sections: &[Section]) -> String {
    let claims: Vec<&crate::verdict::Claim> = sections.iter().flat_map(|s| &s.claims).collect();
    let count = |v: Verdict| claims.iter().filter(|c| c.verdict == v).count();
    format!(
        "**How verdicts are decided.** {} claims are tested: {} reproduced, {} not reproduced, {} inconclusive{}. \
         Each is decided over seeds (the same seed is the same initialisation and batch order in every setting, so \
         settings are compared on paired differences), with a 95 % Student-t interval and the sample std (n − 1); a \
         trend over a sweep is the interval of the per-seed least-squares slopes. Reproduced: the effect's interval \
         excludes zero in the paper's direction (for \"does not suffer\" claims: it lies above the stated margin; for \
         \"flat\" claims: inside it). Not reproduced: the interval excludes the paper's effect or shows the opposite. \
         Inconclusive: the data cannot tell, which includes every claim backed by fewer than {} seeds. Each row gives \
         its minimum detectable effect (MDE: the true effect its test finds 80 % of the time). Multiple comparisons: \
         each claim is tested at 95 % on its own and no correction is applied: about one in twenty claims with no \
         true effect would pass by chance, so read a single narrow \"reproduced\" with that in mind.\n\n",
        claims.len(),
        count(Verdict::Reproduced),
        count(Verdict::NotReproduced),
        count(Verdict::Inconclusive),
        match count(Verdict::Incomplete) {
            0 => String::new(),
            n => format!(", {n} incomplete (runs missing)"),
        },
        crate::verdict::MIN_SEEDS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Claim;

    #[test]
    fn the_policy_paragraph_counts_the_verdicts_it_reports() {
        let claim = |v| Claim::new("c", "p", "o", v);
        let sections = [
            Section {
                title: "A".into(),
                claims: vec![claim(Verdict::Reproduced), claim(Verdict::Inconclusive)],
                body: String::new(),
            },
            Section {
                title: "B".into(),
                claims: vec![claim(Verdict::NotReproduced), claim(Verdict::Incomplete)],
                body: String::new(),
            },
        ];
        let text = how_verdicts_are_decided(&sections);
        assert!(
            text.contains(
                "4 claims are tested: 1 reproduced, 1 not reproduced, 1 inconclusive, 1 incomplete (runs missing)."
            ),
            "{text}"
        );
        assert!(text.contains("fewer than 3 seeds") && text.contains("no correction is applied"));
    }
}
