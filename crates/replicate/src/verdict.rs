//! The vocabulary every claim is stated in: verdicts, claim rows, report sections and the number
//! formats they print, and the statistical decisions a verdict rests on. It imports only
//! `stats`, so both the experiments' claim rules and the runner's report writer can build on it
//! without a circle.

use crate::stats::Interval;

/// The fewest seeds a verdict other than inconclusive rests on.
pub const MIN_SEEDS: usize = 3;

/// The way the paper says an effect goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// How a claim fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reproduced,
    NotReproduced,
    /// The data cannot tell: the effect's interval covers both zero and the paper's effect, or
    /// fewer than [`MIN_SEEDS`] seeds back it.
    Inconclusive,
    /// Some runs the profile plans are not recorded yet. Set by the report writer, from the plan,
    /// never by an experiment: an experiment whose runs are all recorded but one did not finish
    /// (diverged) has an answer, and it is not "reproduced".
    Incomplete,
}

impl Verdict {
    pub fn text(&self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Incomplete => "incomplete: runs missing",
        }
    }

    /// A directional claim tested on the interval of its effect (over at least [`MIN_SEEDS`]
    /// seeds): reproduced when the interval excludes zero in the paper's direction; not
    /// reproduced when it rules out every effect of at least `smallest` in that direction
    /// (`smallest` = 0: the interval shows the opposite or no effect); inconclusive otherwise.
    pub fn of_effect(interval: Option<&Interval>, direction: Direction, smallest: f64) -> Verdict {
        let Some(i) = interval.filter(|i| i.n >= MIN_SEEDS) else {
            return Verdict::Inconclusive;
        };
        let signed = match direction {
            Direction::Up => *i,
            Direction::Down => Interval { estimate: -i.estimate, low: -i.high, high: -i.low, ..*i },
        };
        if signed.above(0.0) {
            Verdict::Reproduced
        } else if signed.high < smallest.abs() || (smallest == 0.0 && signed.high <= 0.0) {
            Verdict::NotReproduced
        } else {
            Verdict::Inconclusive
        }
    }

    /// A "does not suffer" claim (non-inferiority): reproduced when the interval of the change
    /// lies above −`margin`, not reproduced when it lies wholly below it, inconclusive otherwise.
    pub fn of_non_inferiority(interval: Option<&Interval>, margin: f64) -> Verdict {
        let Some(i) = interval.filter(|i| i.n >= MIN_SEEDS) else {
            return Verdict::Inconclusive;
        };
        if i.low > -margin.abs() {
            Verdict::Reproduced
        } else if i.high < -margin.abs() {
            Verdict::NotReproduced
        } else {
            Verdict::Inconclusive
        }
    }

    /// A claim made of several tests: not reproduced when any is, reproduced when all are,
    /// inconclusive otherwise.
    pub fn all(parts: &[Verdict]) -> Verdict {
        if parts.contains(&Verdict::NotReproduced) {
            Verdict::NotReproduced
        } else if !parts.is_empty() && parts.iter().all(|v| *v == Verdict::Reproduced) {
            Verdict::Reproduced
        } else {
            Verdict::Inconclusive
        }
    }

    /// An equivalence claim ("no effect"): reproduced when the interval lies within ±`margin`,
    /// not reproduced when it lies wholly outside it, inconclusive otherwise.
    pub fn of_equivalence(interval: Option<&Interval>, margin: f64) -> Verdict {
        let Some(i) = interval.filter(|i| i.n >= MIN_SEEDS) else {
            return Verdict::Inconclusive;
        };
        let m = margin.abs();
        if i.low > -m && i.high < m {
            Verdict::Reproduced
        } else if i.low >= m || i.high <= -m {
            Verdict::NotReproduced
        } else {
            Verdict::Inconclusive
        }
    }
}

/// One row of a claim table: what the paper claims, its number, ours, and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub claim: String,
    pub paper: String,
    pub ours: String,
    pub verdict: Verdict,
    /// Whether every run this claim reads is recorded, where the claim can tell (LFW's claims
    /// paired over all ten folds): its verdict then stands while other runs of its experiment are
    /// missing. None: the experiment's whole plan decides.
    pub own_runs_recorded: Option<bool>,
}

impl Claim {
    pub fn new(claim: impl Into<String>, paper: impl Into<String>, ours: impl Into<String>, verdict: Verdict) -> Claim {
        Claim { claim: claim.into(), paper: paper.into(), ours: ours.into(), verdict, own_runs_recorded: None }
    }

    /// The claim, knowing whether every run it reads is recorded.
    pub fn own_runs_recorded(self, recorded: bool) -> Claim {
        Claim { own_runs_recorded: Some(recorded), ..self }
    }
}

/// One experiment's part of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    pub claims: Vec<Claim>,
    /// Markdown after the claim table: numbers, figures, deviations.
    pub body: String,
}

impl Section {
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        // A section of measurements without claims (the budget study) has no claim table.
        if !self.claims.is_empty() {
            out.push_str("| claim | paper | ours | verdict |\n|---|---|---|---|\n");
        }
        for c in &self.claims {
            out.push_str(&format!("| {} | {} | {} | **{}** |\n", c.claim, c.paper, c.ours, c.verdict.text()));
        }
        if !self.claims.is_empty() {
            out.push('\n');
        }
        out.push_str(&self.body);
        out
    }
}

/// How an effect's numbers print: a fraction as percentage points, or a plain number.
#[derive(Debug, Clone, Copy)]
pub enum Scale {
    /// Fractions shown as points of a percentage ("+0.74 pt").
    Points,
    /// Plain numbers with this many decimals and a unit ("°", "").
    Plain(usize, &'static str),
}

impl Scale {
    /// The number without its unit.
    fn number(self, x: f64, signed: bool) -> String {
        let (v, d) = match self {
            Scale::Points => (100.0 * x, 2),
            Scale::Plain(d, _) => (x, d),
        };
        if signed {
            format!("{v:+.d$}")
        } else {
            format!("{v:.d$}")
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Scale::Points => " pt",
            Scale::Plain(_, unit) => unit,
        }
    }
}

/// An effect as a claim row prints it, with the test named: "m = 1 → 4: +0.74 pt [0.51, 0.97],
/// paired over 3 seeds (MDE 0.40 pt)". `test` says what the interval is of ("paired", "slope per
/// step of m, per seed", "Welch"); the minimum detectable effect is at 80 % power.
pub fn effect_text(what: &str, interval: Option<&Interval>, seeds: usize, scale: Scale, test: &str) -> String {
    effect_text_over(what, interval, seeds, scale, test, "seed")
}

/// As [`effect_text`], over replicates of another kind (`replicate` in the singular: "fold" for
/// LFW's View 2 folds).
pub fn effect_text_over(
    what: &str,
    interval: Option<&Interval>,
    count: usize,
    scale: Scale,
    test: &str,
    replicate: &str,
) -> String {
    match interval {
        Some(i) => {
            let short = if i.n < MIN_SEEDS { format!("; {MIN_SEEDS} {replicate}s needed") } else { String::new() };
            format!(
                "{what}: {}{unit} [{}, {}], {test} over {} {replicate}s (MDE {}{unit}){short}",
                scale.number(i.estimate, true),
                scale.number(i.low, true),
                scale.number(i.high, true),
                i.n,
                scale.number(i.min_detectable_effect(), false),
                unit = scale.unit(),
            )
        }
        None => format!(
            "{what}: {count} {replicate}{} (an interval needs 2, a verdict {MIN_SEEDS})",
            if count == 1 { "" } else { "s" }
        ),
    }
}

/// A fraction as a percentage with two decimals ("—" for NaN).
/// A claim that something can happen at all (hardest-negative mining collapsing the embedding):
/// reproduced once it happened in any of at least [`MIN_SEEDS`] seeds; never seen, it stays
/// inconclusive (a rare event is not ruled out). The words: "k of n {what}", with the rate's
/// 95 % upper bound when none happened.
pub fn of_occurrence(events: usize, n: usize, what: &str) -> (Verdict, String) {
    let verdict = if n >= MIN_SEEDS && events > 0 { Verdict::Reproduced } else { Verdict::Inconclusive };
    let bound = if events == 0 && n > 0 {
        format!(" (rate ≤ {:.0} % at 95 %, Clopper–Pearson)", 100.0 * crate::stats::no_events_upper_bound(n))
    } else {
        String::new()
    };
    (verdict, format!("{events} of {n} {what}{bound}"))
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

/// An optional number formatted, or "n/a".
pub fn or_na(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map(format).unwrap_or_else(|| "n/a".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(low: f64, high: f64, n: usize) -> Interval {
        Interval { estimate: 0.5 * (low + high), low, high, n, se: (high - low) / 8.6, df: (n - 1) as f64 }
    }

    #[test]
    fn an_effect_is_reproduced_only_when_its_interval_excludes_zero_in_the_papers_direction() {
        let up = |l, h, n| Verdict::of_effect(Some(&interval(l, h, n)), Direction::Up, 0.0);
        assert_eq!(up(0.1, 0.9, 3), Verdict::Reproduced);
        assert_eq!(up(-0.1, 0.9, 3), Verdict::Inconclusive, "covers zero and the paper's direction");
        assert_eq!(up(-0.9, -0.1, 3), Verdict::NotReproduced, "the opposite");
        assert_eq!(up(0.1, 0.9, 2), Verdict::Inconclusive, "two seeds decide nothing");
        assert_eq!(Verdict::of_effect(None, Direction::Up, 0.0), Verdict::Inconclusive);
        let down = Verdict::of_effect(Some(&interval(-0.9, -0.1, 4)), Direction::Down, 0.0);
        assert_eq!(down, Verdict::Reproduced);
        // With the paper's effect as the smallest of interest: an interval that covers zero but
        // rules out +1.8 points says the paper's effect is not there.
        let small = interval(-0.005, 0.01, 10);
        assert_eq!(Verdict::of_effect(Some(&small), Direction::Up, 0.018), Verdict::NotReproduced);
        assert_eq!(Verdict::of_effect(Some(&small), Direction::Up, 0.0), Verdict::Inconclusive);
    }

    #[test]
    fn equivalence_needs_the_whole_interval_inside_the_margin() {
        let eq = |l, h| Verdict::of_equivalence(Some(&interval(l, h, 3)), 0.02);
        assert_eq!(eq(-0.01, 0.015), Verdict::Reproduced);
        assert_eq!(eq(-0.01, 0.05), Verdict::Inconclusive);
        assert_eq!(eq(0.03, 0.08), Verdict::NotReproduced);
        assert_eq!(Verdict::of_equivalence(Some(&interval(-0.01, 0.01, 1)), 0.02), Verdict::Inconclusive);
    }

    #[test]
    fn non_inferiority_asks_only_that_the_loss_is_smaller_than_the_margin() {
        let ni = |l, h| Verdict::of_non_inferiority(Some(&interval(l, h, 3)), 0.005);
        assert_eq!(ni(-0.004, 0.01), Verdict::Reproduced);
        assert_eq!(ni(-0.01, 0.01), Verdict::Inconclusive);
        assert_eq!(ni(-0.03, -0.01), Verdict::NotReproduced);
    }

    #[test]
    fn effects_print_their_interval_test_and_seeds() {
        let i = crate::stats::paired_interval(&[(1, 0.97), (2, 0.98), (3, 0.975)], &[(1, 0.98), (2, 0.99), (3, 0.986)]);
        let text = effect_text("m = 1 → 4", i.as_ref(), 3, Scale::Points, "paired");
        assert!(text.starts_with("m = 1 → 4: +1.03 pt [+0.89, +1.18], paired over 3 seeds (MDE "), "{text}");
        assert_eq!(
            effect_text("λ = 0 → 0.01", None, 1, Scale::Points, "paired"),
            "λ = 0 → 0.01: 1 seed (an interval needs 2, a verdict 3)"
        );
        assert_eq!(Verdict::Inconclusive.text(), "inconclusive");
    }

    #[test]
    fn labels_and_sections() {
        assert_eq!(lambda_label(0.0), "0");
        assert_eq!(lambda_label(1e-4), "1e-4");
        assert_eq!(lambda_label(0.05), "0.05");
        assert_eq!(lambda_label(f64::INFINITY), "∞");
        assert_eq!(or_na(None, fmt_pct), "n/a");
        assert_eq!(or_na(Some(0.5), fmt_pct), "50.00%");
        let s = Section {
            title: "T".into(),
            claims: vec![Claim::new("c", "p", "o", Verdict::Inconclusive)],
            body: "b\n".into(),
        };
        assert_eq!(
            s.markdown(),
            "## T\n\n| claim | paper | ours | verdict |\n|---|---|---|---|\n| c | p | o | **inconclusive** |\n\nb\n"
        );
    }
}
