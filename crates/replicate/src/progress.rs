//! Progress on long runs, in one place: a bar per training run and one for a whole plan on a
//! terminal (indicatif, sharing one `MultiProgress`), plain periodic lines on stderr otherwise
//! (or when `REPLICATE_PLAIN_PROGRESS` is set).

use std::io::IsTerminal;
use std::time::Instant;

/// Whether progress goes to a terminal as bars (else plain periodic lines).
pub fn bars_on_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("REPLICATE_PLAIN_PROGRESS").is_none()
}

/// The bars of one process, so a plan-wide bar and each run's bar share the terminal.
pub fn bars() -> &'static indicatif::MultiProgress {
    static BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();
    BARS.get_or_init(indicatif::MultiProgress::new)
}

/// Progress on a terminal (indicatif) or as plain periodic lines.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: String,
    total: u64,
    last_line: Instant,
    start: Instant,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let bar = if bars_on_terminal() {
            let bar = bars().add(indicatif::ProgressBar::new(total));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(label.to_string());
            Some(bar)
        } else {
            None
        };
        Progress { bar, label: label.to_string(), total, last_line: Instant::now(), start: Instant::now() }
    }

    pub fn update(&mut self, done: u64, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message.to_string());
        } else if self.last_line.elapsed().as_secs_f64() >= 30.0 || done == self.total {
            let elapsed = self.start.elapsed().as_secs_f64();
            let eta = if done > 0 { elapsed / done as f64 * (self.total - done) as f64 } else { f64::NAN };
            eprintln!(
                "{} {done}/{} {message} (elapsed {}, ETA {})",
                self.label,
                self.total,
                fmt_secs(elapsed),
                fmt_secs(eta)
            );
            self.last_line = Instant::now();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            bars().remove(bar);
        }
    }
}

pub fn fmt_secs(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub struct PlanProgress {
    bar: Option<indicatif::ProgressBar>,
    total: usize,
    done: usize,
    started: Instant,
    estimate_left: f64,
}
impl PlanProgress {
    pub fn new(total: usize, estimate: f64) -> Self {
        let bar = bars_on_terminal().then(|| {
            let bar = bars().add(indicatif::ProgressBar::new(total as u64));
            bar.set_style(
                indicatif::ProgressStyle::with_template("plan [{bar:30}] {pos}/{len} runs, {msg}")
                    .expect("valid template")
                    .progress_chars("#>-"),
            );
            bar
        });
        PlanProgress { bar, total, done: 0, started: Instant::now(), estimate_left: estimate }
    }

    fn message(&self) -> String {
        format!(
            "elapsed {}, about {} left",
            fmt_secs(self.started.elapsed().as_secs_f64()),
            fmt_secs(self.estimate_left)
        )
    }

    /// Adds runs that could be planned only once the plan was under way (an experiment that
    /// waited for a selection), with their estimated seconds.
    pub fn add(&mut self, runs: usize, estimate: f64) {
        self.total += runs;
        self.estimate_left += estimate;
        if let Some(bar) = &self.bar {
            bar.set_length(self.total as u64);
            bar.set_message(self.message());
        }
    }

    pub fn run_done(&mut self, estimate: f64) {
        self.done += 1;
        self.estimate_left = (self.estimate_left - estimate).max(0.0);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done as u64);
                bar.set_message(self.message());
            }
            None => eprintln!("plan: {}/{} runs done, {}", self.done, self.total, self.message()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
