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
             the rest, and the verdicts above that read them wait for them.",
            planned.len(),
            profile.name()
        )
    }))
}

/// Marks the verdicts of a section whose plan is not all recorded as incomplete: a verdict drawn
/// from part of a sweep could flip once the rest is in. A claim that knows every run it reads is
/// recorded keeps its verdict.
fn wait_for_runs(section: &mut Section, why: &str) {
    for claim in &mut section.claims {
        if claim.own_runs_recorded != Some(true) {
            claim.verdict = Verdict::Incomplete;
        }
    }
    section.body = format!("{why}\n\n{}", section.body);
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

/// `exp`'s section from its tables with the verdicts REPORT.md prints: those that read part of an
/// unfinished plan are marked incomplete ([`wait_for_runs`]). The notebooks show the same.
pub fn judged_section(exp: &dyn Experiment, store: &Store, results_dir: &Path) -> Result<Option<Section>> {
    let Some(mut section) = exp.report(store)? else { return Ok(None) };
    if let Some(why) = incomplete(exp, store, results_dir)? {
        wait_for_runs(&mut section, &why);
    }
    Ok(Some(section))
}

/// Writes results/REPORT.md from every experiment's tables; returns its path.
pub fn write(results_dir: &Path) -> Result<PathBuf> {
    let mut sections = Vec::new();
    for exp in registry() {
        let store = Store::new(results_dir, exp.name());
        if store.path("runs").exists() {
            if let Some(mut section) = judged_section(exp, &store, results_dir)? {
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
        out.push_str(&changes_since(previous_report(results_dir).as_deref(), &sections));
        for s in &sections {
            out.push_str(&s.markdown());
            out.push('\n');
        }
    }
    let path = results_dir.join("REPORT.md");
    crate::util::atomic_write(&path, out.as_bytes())?;
    Ok(path)
}

/// The heading of the list of verdicts that changed; the list runs to the next heading.
const CHANGES_HEADING: &str = "## Verdicts changed since the previous REPORT.md";

/// The REPORT.md the new one is compared with: the committed one where `results_dir` is in a git
/// checkout that tracks it (so that redrawing mid-sweep does not move the baseline), else the one
/// on disk.
fn previous_report(results_dir: &Path) -> Option<String> {
    let committed = std::process::Command::new("git")
        .args(["show", "HEAD:./REPORT.md"])
        .current_dir(results_dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok());
    committed.or_else(|| std::fs::read_to_string(results_dir.join("REPORT.md")).ok())
}

/// (experiment, claim, verdict) of each row of a report's summary table.
fn summary_verdicts(report: &str) -> Vec<(String, String, String)> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("| experiment | claim | verdict |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split(" | ").map(str::trim).collect();
            let (first, rest) = cells.split_first()?;
            let (last, middle) = rest.split_last()?;
            Some((first.to_string(), middle.join(" | "), last.to_string()))
        })
        .collect()
}

/// The section listing each claim whose verdict differs from `previous`'s (or that is new or
/// gone). When nothing differs, `previous`'s own list is kept, so that regenerating the report
/// from the same tables leaves it byte for byte the same.
fn changes_since(previous: Option<&str>, sections: &[Section]) -> String {
    let now: Vec<(String, String, String)> = sections
        .iter()
        .flat_map(|s| s.claims.iter().map(|c| (s.title.clone(), c.claim.clone(), c.verdict.text().to_string())))
        .collect();
    let Some(previous) = previous else {
        return format!("{CHANGES_HEADING}\n\nNone: no earlier REPORT.md to compare with.\n\n");
    };
    let before = summary_verdicts(previous);
    let find = |list: &[(String, String, String)], e: &str, c: &str| {
        list.iter().find(|(pe, pc, _)| pe == e && pc == c).map(|(_, _, v)| v.clone())
    };
    let mut rows: Vec<String> = now
        .iter()
        .filter_map(|(e, c, v)| match find(&before, e, c) {
            Some(old) if old == *v => None,
            Some(old) => Some(format!("| {e} | {c} | {old} | {v} |")),
            None => Some(format!("| {e} | {c} | (new claim) | {v} |")),
        })
        .collect();
    rows.extend(
        before
            .iter()
            .filter(|(e, c, _)| find(&now, e, c).is_none())
            .map(|(e, c, v)| format!("| {e} | {c} | {v} | (claim gone) |")),
    );
    if rows.is_empty() {
        if let Some(start) = previous.find(CHANGES_HEADING) {
            let rest = &previous[start + CHANGES_HEADING.len()..];
            let end = rest.find("\n## ").map(|i| i + 1).unwrap_or(rest.len());
            return format!("{CHANGES_HEADING}{}", &rest[..end]);
        }
        return format!("{CHANGES_HEADING}\n\nNone: every verdict is the one the previous REPORT.md gave.\n\n");
    }
    format!(
        "{CHANGES_HEADING}\n\nCompared with the REPORT.md these tables replaced (the committed one):\n\n\
         | experiment | claim | before | now |\n|---|---|---|---|\n{}\n\n",
        rows.join("\n")
    )
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
         trend over a sweep is the interval of the per-seed least-squares slopes. On LFW the replicates are View 2's \
         ten folds of disjoint people instead of seeds (methods paired over folds), as LFW's protocol has it. \
         Reproduced: the effect's interval \
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
    fn missing_runs_hold_back_every_verdict_but_those_whose_own_runs_are_recorded() {
        let claim = |v| Claim::new("c", "p", "o", v);
        let mut section = Section {
            title: "A".into(),
            claims: vec![
                claim(Verdict::Reproduced),
                claim(Verdict::Reproduced).own_runs_recorded(true),
                claim(Verdict::NotReproduced).own_runs_recorded(false),
            ],
            body: "numbers".into(),
        };
        wait_for_runs(&mut section, "**Incomplete:** 3 of 4");
        let verdicts: Vec<Verdict> = section.claims.iter().map(|c| c.verdict).collect();
        assert_eq!(verdicts, [Verdict::Incomplete, Verdict::Reproduced, Verdict::Incomplete]);
        assert_eq!(section.body, "**Incomplete:** 3 of 4\n\nnumbers");
    }

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

    fn report_of(sections: &[Section]) -> String {
        let mut out = String::from("# REPORT\n\n| experiment | claim | verdict |\n|---|---|---|\n");
        for s in sections {
            for c in &s.claims {
                out.push_str(&format!("| {} | {} | {} |\n", s.title, c.claim, c.verdict.text()));
            }
        }
        out.push('\n');
        out.push_str(&changes_since(None, sections));
        out
    }

    #[test]
    fn changed_verdicts_are_listed_and_kept_until_the_next_change() {
        let section = |verdicts: &[(&str, Verdict)]| Section {
            title: "A".into(),
            claims: verdicts.iter().map(|(c, v)| Claim::new(*c, "p", "o", *v)).collect(),
            body: String::new(),
        };
        let first = [section(&[("rises", Verdict::Inconclusive), ("falls", Verdict::Reproduced)])];
        let previous = report_of(&first);
        assert!(previous.contains("None: no earlier REPORT.md"), "{previous}");

        let second = [section(&[("rises", Verdict::Reproduced), ("peaks", Verdict::NotReproduced)])];
        let changes = changes_since(Some(&previous), &second);
        assert!(changes.contains("| A | rises | inconclusive | reproduced |"), "{changes}");
        assert!(changes.contains("| A | peaks | (new claim) | not reproduced |"), "{changes}");
        assert!(changes.contains("| A | falls | reproduced | (claim gone) |"), "{changes}");

        // The report written from `second`, regenerated from the same tables, keeps its list.
        let written = format!("{}{changes}## A\n\nbody\n", report_of(&second).split(CHANGES_HEADING).next().unwrap());
        assert_eq!(changes_since(Some(&written), &second), changes);
        assert_eq!(summary_verdicts(&written).len(), 2);
    }
}
