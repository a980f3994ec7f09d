//! Display helpers for the evcxr Jupyter kernel: a DataFrame as an HTML table, a figure inline.
//!
//! evcxr renders any value whose `evcxr_display` prints `EVCXR_BEGIN_CONTENT <mime>` … `EVCXR_END_CONTENT`.

use std::path::{Path, PathBuf};

use base64::Engine;
use polars::prelude::*;

/// A DataFrame shown as an HTML table (at most `max_rows` rows).
#[derive(Debug, Clone)]
pub struct HtmlTable {
    pub html: String,
}

impl HtmlTable {
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.html);
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cell_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::Float64(x) => format_number(*x),
        AnyValue::Float32(x) => format_number(*x as f64),
        AnyValue::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

fn format_number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == x.trunc() && x.abs() < 1e9 {
        format!("{x:.0}")
    } else if x.abs() >= 1e-3 && x.abs() < 1e6 {
        format!("{x:.4}")
    } else {
        format!("{x:.3e}")
    }
}

/// `df` as an HTML table; long frames are cut to `max_rows` rows with a note.
pub fn table(df: &DataFrame, max_rows: usize) -> HtmlTable {
    let mut html = String::from("<table><thead><tr>");
    for name in df.get_column_names() {
        html.push_str(&format!("<th>{}</th>", escape(name)));
    }
    html.push_str("</tr></thead><tbody>");
    for i in 0..df.height().min(max_rows) {
        html.push_str("<tr>");
        for col in df.columns() {
            let v = col.get(i).map(|v| cell_text(&v)).unwrap_or_default();
            html.push_str(&format!("<td>{}</td>", escape(&v)));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    if df.height() > max_rows {
        html.push_str(&format!("<p>{} of {} rows shown</p>", max_rows, df.height()));
    }
    HtmlTable { html }
}

/// A PNG file shown inline.
#[derive(Debug, Clone)]
pub struct Image {
    pub path: PathBuf,
}

impl Image {
    pub fn evcxr_display(&self) {
        match std::fs::read(&self.path) {
            Ok(bytes) => println!(
                "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
            Err(e) => println!("cannot show {}: {e}", self.path.display()),
        }
    }
}

pub fn image(path: impl AsRef<Path>) -> Image {
    Image { path: path.as_ref().to_path_buf() }
}

/// The face pairs a recorded LFW run got most wrong, shown only where the environment sets
/// `REPLICATE_SHOW_FACES=1`: LFW's images may not be redistributed, so a notebook whose outputs
/// are committed shows a note in their place. The run is the finished run of `split` with the
/// best test accuracy; its worst `per_kind` false accepts and false rejects at its threshold are
/// drawn into `target/faces/` (ignored by git).
pub fn worst_face_pairs(experiment: &str, split: &str, per_kind: usize) -> anyhow::Result<FacesOrNote> {
    if std::env::var("REPLICATE_SHOW_FACES").as_deref() != Ok("1") {
        return Ok(FacesOrNote::Note(Html(
            "<p>Face pairs are shown only when the notebook runs with REPLICATE_SHOW_FACES=1: LFW's images may not be \
             redistributed, and this notebook's outputs are committed.</p>"
                .into(),
        )));
    }
    let store = crate::results::Store::new(&crate::util::default_results_dir()?, experiment);
    let runs = store.current_runs()?;
    let mut best: Option<(f64, String, f64)> = None;
    for r in runs.records() {
        if r.finished()? && r.text("split")? == split {
            let (accuracy, threshold) = (r.num("test_accuracy")?, r.num("threshold")?);
            if best.as_ref().is_none_or(|b| accuracy > b.0) {
                best = Some((accuracy, r.run_id()?.to_string(), threshold));
            }
        }
    }
    let (accuracy, run_id, threshold) =
        best.ok_or_else(|| anyhow::anyhow!("{experiment} has no finished run of split {split}"))?;
    let (accepts, rejects) =
        crate::experiments::faces::worst_pairs(&store.load("pairs")?, &run_id, threshold, per_kind)?;
    let lfw = crate::data::Lfw::load(&crate::util::default_lfw_dir()?)?;
    let face = |i: usize| lfw.images[i * crate::data::lfw::PIXELS..(i + 1) * crate::data::lfw::PIXELS].to_vec();
    let pairs = accepts
        .iter()
        .map(|p| (p, "false accept"))
        .chain(rejects.iter().map(|p| (p, "false reject")))
        .map(|(&(a, b, _, d), kind)| (face(a), face(b), format!("{kind}, d = {d:.3}")))
        .collect();
    let grid = crate::plot::FacePairGrid {
        pairs,
        side: crate::data::lfw::SIDE,
        cols: 4,
        title: format!(
            "{run_id} ({:.1} %): worst false accepts, then false rejects, at threshold {threshold:.3}",
            100.0 * accuracy
        ),
    };
    let base = crate::util::project_root()?.join("target/faces").join(format!("{experiment}-{split}-worst-pairs"));
    Ok(FacesOrNote::Faces(image(crate::plot::save_png(&base, &grid)?)))
}

/// Face images where they may be shown, a note where they may not.
pub enum FacesOrNote {
    Faces(Image),
    Note(Html),
}

impl FacesOrNote {
    pub fn evcxr_display(&self) {
        match self {
            FacesOrNote::Faces(image) => image.evcxr_display(),
            FacesOrNote::Note(note) => note.evcxr_display(),
        }
    }
}

/// Markdown-ish text shown as HTML (for verdict cells).
#[derive(Debug, Clone)]
pub struct Html(pub String);

impl Html {
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.0);
    }
}

/// The finished results of `experiment` under the project's `results/` (or
/// `REPLICATE_RESULTS_DIR`); when it has none yet, runs it first on the profile named by
/// `REPLICATE_PROFILE` (default quick; CI uses smoke), with progress on stderr.
pub fn load_or_run(experiment: &str) -> anyhow::Result<crate::Results> {
    let results_dir = crate::util::default_results_dir()?;
    let results = crate::Results::open(&results_dir, experiment);
    if results.exists() {
        return Ok(results);
    }
    let profile = crate::Profile::parse(&std::env::var("REPLICATE_PROFILE").unwrap_or_else(|_| "quick".into()))?;
    eprintln!("{} has no results yet: running it on the {} profile", experiment, profile.name());
    let exp = crate::experiments::find(experiment)?;
    let opts = crate::RunOptions::new(
        crate::runner::PlanOptions::new(profile, &results_dir),
        &crate::util::default_data_dir()?,
    );
    crate::runner::run_experiment(exp, &opts, None)?;
    Ok(results)
}

/// Images per digit in each split of MNIST.
pub fn digit_counts(mnist: &crate::data::Mnist) -> PolarsResult<DataFrame> {
    let counts =
        |labels: &[u8]| (0..10u8).map(|d| labels.iter().filter(|&&l| l == d).count() as u64).collect::<Vec<_>>();
    DataFrame::new(
        10,
        vec![
            Column::new("digit".into(), (0..10u64).collect::<Vec<_>>()),
            Column::new("train images".into(), counts(&mnist.train.labels)),
            Column::new("test images".into(), counts(&mnist.test.labels)),
        ],
    )
}

/// The claim table of `experiment` from its recorded results, as REPORT.md words it (the verdict
/// cell of a paper notebook).
pub fn claims(experiment: &str) -> anyhow::Result<Html> {
    let results_dir = crate::util::default_results_dir()?;
    let store = crate::results::Store::new(&results_dir, experiment);
    let section = crate::runner::report::judged_section(crate::experiments::find(experiment)?, &store, &results_dir)?
        .ok_or_else(|| anyhow::anyhow!("{experiment} has no finished runs to judge its claims by"))?;
    Ok(Html(markdown_claims(&section)))
}

/// Markdown shown as Jupyter renders it.
#[derive(Debug, Clone)]
pub struct Markdown(pub String);

impl Markdown {
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/markdown\n{}\nEVCXR_END_CONTENT", self.0);
    }
}

/// `experiment`'s section of REPORT.md, from its recorded results, without the figures it links
/// (their paths are relative to results/; a notebook shows them with [`image`]).
pub fn report_section(experiment: &str) -> anyhow::Result<Markdown> {
    let results_dir = crate::util::default_results_dir()?;
    let store = crate::results::Store::new(&results_dir, experiment);
    let section = crate::runner::report::judged_section(crate::experiments::find(experiment)?, &store, &results_dir)?
        .ok_or_else(|| anyhow::anyhow!("{experiment} has no recorded runs to report"))?;
    let markdown = section.markdown();
    let text: Vec<&str> = markdown.lines().filter(|l| !l.starts_with("![")).collect();
    Ok(Markdown(text.join("\n")))
}

/// A report section's claim table as HTML.
pub fn markdown_claims(section: &crate::verdict::Section) -> String {
    let mut html = format!(
        "<h3>{}</h3><table><thead><tr><th>claim</th><th>paper</th><th>ours</th><th>verdict</th></tr></thead><tbody>",
        escape(&section.title)
    );
    for c in &section.claims {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><b>{}</b></td></tr>",
            escape(&c.claim),
            escape(&c.paper),
            escape(&c.ours),
            c.verdict.text()
        ));
    }
    html.push_str("</tbody></table>");
    html
}

/// `df` sorted by `column` (ascending).
pub fn sorted(df: &DataFrame, column: &str) -> PolarsResult<DataFrame> {
    df.sort([column], SortMultipleOptions::default())
}

/// Selected columns of a DataFrame that exist in it (missing ones are skipped).
pub fn select(df: &DataFrame, columns: &[&str]) -> PolarsResult<DataFrame> {
    let present: Vec<&str> = columns.iter().copied().filter(|c| df.column(c).is_ok()).collect();
    df.select(present)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_table_escapes_and_truncates() {
        let df = DataFrame::new(
            3,
            vec![Column::new("a<b".into(), vec![1.5f64, 2.0, 3.25]), Column::new("s".into(), vec!["x", "y&", "z"])],
        )
        .unwrap();
        let t = table(&df, 2);
        assert!(t.html.contains("<th>a&lt;b</th>"));
        assert!(t.html.contains("<td>1.5000</td>") && t.html.contains("<td>y&amp;</td>"));
        assert!(t.html.contains("2 of 3 rows shown"));
        let s = sorted(&df, "a<b").unwrap();
        assert_eq!(s.column("a<b").unwrap().get(0).unwrap(), AnyValue::Float64(1.5));
    }
}
