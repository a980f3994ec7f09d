//! Statistics over seeds, as every claim states them: sample standard deviations (n − 1),
//! 95 % Student-t intervals, paired differences (same seed = same initialisation and batch order
//! in both settings), Welch intervals where seeds cannot be paired, per-seed trend slopes, and the
//! minimum detectable effect of a design. Plain functions over `f64` slices; the t distribution
//! comes from the regularised incomplete beta function, so no table limits the degrees of freedom.

/// The confidence level of every interval the project prints.
pub const LEVEL: f64 = 0.95;

/// The power the minimum detectable effect is computed for.
pub const POWER: f64 = 0.8;

/// Mean of `xs` (NaN when empty).
pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (divides by n − 1; NaN below two values).
pub fn sample_std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 − x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..].iter().enumerate().fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom (df > 0, not necessarily whole).
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (0 < p < 1), by bisection on
/// [`t_cdf`] to 1e-12.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0 && df > 0.0, "t_quantile: p = {p}, df = {df}");
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    let mut hi = 1.0;
    while t_cdf(hi, df) < p {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    while hi - lo > 1e-12 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A two-sided [`LEVEL`] interval around an estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Values the interval comes from (seeds, or pairs of seeds; for Welch the smaller sample).
    pub n: usize,
    /// The estimate's standard error.
    pub se: f64,
    pub df: f64,
}

impl Interval {
    /// Whether the interval lies wholly above `x`.
    pub fn above(&self, x: f64) -> bool {
        self.low > x
    }

    /// Whether the interval lies wholly below `x`.
    pub fn below(&self, x: f64) -> bool {
        self.high < x
    }

    /// Whether `x` lies inside the interval.
    pub fn covers(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }

    /// The interval of the estimate minus `x` (a threshold claim as an effect against zero).
    pub fn minus(&self, x: f64) -> Interval {
        Interval { estimate: self.estimate - x, low: self.low - x, high: self.high - x, ..*self }
    }

    /// The smallest true effect this design detects with probability [`POWER`] at [`LEVEL`]:
    /// (t_{1−α/2} + t_{power}) · standard error, on the interval's degrees of freedom.
    pub fn min_detectable_effect(&self) -> f64 {
        (t_quantile(0.5 + LEVEL / 2.0, self.df) + t_quantile(POWER, self.df)) * self.se
    }
}

/// The Student-t interval of the mean of `xs` (None below two values or with a NaN).
pub fn t_interval(xs: &[f64]) -> Option<Interval> {
    if xs.len() < 2 || xs.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let (n, m, s) = (xs.len(), mean(xs), sample_std(xs));
    let df = (n - 1) as f64;
    let half = t_quantile(0.5 + LEVEL / 2.0, df) * s / (n as f64).sqrt();
    Some(Interval { estimate: m, low: m - half, high: m + half, n, se: s / (n as f64).sqrt(), df })
}

/// b − a for every seed both have, in seed order.
pub fn paired_differences(a: &[(u64, f64)], b: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut out: Vec<(u64, f64)> =
        a.iter().filter_map(|&(seed, x)| b.iter().find(|(s, _)| *s == seed).map(|&(_, y)| (seed, y - x))).collect();
    out.sort_by_key(|(seed, _)| *seed);
    out
}

/// The interval of the mean paired difference b − a over the seeds both settings have.
pub fn paired_interval(a: &[(u64, f64)], b: &[(u64, f64)]) -> Option<Interval> {
    t_interval(&paired_differences(a, b).iter().map(|(_, d)| *d).collect::<Vec<_>>())
}

/// Welch's interval of mean(b) − mean(a) for samples that cannot be paired (Welch–Satterthwaite
/// degrees of freedom).
pub fn welch_interval(a: &[f64], b: &[f64]) -> Option<Interval> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (va, vb) = (sample_std(a).powi(2) / a.len() as f64, sample_std(b).powi(2) / b.len() as f64);
    let se = (va + vb).sqrt();
    let diff = mean(b) - mean(a);
    let df = if se == 0.0 {
        (a.len() + b.len() - 2) as f64
    } else {
        (va + vb).powi(2) / (va.powi(2) / (a.len() - 1) as f64 + vb.powi(2) / (b.len() - 1) as f64)
    };
    let half = t_quantile(0.5 + LEVEL / 2.0, df) * se;
    Some(Interval { estimate: diff, low: diff - half, high: diff + half, n: a.len().min(b.len()), se, df })
}

/// The least-squares slope of `ys` on `xs` (None for fewer than two points or no spread in x).
pub fn slope(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let (mx, my) = (mean(xs), mean(ys));
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    (sxx > 0.0).then(|| xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum::<f64>() / sxx)
}

/// The 95 % upper bound (Clopper–Pearson, two-sided) on a rate of which none of `n` trials
/// showed an event: 1 − 0.025^(1/n).
pub fn no_events_upper_bound(n: usize) -> f64 {
    1.0 - 0.025f64.powf(1.0 / n.max(1) as f64)
}

/// The smallest true mean effect that a two-sided [`LEVEL`] t test over `n` values with spread
/// `spread` detects with probability [`POWER`]: (t_{1−α/2} + t_{power}) · spread / √n.
pub fn min_detectable_effect(spread: f64, n: usize) -> f64 {
    if n < 2 {
        return f64::INFINITY;
    }
    let df = (n - 1) as f64;
    (t_quantile(0.5 + LEVEL / 2.0, df) + t_quantile(POWER, df)) * spread / (n as f64).sqrt()
}

/// How many seeds a paired design with this spread of differences needs to detect `effect`
/// (at [`LEVEL`] and [`POWER`]), up to `cap`; None when even `cap` seeds do not suffice.
pub fn seeds_needed(spread: f64, effect: f64, cap: usize) -> Option<usize> {
    (2..=cap).find(|&n| min_detectable_effect(spread, n) <= effect.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn t_quantiles_match_the_printed_tables() {
        // Two-sided 95 % critical values (any statistics table), and the normal limit.
        for (df, want) in [(1.0, 12.706_205), (2.0, 4.302_653), (3.0, 3.182_446), (4.0, 2.776_445), (9.0, 2.262_157)] {
            assert!(close(t_quantile(0.975, df), want, 1e-6), "df {df}: {}", t_quantile(0.975, df));
        }
        assert!(close(t_quantile(0.975, 1e7), 1.959_964, 1e-5));
        assert!(close(t_quantile(0.8, 2.0), 1.060_660, 1e-6));
        assert!(close(t_quantile(0.025, 2.0), -4.302_653, 1e-6));
        assert!(close(t_cdf(0.0, 5.0), 0.5, 1e-12));
    }

    #[test]
    fn sample_std_divides_by_n_minus_one() {
        assert!(close(sample_std(&[1.0, 2.0, 3.0]), 1.0, 1e-12));
        assert!(sample_std(&[1.0]).is_nan());
    }

    #[test]
    fn intervals_over_three_seeds_are_plus_minus_2_48_standard_errors() {
        let i = t_interval(&[1.0, 2.0, 3.0]).unwrap();
        // 4.303 · 1 / √3 = 2.484
        assert!(close(i.high - i.estimate, 2.484_138, 1e-5), "{i:?}");
        assert_eq!((i.n, i.df), (3, 2.0));
        assert!(close(i.min_detectable_effect(), min_detectable_effect(1.0, 3), 1e-12));
        assert!(i.covers(0.0) && !i.above(0.0));
        assert!(t_interval(&[1.0]).is_none());
        assert!(t_interval(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn pairing_matches_seeds_and_removes_what_they_share() {
        // The seeds differ a lot, the settings by 0.1 each time: paired, the effect is certain.
        let a = [(1, 0.50), (2, 0.70), (3, 0.90)];
        let b = [(3, 1.00), (1, 0.60), (2, 0.80), (4, 5.0)];
        let d = paired_differences(&a, &b);
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3]);
        let paired = paired_interval(&a, &b).unwrap();
        assert!(close(paired.estimate, 0.1, 1e-12) && paired.high - paired.low < 1e-9);
        let welch = welch_interval(&[0.5, 0.7, 0.9], &[0.6, 0.8, 1.0]).unwrap();
        assert!(welch.covers(0.0), "unpaired, the seed spread hides it: {welch:?}");
    }

    #[test]
    fn welch_degrees_of_freedom_follow_satterthwaite() {
        let w = welch_interval(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0]).unwrap();
        // va = 1.6667/4, vb = 6.6667/4 → df = (2.0833)² / (0.1736/3 + 2.7778/3) = 4.41
        assert!(close(w.df, 4.411_765, 1e-5), "{}", w.df);
        assert!(close(w.estimate, 2.5, 1e-12));
    }

    #[test]
    fn slopes_and_detectable_effects() {
        assert!(close(slope(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 6.0, 8.0]).unwrap(), 2.0, 1e-12));
        assert!(slope(&[1.0, 1.0], &[2.0, 3.0]).is_none());
        // 3 seeds: (4.303 + 1.061) / √3 = 3.097 spreads.
        assert!(close(min_detectable_effect(1.0, 3), 3.096_510, 1e-6));
        // DeepID2's +1.8 points against a spread of 2.5 needs about ten seeds (the estimate).
        let n = seeds_needed(2.5, 1.8, 100).unwrap();
        assert!((9..=20).contains(&n), "{n}");
        assert_eq!(seeds_needed(1.0, 1e-6, 50), None);
    }
}
