//! ArcFace's Fig. 4(b): the target logit against the angle θ between a feature and its class
//! weight, for s = 1 and ‖x‖ = 1. Pure mathematics, drawn from the losses' own target logit
//! (`AngularMargin::target_logit`) and, for the combined margins s·(cos(m1·θ + m2) − m3), from
//! the formula with the (m1, m2, m3) of the paper's CM1 and CM2 as we read its Table 2 and
//! caption. SphereFace is drawn with λ = 0 (the pure ψ_4, its values below −1 included).

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::losses::AngularMargin;
use crate::plot::{save, LineChart, LineFigure, Series};

const STEPS: usize = 720;

/// A curve's legend and its (θ in degrees, target logit) points.
pub type Curve = (String, Vec<(f64, f64)>);

/// The named curves: (legend, target logit at each θ in degrees).
pub fn target_logit_curves() -> Result<Vec<Curve>> {
    let degrees: Vec<f64> = (0..=STEPS).map(|i| 180.0 * i as f64 / STEPS as f64).collect();
    let cos = Tensor::from_vec(
        degrees.iter().map(|d| d.to_radians().cos()).collect::<Vec<f64>>(),
        degrees.len(),
        &Device::Cpu,
    )?;
    let family = [
        ("softmax: cos θ", AngularMargin::NormFace { scale: 1.0 }),
        ("SphereFace, m = 4: ψ(θ)", AngularMargin::SphereFace { m: 4, lambda: 0.0 }),
        ("CosFace: cos θ − 0.35", AngularMargin::CosFace { scale: 1.0, margin: 0.35 }),
        (
            "ArcFace: cos(θ + 0.5), insightface's fallback past 151.4°",
            AngularMargin::ArcFace { scale: 1.0, margin: 0.5, easy_margin: false },
        ),
    ];
    let mut curves = Vec::new();
    for (name, margin) in family {
        let values: Vec<f64> = margin.target_logit(&cos)?.to_vec1()?;
        curves.push((name.to_string(), degrees.iter().copied().zip(values).collect()));
    }
    for (name, (m1, m2, m3)) in [("CM1 (1, 0.3, 0.2)", (1.0, 0.3, 0.2)), ("CM2 (0.9, 0.4, 0.15)", (0.9, 0.4, 0.15))] {
        let points = degrees.iter().map(|&d| (d, (m1 * d.to_radians() + m2).cos() - m3)).collect();
        curves.push((format!("combined {name}: cos(m1·θ + m2) − m3"), points));
    }
    Ok(curves)
}

pub fn draw(base: &Path) -> Result<Vec<PathBuf>> {
    let curves = target_logit_curves()?;
    // SphereFace's ψ_4 falls to −7 and squeezes the rest into a band; the second chart shows the
    // same curves where the target logit is at least −1.5.
    let chart = |title: &str, floor: f64| LineChart {
        title: title.into(),
        x_label: "θ, the angle between x and W_y (degrees)".into(),
        y_label: "target logit".into(),
        series: curves
            .iter()
            .enumerate()
            .map(|(i, (name, points))| Series {
                name: name.clone(),
                points: points.iter().copied().filter(|p| p.1 >= floor).collect(),
                colour: i,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let figure = LineFigure {
        title: "Target logits of the margin losses, s = 1 and ‖x‖ = 1 (cf. ArcFace, Fig. 4b)".into(),
        charts: vec![chart("every value", f64::NEG_INFINITY), chart("detail: where the target logit ≥ −1.5", -1.5)],
        cols: 2,
    };
    save(base, &figure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_start_where_the_formulas_do_and_arcface_falls_to_its_fallback() {
        let curves = target_logit_curves().unwrap();
        let at = |name: &str, degrees: f64| {
            let (_, points) = curves.iter().find(|(n, _)| n.starts_with(name)).unwrap();
            points.iter().find(|p| (p.0 - degrees).abs() < 1e-9).unwrap().1
        };
        assert!((at("softmax", 0.0) - 1.0).abs() < 1e-12 && (at("softmax", 90.0)).abs() < 1e-12);
        assert!((at("CosFace", 0.0) - 0.65).abs() < 1e-12);
        assert!((at("ArcFace", 0.0) - 0.5f64.cos()).abs() < 1e-9);
        // ψ_4(90°) = cos 360° − 2·2 = −3; ψ_4(180°) = −cos 720° − 2·3 = −7.
        assert!((at("SphereFace", 90.0) + 3.0).abs() < 1e-9 && (at("SphereFace", 180.0) + 7.0).abs() < 1e-9);
        // Past 180° − 0.5 rad, ArcFace takes cos θ − m·sin m: at 180°, −1 − 0.5·sin 0.5.
        assert!((at("ArcFace", 180.0) + 1.0 + 0.5 * 0.5f64.sin()).abs() < 1e-9);
        assert!((at("combined CM2", 0.0) - (0.4f64.cos() - 0.15)).abs() < 1e-12);
        assert_eq!(curves.len(), 6);
    }
}
