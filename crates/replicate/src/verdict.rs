//! The vocabulary every claim is stated in: verdicts, claim rows, report sections and the number
//! formats they print. It imports nothing from the crate, so both the experiments' claim rules
//! and the runner's report writer can build on it without a circle.

/// How a claim fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Reproduced,
    Partly,
    NotReproduced,
    /// Some runs the profile plans are not recorded yet. Set by the report writer, from the plan,
    /// never by an experiment: an experiment whose runs are all recorded but one did not finish
    /// (diverged) has an answer, and it is not "reproduced".
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

/// One row of a claim table: what the paper claims, its number, ours, and the verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub claim: String,
    pub paper: String,
    pub ours: String,
    pub verdict: Verdict,
}

impl Claim {
    pub fn new(claim: impl Into<String>, paper: impl Into<String>, ours: impl Into<String>, verdict: Verdict) -> Claim {
        Claim { claim: claim.into(), paper: paper.into(), ours: ours.into(), verdict }
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
        let mut out = format!("## {}\n\n| claim | paper | ours | verdict |\n|---|---|---|---|\n", self.title);
        for c in &self.claims {
            out.push_str(&format!("| {} | {} | {} | **{}** |\n", c.claim, c.paper, c.ours, c.verdict.text()));
        }
        out.push('\n');
        out.push_str(&self.body);
        out
    }
}

/// A fraction as a percentage with two decimals ("—" for NaN).
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
        assert_eq!(or_na(None, fmt_pct), "n/a");
        assert_eq!(or_na(Some(0.5), fmt_pct), "50.00%");
        let s =
            Section { title: "T".into(), claims: vec![Claim::new("c", "p", "o", Verdict::Partly)], body: "b\n".into() };
        assert_eq!(
            s.markdown(),
            "## T\n\n| claim | paper | ours | verdict |\n|---|---|---|---|\n| c | p | o | **partly** |\n\nb\n"
        );
    }
}
