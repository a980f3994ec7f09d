//! Figures with plotters, each written as PNG and SVG from the same drawing code.
//!
//! plotters' bitmap backend panics without a font on a bare machine, so DejaVu Sans is bundled
//! and registered through `ab_glyph` before the first figure.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn ensure_font() {
    FONT.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES)
            .unwrap_or_else(|_| panic!("the bundled DejaVuSans.ttf is not a valid font"));
    });
}

/// matplotlib's tab10, one colour per digit.
pub const DIGIT_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub fn colour(i: usize) -> RGBColor {
    DIGIT_COLOURS[i % DIGIT_COLOURS.len()]
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Writes `<base>.png` and `<base>.svg` (each through a temporary file and a rename).
pub fn save<F: Figure>(base: &Path, figure: &F) -> Result<Vec<PathBuf>> {
    let png = save_png(base, figure)?;
    let svg = base.with_extension("svg");
    let tmp_svg = crate::util::temporary(base, ".svg");
    let written = (|| -> Result<()> {
        let (w, h) = figure.size();
        {
            let root = SVGBackend::new(&tmp_svg, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
            figure.draw(&root)?;
            root.present().map_err(|e| anyhow!("cannot write {}: {e:?}", svg.display()))?;
        }
        std::fs::rename(&tmp_svg, &svg)?;
        crate::util::wrote(&svg);
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp_svg);
    }
    written.map(|()| vec![png, svg])
}

/// Writes `<base>.png` alone (through a temporary file and a rename): for pictures, where an
/// SVG of every pixel would be megabytes.
pub fn save_png<F: Figure>(base: &Path, figure: &F) -> Result<PathBuf> {
    ensure_font();
    if let Some(dir) = base.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (w, h) = figure.size();
    let png = base.with_extension("png");
    let tmp_png = crate::util::temporary(base, ".png");
    let written = (|| -> Result<()> {
        {
            let root = BitMapBackend::new(&tmp_png, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| anyhow!("{e:?}"))?;
            figure.draw(&root)?;
            root.present().map_err(|e| anyhow!("cannot write {}: {e:?}", png.display()))?;
        }
        std::fs::rename(&tmp_png, &png)?;
        crate::util::wrote(&png);
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp_png);
    }
    written.map(|()| png)
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

/// One panel of 2-D features coloured by class, optionally with the class centers on top.
#[derive(Debug, Clone, Default)]
pub struct ScatterPanel {
    pub title: String,
    /// (x, y, class)
    pub points: Vec<(f32, f32, u8)>,
    /// Drawn as white dots with a black edge, as in the center-loss paper's Fig. 3.
    pub centers: Vec<(f32, f32)>,
}

/// Panels side by side (`cols` per row) with one legend of the ten digits.
pub struct ScatterFigure {
    pub title: String,
    pub panels: Vec<ScatterPanel>,
    pub cols: usize,
    pub class_names: Vec<String>,
}

const PANEL: u32 = 420;

impl ScatterFigure {
    /// Room for the longest class name beside its dot.
    fn legend_width(&self) -> u32 {
        40 + 9 * self.class_names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as u32
    }
}

impl Figure for ScatterFigure {
    fn size(&self) -> (u32, u32) {
        let rows = self.panels.len().div_ceil(self.cols.max(1)) as u32;
        (PANEL * self.cols as u32 + self.legend_width(), PANEL * rows + 40)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let root = root.titled(&self.title, ("sans-serif", 22)).map_err(err)?;
        let (w, _) = root.dim_in_pixel();
        let (grid, legend) = root.split_horizontally(w - self.legend_width());
        let rows = self.panels.len().div_ceil(self.cols.max(1));
        for (panel, area) in self.panels.iter().zip(grid.split_evenly((rows, self.cols))) {
            draw_scatter(panel, &area)?;
        }
        // The legend lists only the classes some panel draws.
        let drawn: std::collections::BTreeSet<usize> =
            self.panels.iter().flat_map(|p| p.points.iter().map(|q| q.2 as usize)).collect();
        for (row, (c, name)) in self.class_names.iter().enumerate().filter(|(c, _)| drawn.contains(c)).enumerate() {
            let y = 40 + 24 * row as i32;
            legend.draw(&Circle::new((18, y), 6, colour(c).filled())).map_err(err)?;
            legend.draw(&Text::new(name.clone(), (32, y - 8), ("sans-serif", 16))).map_err(err)?;
        }
        Ok(())
    }
}

fn padded_range(values: impl Iterator<Item = f32>) -> (f32, f32) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (-1.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// Widens the narrower of two data ranges so that one data unit spans as many pixels along x as
/// along y on a `width` × `height` plot: 2-D features keep their angles.
pub fn equal_aspect(x: (f32, f32), y: (f32, f32), width: u32, height: u32) -> ((f32, f32), (f32, f32)) {
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let per_pixel = ((x.1 - x.0) / w).max((y.1 - y.0) / h);
    let around = |(lo, hi): (f32, f32), pixels: f32| {
        let (mid, half) = (0.5 * (lo + hi), 0.5 * per_pixel * pixels);
        (mid - half, mid + half)
    };
    (around(x, w), around(y, h))
}

const SCATTER_MARGIN: u32 = 8;
const SCATTER_X_LABELS: u32 = 28;
const SCATTER_Y_LABELS: u32 = 44;

fn draw_scatter<DB: DrawingBackend>(panel: &ScatterPanel, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let area = area.titled(&panel.title, ("sans-serif", 16)).map_err(err)?;
    let (w, h) = area.dim_in_pixel();
    let plot_w = w.saturating_sub(2 * SCATTER_MARGIN + SCATTER_Y_LABELS);
    let plot_h = h.saturating_sub(2 * SCATTER_MARGIN + SCATTER_X_LABELS);
    let ((x0, x1), (y0, y1)) = equal_aspect(
        padded_range(panel.points.iter().map(|p| p.0).chain(panel.centers.iter().map(|c| c.0))),
        padded_range(panel.points.iter().map(|p| p.1).chain(panel.centers.iter().map(|c| c.1))),
        plot_w,
        plot_h,
    );
    let mut chart = ChartBuilder::on(&area)
        .margin(SCATTER_MARGIN)
        .x_label_area_size(SCATTER_X_LABELS)
        .y_label_area_size(SCATTER_Y_LABELS)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    debug_assert_eq!(chart.plotting_area().dim_in_pixel(), (plot_w, plot_h));
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(5)
        .y_labels(5)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(panel.points.iter().map(|&(x, y, c)| Circle::new((x, y), 1, colour(c as usize).filled())))
        .map_err(err)?;
    chart.draw_series(panel.centers.iter().map(|&(x, y)| Circle::new((x, y), 5, WHITE.filled()))).map_err(err)?;
    chart
        .draw_series(panel.centers.iter().map(|&(x, y)| Circle::new((x, y), 5, BLACK.stroke_width(1))))
        .map_err(err)?;
    Ok(())
}

/// A named line of (x, y) points.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub colour: usize,
    pub markers: bool,
    /// Markers only, no line (for categories that have no order).
    pub no_line: bool,
    /// ± error bar per point (empty: none).
    pub errors: Vec<f64>,
}

/// One chart of lines. With `x_categories`, x is an index into them (methods, say); with
/// `x_ticks`, x is a position on an axis whose labelled ticks sit at whole numbers (λ on a log
/// axis with 0 and ∞ set apart at its ends, see `experiments::setup::lambda_axis`).
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    pub x_categories: Option<Vec<String>>,
    pub x_ticks: Option<Vec<(f64, String)>>,
    /// Start the y axis at zero (bars and rates whose size a truncated axis would exaggerate).
    pub y_from_zero: bool,
    pub series: Vec<Series>,
}

impl LineChart {
    /// The labelled x ticks (position, label), from `x_ticks` or the categories' indices.
    fn ticks(&self) -> Option<Vec<(f64, String)>> {
        self.x_ticks.clone().or_else(|| {
            self.x_categories.as_ref().map(|c| c.iter().enumerate().map(|(i, l)| (i as f64, l.clone())).collect())
        })
    }
}

/// Line charts side by side.
pub struct LineFigure {
    pub title: String,
    pub charts: Vec<LineChart>,
    pub cols: usize,
}

impl Figure for LineFigure {
    fn size(&self) -> (u32, u32) {
        let rows = self.charts.len().div_ceil(self.cols.max(1)) as u32;
        // A 22-px title needs ~11 px a character: a one-chart figure widens rather than clip it.
        let title_width = 11 * self.title.chars().count() as u32 + 40;
        ((520 * self.cols as u32).max(title_width), 400 * rows + 40)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let root = root.titled(&self.title, ("sans-serif", 22)).map_err(err)?;
        let rows = self.charts.len().div_ceil(self.cols.max(1));
        for (chart, area) in self.charts.iter().zip(root.split_evenly((rows, self.cols))) {
            draw_lines(chart, &area)?;
        }
        Ok(())
    }
}

fn axis_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let vals: Vec<f64> = values.filter(|v| v.is_finite() && (!log || *v > 0.0)).collect();
    if vals.is_empty() {
        return if log { (1e-3, 1.0) } else { (0.0, 1.0) };
    }
    let (lo, hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if log {
        (lo / 1.5, hi * 1.5)
    } else {
        let pad = ((hi - lo) * 0.06).max(1e-9 + hi.abs() * 1e-3);
        (lo - pad, hi + pad)
    }
}

/// The corner of the plot whose quarter-box holds the fewest data points, so the legend
/// hides as little as possible (ties go to lower right, then upper right).
fn emptiest_corner(chart: &LineChart, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> SeriesLabelPosition {
    let scale = |v: f64, lo: f64, hi: f64, log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let points: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|&(x, y)| (scale(x, x0, x1, chart.x_log), scale(y, y0, y1, chart.y_log))))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let corners = [
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerLeft, false, false),
        (SeriesLabelPosition::UpperLeft, false, true),
    ];
    let crowding = |right: bool, upper: bool| {
        points
            .iter()
            .filter(|(x, y)| (if right { *x > 0.55 } else { *x < 0.45 }) && (if upper { *y > 0.7 } else { *y < 0.3 }))
            .count()
    };
    corners
        .into_iter()
        .min_by_key(|(_, right, upper)| crowding(*right, *upper))
        .map(|c| c.0)
        .unwrap_or(SeriesLabelPosition::LowerRight)
}

fn draw_lines<DB: DrawingBackend>(chart: &LineChart, area: &DrawingArea<DB, Shift>) -> Result<()> {
    let xs = || chart.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    // The y range holds the error bars too.
    let ys = || {
        chart.series.iter().flat_map(|s| {
            s.points.iter().enumerate().flat_map(move |(i, p)| {
                let e = s.errors.get(i).copied().filter(|e| e.is_finite()).unwrap_or(0.0);
                [p.1 - e, p.1 + e]
            })
        })
    };
    let ticks = chart.ticks();
    let (x0, x1) = match &ticks {
        Some(t) if !t.is_empty() => {
            let (lo, hi) = t.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
            (lo - 0.5, hi + 0.5)
        }
        _ => axis_range(xs(), chart.x_log),
    };
    let (y0, y1) = axis_range(ys(), chart.y_log);
    let y0 = if chart.y_from_zero && !chart.y_log { y0.min(0.0) } else { y0 };
    let legend_corner = emptiest_corner(chart, (x0, x1), (y0, y1));
    let mut builder = ChartBuilder::on(area);
    builder.caption(&chart.title, ("sans-serif", 17)).margin(10).x_label_area_size(42).y_label_area_size(62);
    macro_rules! finish {
        ($cc:expr) => {{
            let mut cc = $cc;
            let labelled = ticks.clone();
            let x_log = chart.x_log;
            let fmt = move |x: &f64| match &labelled {
                Some(t) => t.iter().find(|p| (p.0 - x).abs() < 1e-6).map(|p| p.1.clone()).unwrap_or_default(),
                // A log axis labels its decades only: the ticks between them crowd near each one.
                None if x_log && (x.log10() - x.log10().round()).abs() > 1e-6 => String::new(),
                None => format_tick(*x),
            };
            let mut mesh = cc.configure_mesh();
            mesh.x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .label_style(("sans-serif", 13))
                .x_label_formatter(&fmt)
                .y_label_formatter(&|y| format_tick(*y));
            if ticks.is_some() {
                // One label per whole number across the range, so that every tick lands on one.
                mesh.x_labels((x1 - x0).round().max(1.0) as usize);
            }
            mesh.draw().map_err(err)?;
            for s in &chart.series {
                let style = colour(s.colour).stroke_width(2);
                let pts: Vec<(f64, f64)> = s
                    .points
                    .iter()
                    .copied()
                    .filter(|(x, y)| {
                        x.is_finite() && y.is_finite() && (!chart.y_log || *y > 0.0) && (!chart.x_log || *x > 0.0)
                    })
                    .collect();
                let line = if s.no_line { Vec::new() } else { pts.clone() };
                cc.draw_series(LineSeries::new(line, style))
                    .map_err(err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
                if s.markers || s.no_line {
                    cc.draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour(s.colour).filled()))).map_err(err)?;
                }
                for (&(x, y), &e) in s.points.iter().zip(&s.errors) {
                    if e.is_finite() && e > 0.0 {
                        cc.draw_series(LineSeries::new(vec![(x, y - e), (x, y + e)], colour(s.colour).stroke_width(1)))
                            .map_err(err)?;
                    }
                }
            }
            if chart.series.len() > 1 {
                cc.configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 13))
                    .position(legend_corner)
                    .draw()
                    .map_err(err)?;
            }
        }};
    }
    match (chart.x_log, chart.y_log) {
        (false, false) => finish!(builder.build_cartesian_2d(x0..x1, y0..y1).map_err(err)?),
        (true, false) => finish!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1).map_err(err)?),
        (false, true) => finish!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(err)?),
        (true, true) => finish!(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).map_err(err)?),
    }
    Ok(())
}

fn format_tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A grid of MNIST digits with their labels (for looking at the data).
pub struct DigitGrid {
    /// (28×28 pixels, label)
    pub images: Vec<(Vec<u8>, u8)>,
    pub cols: usize,
}

impl DigitGrid {
    /// The first `per_digit` images of each digit in `split`, one row per digit.
    pub fn first_of_each(split: &crate::data::Split, per_digit: usize) -> DigitGrid {
        let mut images = Vec::new();
        for d in 0..10u8 {
            for i in (0..split.len()).filter(|&i| split.labels[i] == d).take(per_digit) {
                images.push((split.images[i * 784..(i + 1) * 784].to_vec(), d));
            }
        }
        DigitGrid { images, cols: per_digit.max(1) }
    }
}

const DIGIT_SCALE: u32 = 3;
const DIGIT_CELL: u32 = 28 * DIGIT_SCALE + 8;

impl Figure for DigitGrid {
    fn size(&self) -> (u32, u32) {
        let rows = self.images.len().div_ceil(self.cols.max(1)) as u32;
        (DIGIT_CELL * self.cols as u32 + 8, DIGIT_CELL * rows + 8)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        for (k, (pixels, label)) in self.images.iter().enumerate() {
            let (x0, y0) =
                (8 + (k % self.cols) as i32 * DIGIT_CELL as i32, 8 + (k / self.cols) as i32 * DIGIT_CELL as i32);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + 28 * DIGIT_SCALE as i32, y0 + 28 * DIGIT_SCALE as i32)],
                BLACK.filled(),
            ))
            .map_err(err)?;
            for (p, &v) in pixels.iter().enumerate().filter(|(_, &v)| v > 16) {
                let (x, y) = (x0 + (p % 28) as i32 * DIGIT_SCALE as i32, y0 + (p / 28) as i32 * DIGIT_SCALE as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + DIGIT_SCALE as i32, y + DIGIT_SCALE as i32)],
                    RGBColor(v, v, v).filled(),
                ))
                .map_err(err)?;
            }
            root.draw(&Text::new(
                label.to_string(),
                (x0 + 2, y0 + 2),
                ("sans-serif", 14).into_font().color(&colour(*label as usize)),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// Pairs of square grayscale faces side by side, each pair with a caption (for looking at a
/// model's mistakes; LFW's images may not be redistributed, so these are never committed).
pub struct FacePairGrid {
    /// (face a, face b, caption), each face `side`×`side` pixels.
    pub pairs: Vec<(Vec<u8>, Vec<u8>, String)>,
    pub side: usize,
    pub cols: usize,
    pub title: String,
}

const FACE_SCALE: i32 = 2;

impl FacePairGrid {
    fn cell(&self) -> (i32, i32) {
        let face = self.side as i32 * FACE_SCALE;
        (2 * face + 24, face + 34)
    }
}

impl Figure for FacePairGrid {
    fn size(&self) -> (u32, u32) {
        let (w, h) = self.cell();
        let rows = self.pairs.len().div_ceil(self.cols.max(1)) as i32;
        ((w * self.cols.max(1) as i32 + 8) as u32, (h * rows + 40) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.draw(&Text::new(self.title.clone(), (8, 8), ("sans-serif", 16).into_font())).map_err(err)?;
        let (w, h) = self.cell();
        let face = self.side as i32 * FACE_SCALE;
        for (k, (a, b, caption)) in self.pairs.iter().enumerate() {
            let (x0, y0) = (8 + (k % self.cols.max(1)) as i32 * w, 36 + (k / self.cols.max(1)) as i32 * h);
            for (offset, pixels) in [(0, a), (face + 4, b)] {
                for (p, &v) in pixels.iter().enumerate() {
                    let (x, y) =
                        (x0 + offset + (p % self.side) as i32 * FACE_SCALE, y0 + (p / self.side) as i32 * FACE_SCALE);
                    root.draw(&Rectangle::new([(x, y), (x + FACE_SCALE, y + FACE_SCALE)], RGBColor(v, v, v).filled()))
                        .map_err(err)?;
                }
            }
            root.draw(&Text::new(caption.clone(), (x0, y0 + face + 4), ("sans-serif", 12).into_font())).map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws `figure` into an RGB buffer, as the PNG gets it.
    fn pixels<F: Figure>(figure: &F) -> (Vec<u8>, u32, u32) {
        ensure_font();
        let (w, h) = figure.size();
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            figure.draw(&root).unwrap();
            root.present().unwrap();
        }
        (buf, w, h)
    }

    fn count_colour(buf: &[u8], w: u32, x_range: std::ops::Range<u32>, c: RGBColor) -> usize {
        buf.chunks(3)
            .enumerate()
            .filter(|(i, p)| x_range.contains(&(*i as u32 % w)) && p[0] == c.0 && p[1] == c.1 && p[2] == c.2)
            .count()
    }

    #[test]
    fn equal_aspect_gives_both_axes_the_same_units_per_pixel() {
        let ((x0, x1), (y0, y1)) = equal_aspect((0.0, 10.0), (-1.0, 1.0), 360, 340);
        assert!(((x1 - x0) / 360.0 - (y1 - y0) / 340.0).abs() < 1e-6);
        assert_eq!((x0, x1), (0.0, 10.0), "the wider range is kept");
        assert!((y0 + y1).abs() < 1e-6 && y1 > 1.0, "the narrower one grows about its middle");
    }

    #[test]
    fn scatter_panels_show_exactly_the_classes_present() {
        // Classes 0-5 only: their colours appear in the panel and the legend, 6-9 in neither.
        let panel = ScatterPanel {
            title: "p".into(),
            points: (0..300).map(|i| ((i % 17) as f32, (i % 23) as f32, (i % 6) as u8)).collect(),
            centers: vec![],
        };
        let fig = ScatterFigure {
            title: "fig".into(),
            panels: vec![panel],
            cols: 1,
            class_names: (0..10).map(|d| d.to_string()).collect(),
        };
        let (buf, w, _) = pixels(&fig);
        let grid = 0..w - fig.legend_width();
        for c in 0..10 {
            let in_panel = count_colour(&buf, w, grid.clone(), colour(c));
            let in_legend = count_colour(&buf, w, w - fig.legend_width()..w, colour(c));
            if c < 6 {
                assert!(in_legend > 20, "class {c}'s legend dot is missing");
                assert!(in_panel > 40, "class {c}: {in_panel} pixels in the panel");
            } else {
                assert_eq!(in_panel, 0, "class {c} has no points but is drawn");
                // A legend dot is > 20 pixels; the labels' anti-aliased text can match grey (7) in one or two.
                assert!(in_legend < 5, "class {c} is not drawn but the legend lists it ({in_legend} pixels)");
            }
        }
    }

    #[test]
    fn the_legend_goes_where_the_data_is_not() {
        let chart = |points: Vec<(f64, f64)>| LineChart {
            series: vec![Series { points, ..Default::default() }],
            ..Default::default()
        };
        let rising = chart((0..=10).map(|i| (i as f64, i as f64)).collect());
        assert_eq!(emptiest_corner(&rising, (0.0, 10.0), (0.0, 10.0)), SeriesLabelPosition::LowerRight);
        let falling = chart((0..=10).map(|i| (i as f64, 10.0 - i as f64)).collect());
        assert_eq!(emptiest_corner(&falling, (0.0, 10.0), (0.0, 10.0)), SeriesLabelPosition::UpperRight);
        let empty_upper_left = chart(vec![(5.0, 1.0), (8.0, 1.0), (10.0, 9.0), (0.0, 1.0), (0.5, 0.5)]);
        assert_eq!(emptiest_corner(&empty_upper_left, (0.0, 10.0), (0.0, 10.0)), SeriesLabelPosition::UpperLeft);
        // On a log x axis from 1e-3 to 1, x = 0.1 and 0.3 sit in the right half (linearly they would be left).
        let log = LineChart { x_log: true, ..chart(vec![(0.1, 1.0), (0.3, 1.0), (1e-3, 9.0), (2e-3, 9.0)]) };
        assert_eq!(emptiest_corner(&log, (1e-3, 1.0), (0.0, 10.0)), SeriesLabelPosition::UpperRight);
        assert_eq!(
            emptiest_corner(&LineChart { x_log: false, ..log }, (1e-3, 1.0), (0.0, 10.0)),
            SeriesLabelPosition::LowerRight
        );
    }

    #[test]
    fn a_line_chart_draws_its_series_markers_error_bars_and_legend() {
        let with_errors = Series {
            name: "semi-hard".into(),
            points: vec![(0.0, 50.0), (1.0, 70.0), (2.0, 60.0)],
            errors: vec![5.0, 5.0, 5.0],
            colour: 0,
            markers: true,
            ..Default::default()
        };
        let other = Series {
            name: "hardest".into(),
            points: vec![(0.0, 40.0), (1.0, 45.0), (2.0, 30.0)],
            colour: 1,
            ..Default::default()
        };
        let chart = LineChart {
            title: "c".into(),
            x_categories: Some(vec!["a".into(), "b".into(), "c".into()]),
            series: vec![with_errors, other.clone()],
            ..Default::default()
        };
        let fig = LineFigure { title: "lines".into(), charts: vec![chart.clone()], cols: 1 };
        let (buf, w, _) = pixels(&fig);
        let (first, second) = (count_colour(&buf, w, 0..w, colour(0)), count_colour(&buf, w, 0..w, colour(1)));
        assert!(first > 200 && second > 100, "series pixels: {first}, {second}");
        // Markers and error bars add ink to the first series only.
        let bare = LineFigure {
            title: "lines".into(),
            charts: vec![LineChart {
                series: vec![Series { errors: vec![], markers: false, ..chart.series[0].clone() }, other],
                ..chart
            }],
            cols: 1,
        };
        let (buf, w, _) = pixels(&bare);
        assert!(count_colour(&buf, w, 0..w, colour(0)) + 50 < first, "markers and error bars drew nothing");
        let dir = std::env::temp_dir().join(format!("replicate-plot-svg-{}", std::process::id()));
        let files = save(&dir.join("lines"), &fig).unwrap();
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(
            ["semi-hard", "hardest", "lines"].iter().all(|t| svg.lines().any(|l| l.trim() == *t)),
            "legend or title missing from the SVG"
        );
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), fig.size().0, "PNG width");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn scatter_figures_write_png_and_svg() {
        let dir = std::env::temp_dir().join(format!("replicate-plot-{}", std::process::id()));
        let panel = ScatterPanel {
            title: "test".into(),
            points: (0..50).map(|i| (i as f32, (i * i) as f32, (i % 10) as u8)).collect(),
            centers: vec![(1.0, 2.0)],
        };
        let fig = ScatterFigure {
            title: "fig".into(),
            panels: vec![panel.clone(), panel],
            cols: 2,
            class_names: (0..10).map(|d| d.to_string()).collect(),
        };
        let files = save(&dir.join("scatter"), &fig).unwrap();
        let svg = std::fs::read_to_string(&files[1]).unwrap();
        assert!(
            svg.matches("<circle").count() >= 100 && svg.lines().any(|l| l.trim() == "fig"),
            "2 panels × 50 points and the title"
        );
        let png = std::fs::read(&files[0]).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
