//! NormFace, CosFace, ArcFace and SphereFace (`losses::margin_logits`) against the shared
//! reference vectors, plain-loop f64 oracles written here from the definitions (with acos), our
//! own finite differences, the properties that tie the family together, and its edge cases.

mod common;

use std::f64::consts::PI;

use candle_core::{DType, Tensor, Var};
use common::tensors::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replicate::losses::*;
use serde_json::Value;

fn margin_of(case: &Value) -> AngularMargin {
    let f = |key: &str| case[key].as_f64().unwrap_or_else(|| panic!("case has no {key}"));
    match case["kind"].as_str().unwrap() {
        "normface" => AngularMargin::NormFace { scale: f("scale") },
        "cosface" => AngularMargin::CosFace { scale: f("scale"), margin: f("margin") },
        "arcface" => AngularMargin::ArcFace {
            scale: f("scale"),
            margin: f("margin"),
            easy_margin: case["easy_margin"].as_bool().unwrap(),
        },
        "sphereface" => AngularMargin::SphereFace { m: case["m"].as_u64().unwrap() as usize, lambda: f("lambda") },
        other => panic!("unknown margins kind {other}"),
    }
}

/// Loss (mean cross-entropy of the training logits), logits and both gradients, by autograd.
struct Evaluated {
    logits: Vec<f64>,
    loss: f64,
    grad_features: Vec<f64>,
    grad_weight: Vec<f64>,
}

fn evaluate(x: &[Vec<f64>], w: &[Vec<f64>], labels: &[u32], margin: AngularMargin, dtype: DType) -> Evaluated {
    let xv = Var::from_tensor(&matrix(x).to_dtype(dtype).unwrap()).unwrap();
    let wv = Var::from_tensor(&matrix(w).to_dtype(dtype).unwrap()).unwrap();
    let logits = margin_logits(xv.as_tensor(), wv.as_tensor(), &labels_tensor(labels), margin).unwrap();
    let loss = softmax_loss(&logits, &labels_tensor(labels)).unwrap();
    let grads = loss.backward().unwrap();
    Evaluated {
        logits: flat(&logits),
        loss: scalar(&loss),
        grad_features: flat(grads.get(xv.as_tensor()).unwrap()),
        grad_weight: flat(grads.get(wv.as_tensor()).unwrap()),
    }
}

#[test]
fn vendored_margins_reference_matches_shared_copy() {
    assert_vendored_matches_shared("margins.json");
}

#[test]
fn every_margins_reference_case_passes() {
    let reference = reference("margins.json");
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 32, "expected the full margins reference set, got {} cases", cases.len());
    let mut degenerate = 0;
    for (n, case) in cases.iter().enumerate() {
        let what = format!("margins case {n} ({})", case["kind"].as_str().unwrap());
        let (x, w, labels) = (rows(&case["features"]), rows(&case["weight"]), ints(&case["labels"]));
        let got = evaluate(&x, &w, &labels, margin_of(case), DType::F64);
        if !case["train_logits"].is_null() {
            assert_close(&format!("{what} logits"), &got.logits, &rows(&case["train_logits"]).concat(), VALUE_REL, ABS);
        }
        assert_close(&format!("{what} loss"), &[got.loss], &[case["loss"].as_f64().unwrap()], VALUE_REL, ABS);
        // The reference's central differences (step 1e-6) carry a rounding error of about
        // ε·|loss|/h, ~8e-9 for case 12 (loss 37.5): there our W[2] = −4.358764e-5 agrees with a
        // 50-digit evaluation to 15 digits and the reference's −4.358469e-5 is off by 2.9e-9, more
        // than 1e-5 relative + 1e-9 absolute allow. Entries that small are held to that floor.
        let fd_floor = f64::EPSILON * got.loss.abs() / 1e-6;
        for (name, ours, theirs) in
            [("grad x", &got.grad_features, &case["grad_features"]), ("grad W", &got.grad_weight, &case["grad_weight"])]
        {
            match theirs {
                Value::Null => {
                    degenerate += 1;
                    assert!(ours.iter().all(|g| g.is_finite()), "{what} {name}: not finite: {ours:?}")
                }
                _ => assert_close(&format!("{what} {name}"), ours, &rows(theirs).concat(), GRAD_REL, ABS + fd_floor),
            }
        }
    }
    assert!(degenerate > 0, "the reference set should hold degenerate cases (cos θ = ±1)");
}

// ---------------------------------------------------------------------------------------------
// Plain-loop f64 oracle, from the definitions, with acos where the tensor version avoids it.

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn oracle_logits(x: &[Vec<f64>], w: &[Vec<f64>], labels: &[u32], margin: AngularMargin) -> Vec<f64> {
    let mut out = Vec::new();
    for (xi, &y) in x.iter().zip(labels) {
        for (j, wj) in w.iter().enumerate() {
            let cos = xi.iter().zip(wj).map(|(a, b)| a * b).sum::<f64>() / (norm(xi) * norm(wj));
            let theta = cos.clamp(-1.0, 1.0).acos();
            let target = j == y as usize;
            out.push(match margin {
                AngularMargin::NormFace { scale } => scale * cos,
                AngularMargin::CosFace { scale, margin } => scale * if target { cos - margin } else { cos },
                AngularMargin::ArcFace { scale, margin, easy_margin } => {
                    let threshold = if easy_margin { 0.0 } else { (PI - margin).cos() };
                    let fallback = if easy_margin { cos } else { cos - margin * margin.sin() };
                    scale
                        * match (target, cos > threshold) {
                            (false, _) => cos,
                            (true, true) => (theta + margin).cos(),
                            (true, false) => fallback,
                        }
                }
                AngularMargin::SphereFace { m, lambda } => {
                    norm(xi) * if target { (lambda * cos + oracle_psi(cos, m)) / (1.0 + lambda) } else { cos }
                }
            });
        }
    }
    out
}

/// Every variant with the settings its paper uses, and a few others.
fn variants() -> Vec<AngularMargin> {
    let mut all = vec![AngularMargin::NormFace { scale: 16.0 }, AngularMargin::CosFace { scale: 30.0, margin: 0.35 }];
    for easy_margin in [false, true] {
        all.push(AngularMargin::ArcFace { scale: 64.0, margin: 0.5, easy_margin });
        all.push(AngularMargin::ArcFace { scale: 8.0, margin: 1.2, easy_margin });
    }
    for m in 1..=4 {
        for lambda in [0.0, 5.0] {
            all.push(AngularMargin::SphereFace { m, lambda });
        }
    }
    all
}

/// The target cosines' distance to the nearest place where a variant switches branch (ψ's
/// pieces, ArcFace's threshold): finite differences must not straddle one.
fn distance_to_a_kink(x: &[Vec<f64>], w: &[Vec<f64>], labels: &[u32], margin: AngularMargin) -> f64 {
    let kinks: Vec<f64> = match margin {
        AngularMargin::ArcFace { margin, easy_margin, .. } => vec![if easy_margin { 0.0 } else { (PI - margin).cos() }],
        AngularMargin::SphereFace { m, .. } => (1..m).map(|j| (j as f64 * PI / m as f64).cos()).collect(),
        _ => vec![],
    };
    let mut nearest = f64::INFINITY;
    for (xi, &y) in x.iter().zip(labels) {
        let wy = &w[y as usize];
        let cos = xi.iter().zip(wy).map(|(a, b)| a * b).sum::<f64>() / (norm(xi) * norm(wy));
        for k in kinks.iter().chain(&[1.0, -1.0]) {
            nearest = nearest.min((cos - k).abs());
        }
    }
    nearest
}

fn random_case(rng: &mut ChaCha8Rng, margin: AngularMargin) -> (Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<u32>) {
    loop {
        let (b, c, d) = (6, 5, 3);
        let mut draw = |n: usize| -> Vec<Vec<f64>> {
            (0..n).map(|_| (0..d).map(|_| rng.random_range(-1.5..1.5)).collect()).collect()
        };
        let (x, w) = (draw(b), draw(c));
        let labels: Vec<u32> = (0..b).map(|_| rng.random_range(0..c as u32)).collect();
        if distance_to_a_kink(&x, &w, &labels, margin) > 1e-3 {
            return (x, w, labels);
        }
    }
}

#[test]
fn margin_logits_match_loop_oracles_on_random_batches() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for margin in variants() {
        for _ in 0..4 {
            let (x, w, labels) = random_case(&mut rng, margin);
            let logits = margin_logits(&matrix(&x), &matrix(&w), &labels_tensor(&labels), margin).unwrap();
            assert_close(&format!("{margin:?}"), &flat(&logits), &oracle_logits(&x, &w, &labels, margin), 1e-12, 1e-12);
        }
    }
}

#[test]
fn margin_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    for margin in variants() {
        let (x, w, labels) = random_case(&mut rng, margin);
        let lt = labels_tensor(&labels);
        let (wt, xt) = (matrix(&w), matrix(&x));
        let of_features = |f: &Tensor| softmax_loss(&margin_logits(f, &wt, &lt, margin).unwrap(), &lt).unwrap();
        let of_weight = |v: &Tensor| softmax_loss(&margin_logits(&xt, v, &lt, margin).unwrap(), &lt).unwrap();
        for (name, f, at, shape) in [
            ("features", &of_features as &dyn Fn(&Tensor) -> Tensor, x.concat(), (x.len(), 3)),
            ("weight", &of_weight, w.concat(), (w.len(), 3)),
        ] {
            let (_, grad) = value_and_grad(f, &at, shape);
            let numeric = finite_difference(f, &at, shape, 1e-6);
            assert_close(&format!("{margin:?} d/d{name}"), &grad, &numeric, 1e-5, 1e-7);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties that tie the family together.

fn logits(x: &[Vec<f64>], w: &[Vec<f64>], labels: &[u32], margin: AngularMargin) -> Vec<f64> {
    flat(&margin_logits(&matrix(x), &matrix(w), &labels_tensor(labels), margin).unwrap())
}

#[test]
fn zero_margins_are_normface_and_sphereface_m1_is_the_scaled_cosine() {
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let (x, w, labels) = random_case(&mut rng, AngularMargin::NormFace { scale: 1.0 });
    let normface = logits(&x, &w, &labels, AngularMargin::NormFace { scale: 10.0 });
    for same in [
        AngularMargin::CosFace { scale: 10.0, margin: 0.0 },
        AngularMargin::ArcFace { scale: 10.0, margin: 0.0, easy_margin: false },
        AngularMargin::ArcFace { scale: 10.0, margin: 0.0, easy_margin: true },
    ] {
        assert_close(&format!("{same:?} against NormFace"), &logits(&x, &w, &labels, same), &normface, 1e-12, 1e-12);
    }
    let sphere = AngularMargin::SphereFace { m: 1, lambda: 0.0 };
    let train = logits(&x, &w, &labels, sphere);
    // ‖x‖·cos θ = x·W/‖W‖ for every class, the target included.
    let by_hand: Vec<f64> = x
        .iter()
        .flat_map(|xi| w.iter().map(move |wj| xi.iter().zip(wj).map(|(a, b)| a * b).sum::<f64>() / norm(wj)))
        .collect();
    assert_close("SphereFace m = 1, λ = 0", &train, &by_hand, 1e-12, 1e-12);
    let test = flat(&margin_test_logits(&matrix(&x), &matrix(&w), sphere).unwrap());
    assert_close("SphereFace test logits", &test, &by_hand, 1e-12, 1e-12);
}

#[test]
fn margins_lower_the_target_logit_and_leave_the_others() {
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let (x, w, labels) = random_case(&mut rng, AngularMargin::NormFace { scale: 1.0 });
    let c = w.len();
    let plain = logits(&x, &w, &labels, AngularMargin::NormFace { scale: 30.0 });
    for margin in [
        AngularMargin::CosFace { scale: 30.0, margin: 0.35 },
        AngularMargin::ArcFace { scale: 30.0, margin: 0.5, easy_margin: false },
    ] {
        let got = logits(&x, &w, &labels, margin);
        for (i, &y) in labels.iter().enumerate() {
            for j in 0..c {
                let (ours, theirs) = (got[i * c + j], plain[i * c + j]);
                if j == y as usize {
                    assert!(ours < theirs, "{margin:?}: target logit {ours} not below the plain {theirs}");
                } else {
                    assert_eq!(ours, theirs, "{margin:?}: a non-target logit changed");
                }
            }
        }
    }
}

fn target_curve(margin: AngularMargin, thetas: &[f64]) -> Vec<f64> {
    let cos = Tensor::from_vec(thetas.iter().map(|t| t.cos()).collect::<Vec<_>>(), thetas.len(), &DEV).unwrap();
    flat(&margin.target_logit(&cos).unwrap())
}

#[test]
fn arcface_target_falls_with_the_angle_and_its_fallback_is_used_past_pi_minus_m() {
    let m = 0.5;
    let margin = AngularMargin::ArcFace { scale: 1.0, margin: m, easy_margin: false };
    let thetas: Vec<f64> = (0..=400).map(|i| (PI - m) * i as f64 / 400.0).collect();
    let curve = target_curve(margin, &thetas);
    assert!(curve.windows(2).all(|p| p[1] < p[0]), "ArcFace's target must fall on [0, π − m]: {curve:?}");
    assert_close("ArcFace at θ = 0", &curve[..1], &[m.cos()], 1e-12, 1e-12);
    // Past π − m, cos(θ + m) would rise again; the fallback cos θ − m·sin m keeps falling.
    let beyond: Vec<f64> = (1..=20).map(|i| PI - m + i as f64 * m / 20.0).collect();
    let fallback: Vec<f64> = beyond.iter().map(|t| t.cos() - m * m.sin()).collect();
    assert_close("ArcFace fallback", &target_curve(margin, &beyond), &fallback, 1e-12, 1e-12);
    let rising: Vec<f64> = beyond.iter().map(|t| (t + m).cos()).collect();
    assert!(rising.windows(2).all(|p| p[1] > p[0]), "the test's premise: cos(θ + m) rises past π − m");
    // The easy margin switches at 90° instead.
    let easy = AngularMargin::ArcFace { scale: 1.0, margin: m, easy_margin: true };
    let wide = [0.25 * PI, 0.75 * PI];
    assert_close("easy margin", &target_curve(easy, &wide), &[(0.25 * PI + m).cos(), (0.75 * PI).cos()], 1e-12, 1e-12);
    // A training batch whose target lies past π − m takes the fallback too.
    let (x, w) = (vec![vec![-1.0, 0.05]], vec![vec![1.0, 0.0], vec![0.0, 1.0]]);
    let got = logits(&x, &w, &[0], AngularMargin::ArcFace { scale: 2.0, margin: m, easy_margin: false });
    let cos = -1.0 / norm(&x[0]);
    assert_close("fallback in margin_logits", &got[..1], &[2.0 * (cos - m * m.sin())], 1e-12, 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Edge cases: degenerate features, bad settings and shapes, F32.

#[test]
fn features_along_against_or_at_zero_give_finite_gradients_in_f64_and_f32() {
    let w = vec![vec![1.0, 0.0], vec![0.0, 2.0], vec![-1.0, 0.0]];
    type Batch = (&'static str, Vec<Vec<f64>>, Vec<u32>);
    let batches: Vec<Batch> = vec![
        ("along its class weight", vec![vec![3.0, 0.0], vec![0.0, 0.5]], vec![0, 1]),
        ("against its class weight", vec![vec![-2.0, 0.0]], vec![0]),
        ("a zero feature", vec![vec![0.0, 0.0], vec![1.0, 1.0]], vec![1, 0]),
    ];
    for (what, x, labels) in &batches {
        for margin in variants() {
            for dtype in [DType::F64, DType::F32] {
                let got = evaluate(x, &w, labels, margin, dtype);
                let finite = |v: &[f64]| v.iter().all(|g| g.is_finite());
                assert!(
                    got.loss.is_finite()
                        && finite(&got.logits)
                        && finite(&got.grad_features)
                        && finite(&got.grad_weight),
                    "{what}, {margin:?}, {dtype:?}: loss {}, logits {:?}, grads {:?} / {:?}",
                    got.loss,
                    got.logits,
                    got.grad_features,
                    got.grad_weight
                );
            }
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = ChaCha8Rng::seed_from_u64(25);
    for margin in variants() {
        let (x, w, labels) = random_case(&mut rng, margin);
        let (double, single) =
            (evaluate(&x, &w, &labels, margin, DType::F64), evaluate(&x, &w, &labels, margin, DType::F32));
        assert_close(&format!("{margin:?} F32 logits"), &single.logits, &double.logits, 1e-4, 1e-4);
        assert_close(&format!("{margin:?} F32 grad x"), &single.grad_features, &double.grad_features, 1e-3, 1e-4);
    }
}

#[test]
fn bad_settings_and_shapes_are_errors_that_name_the_value() {
    let (x, w, labels) = (matrix(&[vec![1.0, 0.0]]), matrix(&[vec![1.0, 0.0], vec![0.0, 1.0]]), labels_tensor(&[0]));
    let bad = [
        (AngularMargin::NormFace { scale: 0.0 }, "got 0"),
        (AngularMargin::NormFace { scale: f64::NAN }, "got NaN"),
        (AngularMargin::CosFace { scale: 30.0, margin: 1.0 }, "got 1"),
        (AngularMargin::CosFace { scale: 30.0, margin: -0.1 }, "got -0.1"),
        (AngularMargin::ArcFace { scale: 64.0, margin: 1.6, easy_margin: false }, "got 1.6"),
        (AngularMargin::ArcFace { scale: -1.0, margin: 0.5, easy_margin: false }, "got -1"),
        (AngularMargin::SphereFace { m: 5, lambda: 0.0 }, "got 5"),
        (AngularMargin::SphereFace { m: 0, lambda: 0.0 }, "got 0"),
        (AngularMargin::SphereFace { m: 4, lambda: -1.0 }, "got -1"),
    ];
    for (margin, says) in bad {
        let message = margin_logits(&x, &w, &labels, margin).unwrap_err().to_string();
        assert!(message.contains(says) && message.contains(margin.name()), "{margin:?}: {message}");
        assert!(margin_test_logits(&x, &w, margin).is_err(), "{margin:?}: test logits accepted it");
    }
    let fine = AngularMargin::CosFace { scale: 30.0, margin: 0.35 };
    let wrong_dim = matrix(&[vec![1.0, 0.0, 0.0]]);
    let message = margin_logits(&wrong_dim, &w, &labels, fine).unwrap_err().to_string();
    assert!(message.contains("3-D") && message.contains("2-D"), "{message}");
    let message = margin_logits(&x, &w, &labels_tensor(&[0, 1]), fine).unwrap_err().to_string();
    assert!(message.contains("[2]") && message.contains("[1]"), "{message}");
    let message = margin_logits(&x, &w, &labels_tensor(&[2]), fine).unwrap_err().to_string();
    assert!(message.contains("label 2") && message.contains("2 class"), "{message}");
    let message = margin_logits(&x.to_dtype(DType::F32).unwrap(), &w, &labels, fine).unwrap_err().to_string();
    assert!(message.contains("F32") && message.contains("F64"), "{message}");
}

/// Free 2-D features and class weights trained by plain gradient descent on each variant's loss
/// end with every feature nearest its own class weight: the losses pull the right way.
#[test]
fn gradient_descent_on_free_features_separates_eight_classes() {
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    let (n, c) = (64usize, 8u32);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % c).collect();
    for margin in [
        AngularMargin::NormFace { scale: 16.0 },
        AngularMargin::CosFace { scale: 16.0, margin: 0.2 },
        AngularMargin::ArcFace { scale: 16.0, margin: 0.5, easy_margin: false },
        AngularMargin::SphereFace { m: 4, lambda: 5.0 },
    ] {
        let x0: Vec<f64> = (0..n * 2).map(|_| rng.random_range(0.0..1.0)).collect();
        let w0: Vec<f64> = (0..c as usize * 2).map(|_| rng.random_range(-1.0..1.0)).collect();
        let x = Var::from_vec(x0, (n, 2), &DEV).unwrap();
        let w = Var::from_vec(w0, (c as usize, 2), &DEV).unwrap();
        let lt = labels_tensor(&labels);
        let mut loss = f64::NAN;
        for _ in 0..2000 {
            let l = softmax_loss(&margin_logits(x.as_tensor(), w.as_tensor(), &lt, margin).unwrap(), &lt).unwrap();
            loss = scalar(&l);
            let grads = l.backward().unwrap();
            for v in [&x, &w] {
                let g = grads.get(v.as_tensor()).unwrap();
                v.set(&(v.as_tensor() - (g * 0.5).unwrap()).unwrap()).unwrap();
            }
        }
        let predicted = margin_test_logits(x.as_tensor(), w.as_tensor(), margin).unwrap().argmax(1).unwrap();
        let correct = predicted.to_vec1::<u32>().unwrap().iter().zip(&labels).filter(|(p, l)| p == l).count();
        assert_eq!(correct, n, "{margin:?}: {correct} of {n} features nearest their class weight, loss {loss}");
    }
}
