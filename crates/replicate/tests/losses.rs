//! The losses against three independent checks: the shared reference vectors (float64 loops
//! and finite differences computed outside this project), plain-loop f64 oracles written here
//! from the papers' definitions, and central finite differences of our own implementation.

mod common;

use candle_core::{DType, Tensor, Var};
use common::tensors::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use replicate::losses::*;
use serde_json::Value;

fn mining(name: &str) -> Mining {
    match name {
        "all" => Mining::All,
        "batch_hard" => Mining::BatchHard,
        "semi_hard" => Mining::SemiHard,
        "hardest_negative" => Mining::HardestNegative,
        other => panic!("unknown mining {other}"),
    }
}

fn distance(name: &str) -> Distance {
    match name {
        "euclidean" => Distance::Euclidean,
        _ => Distance::SquaredEuclidean,
    }
}

#[test]
fn vendored_reference_matches_shared_copy() {
    assert_vendored_matches_shared("losses.json");
}

#[test]
fn every_reference_case_passes() {
    let reference = reference("losses.json");
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 80, "expected the full reference set, got {} cases", cases.len());
    for (n, case) in cases.iter().enumerate() {
        let kind = case["kind"].as_str().unwrap();
        let what = format!("case {n} ({kind})");
        match kind {
            "softmax" => {
                let logits = rows(&case["logits"]);
                let labels = labels_tensor(&ints(&case["labels"]));
                let shape = (logits.len(), logits[0].len());
                let (loss, grad) = value_and_grad(&|x| softmax_loss(x, &labels).unwrap(), &logits.concat(), shape);
                assert_close(&what, &[loss], &[case["loss"].as_f64().unwrap()], VALUE_REL, ABS);
                assert_close(&what, &grad, &rows(&case["grad_logits"]).concat(), GRAD_REL, ABS);
            }
            "contrastive" => {
                let x = rows(&case["features"]);
                let labels = labels_tensor(&ints(&case["labels"]));
                let form = if case["form"] == "distance" {
                    ContrastiveForm::Distance
                } else {
                    ContrastiveForm::SquaredDistance
                };
                let margin = case["margin"].as_f64().unwrap();
                let shape = (x.len(), x[0].len());
                let (loss, grad) =
                    value_and_grad(&|f| contrastive_loss(f, &labels, margin, form).unwrap(), &x.concat(), shape);
                assert_close(&what, &[loss], &[case["loss"].as_f64().unwrap()], VALUE_REL, ABS);
                match &case["grad_features"] {
                    Value::Null => assert!(grad.iter().all(|g| g.is_finite()), "{what}: gradient not finite: {grad:?}"),
                    g => assert_close(&what, &grad, &rows(g).concat(), GRAD_REL, ABS),
                }
            }
            "triplet" => {
                let x = rows(&case["features"]);
                let labels = labels_tensor(&ints(&case["labels"]));
                let loss_fn = TripletLoss {
                    margin: case["margin"].as_f64().unwrap(),
                    mining: mining(case["mining"].as_str().unwrap()),
                    distance: distance(case["distance"].as_str().unwrap()),
                };
                let shape = (x.len(), x[0].len());
                let (loss, grad) = value_and_grad(&|f| loss_fn.forward(f, &labels).unwrap().loss, &x.concat(), shape);
                let what = format!("{what} {:?} {:?}", loss_fn.mining, loss_fn.distance);
                assert_close(&what, &[loss], &[case["loss"].as_f64().unwrap()], VALUE_REL, ABS);
                match &case["grad_features"] {
                    Value::Null => assert!(grad.iter().all(|g| g.is_finite()), "{what}: gradient not finite: {grad:?}"),
                    g => assert_close(&what, &grad, &rows(g).concat(), GRAD_REL, ABS),
                }
            }
            "center" => {
                let x = rows(&case["features"]);
                let labels = labels_tensor(&ints(&case["labels"]));
                let centers = matrix(&rows(&case["centers"]));
                let mut center = CenterLoss::from_centers(centers, case["alpha"].as_f64().unwrap()).unwrap();
                let shape = (x.len(), x[0].len());
                let (loss, grad) = value_and_grad(&|f| center.loss(f, &labels).unwrap(), &x.concat(), shape);
                assert_close(&what, &[loss], &[case["loss"].as_f64().unwrap()], VALUE_REL, ABS);
                assert_close(&what, &grad, &rows(&case["grad_features"]).concat(), GRAD_REL, ABS);
                center.update(&matrix(&x), &labels).unwrap();
                assert_close(
                    &what,
                    &flat(center.centers()),
                    &rows(&case["centers_after_update"]).concat(),
                    VALUE_REL,
                    ABS,
                );
            }
            "lsoftmax" => {
                let x = rows(&case["features"]);
                let w = rows(&case["weight"]);
                let labels = labels_tensor(&ints(&case["labels"]));
                let (m, lambda) = (case["m"].as_u64().unwrap() as usize, case["lambda"].as_f64().unwrap());
                let xv = Var::from_tensor(&matrix(&x)).unwrap();
                let wv = Var::from_tensor(&matrix(&w)).unwrap();
                let layer = LSoftmax::new(wv.as_tensor().clone(), m).unwrap();
                let logits = layer.train_logits(xv.as_tensor(), &labels, lambda).unwrap();
                assert_close(
                    &format!("{what} logits"),
                    &flat(&logits),
                    &rows(&case["train_logits"]).concat(),
                    VALUE_REL,
                    ABS,
                );
                let loss = softmax_loss(&logits, &labels).unwrap();
                assert_close(
                    &format!("{what} loss"),
                    &[scalar(&loss)],
                    &[case["loss"].as_f64().unwrap()],
                    VALUE_REL,
                    ABS,
                );
                let grads = loss.backward().unwrap();
                assert_close(
                    &format!("{what} grad x"),
                    &flat(grads.get(xv.as_tensor()).unwrap()),
                    &rows(&case["grad_features"]).concat(),
                    GRAD_REL,
                    ABS,
                );
                assert_close(
                    &format!("{what} grad W"),
                    &flat(grads.get(wv.as_tensor()).unwrap()),
                    &rows(&case["grad_weight"]).concat(),
                    GRAD_REL,
                    ABS,
                );
            }
            "psi" => {
                let cos = nums(&case["cos"]);
                let m = case["m"].as_u64().unwrap() as usize;
                let got = flat(&psi(&Tensor::from_vec(cos.clone(), cos.len(), &DEV).unwrap(), m).unwrap());
                assert_close(&what, &got, &nums(&case["psi"]), VALUE_REL, ABS);
            }
            "lambda_schedule" => {
                let s = LambdaSchedule {
                    base: case["base"].as_f64().unwrap(),
                    gamma: case["gamma"].as_f64().unwrap(),
                    power: case["power"].as_f64().unwrap(),
                    lambda_min: case["lambda_min"].as_f64().unwrap(),
                };
                let got: Vec<f64> =
                    case["iters"].as_array().unwrap().iter().map(|i| s.at(i.as_u64().unwrap())).collect();
                assert_close(&what, &got, &nums(&case["lambda"]), VALUE_REL, ABS);
            }
            other => panic!("unknown reference kind {other}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Plain-loop f64 oracles, written from the definitions (no tensor ops).

fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

fn oracle_softmax(logits: &[Vec<f64>], labels: &[u32]) -> f64 {
    logits
        .iter()
        .zip(labels)
        .map(|(z, &y)| {
            let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            lse - z[y as usize]
        })
        .sum::<f64>()
        / logits.len() as f64
}

fn oracle_contrastive(x: &[Vec<f64>], labels: &[u32], m: f64, form: ContrastiveForm) -> f64 {
    let (mut total, mut pairs) = (0.0, 0usize);
    for i in 0..x.len() {
        for j in i + 1..x.len() {
            let d2 = dist2(&x[i], &x[j]);
            total += if labels[i] == labels[j] {
                0.5 * d2
            } else {
                match form {
                    ContrastiveForm::Distance => 0.5 * (m - d2.sqrt()).max(0.0).powi(2),
                    ContrastiveForm::SquaredDistance => 0.5 * (m - d2).max(0.0),
                }
            };
            pairs += 1;
        }
    }
    if pairs == 0 {
        0.0
    } else {
        total / pairs as f64
    }
}

fn oracle_triplet(x: &[Vec<f64>], labels: &[u32], margin: f64, rule: Mining, distance: Distance) -> f64 {
    let d = |i: usize, j: usize| {
        let d2 = dist2(&x[i], &x[j]);
        if distance == Distance::Euclidean {
            d2.sqrt()
        } else {
            d2
        }
    };
    let b = x.len();
    let mut terms = Vec::new();
    for a in 0..b {
        let pos: Vec<usize> = (0..b).filter(|&p| p != a && labels[p] == labels[a]).collect();
        let neg: Vec<usize> = (0..b).filter(|&n| labels[n] != labels[a]).collect();
        if pos.is_empty() || neg.is_empty() {
            continue;
        }
        match rule {
            Mining::All => {
                for &p in &pos {
                    for &n in &neg {
                        terms.push((d(a, p) - d(a, n) + margin).max(0.0));
                    }
                }
            }
            Mining::BatchHard => {
                let hp = pos.iter().map(|&p| d(a, p)).fold(f64::NEG_INFINITY, f64::max);
                let hn = neg.iter().map(|&n| d(a, n)).fold(f64::INFINITY, f64::min);
                terms.push((hp - hn + margin).max(0.0));
            }
            Mining::HardestNegative => {
                let hn = neg.iter().map(|&n| d(a, n)).fold(f64::INFINITY, f64::min);
                for &p in &pos {
                    terms.push((d(a, p) - hn + margin).max(0.0));
                }
            }
            Mining::SemiHard => {
                for &p in &pos {
                    let dap = d(a, p);
                    let farther = neg.iter().map(|&n| d(a, n)).filter(|&dn| dn > dap).fold(f64::INFINITY, f64::min);
                    let dan = if farther.is_finite() {
                        farther
                    } else {
                        neg.iter().map(|&n| d(a, n)).fold(f64::NEG_INFINITY, f64::max)
                    };
                    terms.push((dap - dan + margin).max(0.0));
                }
            }
        }
    }
    if terms.is_empty() {
        0.0
    } else {
        terms.iter().sum::<f64>() / terms.len() as f64
    }
}

/// ψ through acos, the definition the paper states (independent of our Chebyshev + comparisons).
fn oracle_lsoftmax_logits(x: &[Vec<f64>], w: &[Vec<f64>], labels: &[u32], m: usize, lambda: f64) -> Vec<f64> {
    let mut out = Vec::new();
    for (xi, &y) in x.iter().zip(labels) {
        let xn = xi.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (j, wj) in w.iter().enumerate() {
            let dot: f64 = xi.iter().zip(wj).map(|(a, b)| a * b).sum();
            if j == y as usize {
                let norms = xn * wj.iter().map(|v| v * v).sum::<f64>().sqrt();
                out.push((lambda * dot + norms * oracle_psi(dot / norms, m)) / (1.0 + lambda));
            } else {
                out.push(dot);
            }
        }
    }
    out
}

fn random_batch(rng: &mut ChaCha8Rng, b: usize, d: usize, classes: u32) -> (Vec<Vec<f64>>, Vec<u32>) {
    let x = (0..b).map(|_| (0..d).map(|_| rng.random_range(-1.5..1.5)).collect()).collect();
    let labels = (0..b).map(|_| rng.random_range(0..classes)).collect();
    (x, labels)
}

#[test]
fn losses_match_loop_oracles_on_random_batches() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for trial in 0..40 {
        let b = rng.random_range(2..14);
        let d = rng.random_range(1..6);
        let classes = rng.random_range(1..5);
        let (x, labels) = random_batch(&mut rng, b, d, classes);
        let lt = labels_tensor(&labels);
        let xt = matrix(&x);
        let what = format!("trial {trial} (B={b}, D={d}, labels {labels:?})");
        let margin = rng.random_range(0.1..2.0);
        assert_close(
            &format!("softmax {what}"),
            &[scalar(&softmax_loss(&xt, &lt.clamp(0u32, d as u32 - 1).unwrap()).unwrap())],
            &[oracle_softmax(&x, &labels.iter().map(|&l| l.min(d as u32 - 1)).collect::<Vec<_>>())],
            1e-12,
            1e-12,
        );
        for form in [ContrastiveForm::Distance, ContrastiveForm::SquaredDistance] {
            assert_close(
                &format!("contrastive {form:?} {what}"),
                &[scalar(&contrastive_loss(&xt, &lt, margin, form).unwrap())],
                &[oracle_contrastive(&x, &labels, margin, form)],
                1e-10,
                1e-12,
            );
        }
        for rule in Mining::ALL {
            for distance in [Distance::Euclidean, Distance::SquaredEuclidean] {
                let got = TripletLoss { margin, mining: rule, distance }.forward(&xt, &lt).unwrap();
                assert_close(
                    &format!("triplet {rule:?} {distance:?} {what}"),
                    &[scalar(&got.loss)],
                    &[oracle_triplet(&x, &labels, margin, rule, distance)],
                    1e-10,
                    1e-12,
                );
            }
        }
        let c = 5usize;
        let centers: Vec<Vec<f64>> = (0..c).map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let alpha = rng.random_range(0.0..1.0);
        let mut center = CenterLoss::from_centers(matrix(&centers), alpha).unwrap();
        let loss: f64 =
            x.iter().zip(&labels).map(|(xi, &y)| 0.5 * dist2(xi, &centers[y as usize])).sum::<f64>() / b as f64;
        assert_close(&format!("center {what}"), &[scalar(&center.loss(&xt, &lt).unwrap())], &[loss], 1e-12, 1e-12);
        center.update(&xt, &lt).unwrap();
        let mut expected = centers.clone();
        for j in 0..c {
            let members: Vec<usize> = (0..b).filter(|&i| labels[i] as usize == j).collect();
            for k in 0..d {
                let delta: f64 =
                    members.iter().map(|&i| centers[j][k] - x[i][k]).sum::<f64>() / (1.0 + members.len() as f64);
                expected[j][k] = centers[j][k] - alpha * delta;
            }
        }
        assert_close(&format!("center update {what}"), &flat(center.centers()), &expected.concat(), 1e-12, 1e-12);
        let classes = rng.random_range(2..6usize);
        let w: Vec<Vec<f64>> =
            (0..classes).map(|_| (0..d.max(2)).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
        let xw: Vec<Vec<f64>> = (0..b).map(|_| (0..d.max(2)).map(|_| rng.random_range(-3.0..3.0)).collect()).collect();
        let ly: Vec<u32> = (0..b).map(|_| rng.random_range(0..classes as u32)).collect();
        for m in 1..=4 {
            let lambda = [0.0, 0.5, 10.0][trial % 3];
            let layer = LSoftmax::new(matrix(&w), m).unwrap();
            let got = flat(&layer.train_logits(&matrix(&xw), &labels_tensor(&ly), lambda).unwrap());
            assert_close(
                &format!("lsoftmax m={m} λ={lambda} {what}"),
                &got,
                &oracle_lsoftmax_logits(&xw, &w, &ly, m, lambda),
                1e-9,
                1e-9,
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let h = 1e-6;
    let check = |what: &str, f: &dyn Fn(&Tensor) -> Tensor, x: &[f64], shape: (usize, usize)| {
        let (_, g) = value_and_grad(f, x, shape);
        let fd = finite_difference(f, x, shape, h);
        assert_close(what, &g, &fd, 1e-5, 1e-6);
    };
    for trial in 0..12 {
        let (b, d) = (rng.random_range(3..9), rng.random_range(2..5));
        let (x, labels) = random_batch(&mut rng, b, d, 3);
        let lt = labels_tensor(&labels);
        let shape = (b, d);
        check(
            &format!("softmax {trial}"),
            &|z| softmax_loss(z, &lt.clamp(0u32, d as u32 - 1).unwrap()).unwrap(),
            &x.concat(),
            shape,
        );
        // Margins large enough that no hinge sits at a kink for these random points.
        for form in [ContrastiveForm::Distance, ContrastiveForm::SquaredDistance] {
            check(
                &format!("contrastive {form:?} {trial}"),
                &|f| contrastive_loss(f, &lt, 1.3, form).unwrap(),
                &x.concat(),
                shape,
            );
        }
        for rule in Mining::ALL {
            for distance in [Distance::Euclidean, Distance::SquaredEuclidean] {
                let loss = TripletLoss { margin: 0.7, mining: rule, distance };
                check(
                    &format!("triplet {rule:?} {distance:?} {trial}"),
                    &|f| loss.forward(f, &lt).unwrap().loss,
                    &x.concat(),
                    shape,
                );
            }
        }
        let centers =
            matrix(&(0..3).map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect()).collect::<Vec<Vec<f64>>>());
        let center = CenterLoss::from_centers(centers, 0.5).unwrap();
        check(&format!("center {trial}"), &|f| center.loss(f, &lt).unwrap(), &x.concat(), shape);
        let w: Vec<f64> = (0..3 * d).map(|_| rng.random_range(-1.0..1.0)).collect();
        for m in 1..=4 {
            let wt = Tensor::from_vec(w.clone(), (3, d), &DEV).unwrap();
            let layer = LSoftmax::new(wt, m).unwrap();
            check(
                &format!("lsoftmax x m={m} {trial}"),
                &|f| softmax_loss(&layer.train_logits(f, &lt, 0.3).unwrap(), &lt).unwrap(),
                &x.concat(),
                shape,
            );
            let xt = matrix(&x);
            check(
                &format!("lsoftmax W m={m} {trial}"),
                &|wv| {
                    softmax_loss(&LSoftmax::new(wv.clone(), m).unwrap().train_logits(&xt, &lt, 0.3).unwrap(), &lt)
                        .unwrap()
                },
                &w,
                (3, d),
            );
        }
    }
}

type LossFn = Box<dyn Fn(&Tensor) -> Tensor>;

#[test]
fn degenerate_batches_give_finite_losses_and_gradients() {
    let dup = vec![vec![0.3, -0.2], vec![0.3, -0.2], vec![1.0, 0.5], vec![1.0, 0.5]];
    let cases: Vec<(Vec<Vec<f64>>, Vec<u32>)> = vec![
        (dup.clone(), vec![0, 0, 0, 0]), // one label only
        (dup.clone(), vec![0, 1, 2, 3]), // all labels distinct
        (dup.clone(), vec![0, 0, 1, 1]), // exact duplicates within a class
        (dup.clone(), vec![0, 1, 0, 1]), // duplicates across classes: distance 0 to a negative
        (vec![vec![0.5, 0.5]], vec![2]), // a single sample
    ];
    for (x, labels) in cases {
        let lt = labels_tensor(&labels);
        let shape = (x.len(), 2);
        let mut fns: Vec<(String, LossFn)> = Vec::new();
        for form in [ContrastiveForm::Distance, ContrastiveForm::SquaredDistance] {
            let lt = lt.clone();
            fns.push((
                format!("contrastive {form:?}"),
                Box::new(move |f| contrastive_loss(f, &lt, 1.0, form).unwrap()),
            ));
        }
        for rule in Mining::ALL {
            for distance in [Distance::Euclidean, Distance::SquaredEuclidean] {
                let lt = lt.clone();
                fns.push((
                    format!("triplet {rule:?} {distance:?}"),
                    Box::new(move |f| {
                        TripletLoss { margin: 0.2, mining: rule, distance }.forward(f, &lt).unwrap().loss
                    }),
                ));
            }
        }
        let ltc = lt.clone();
        fns.push((
            "center".into(),
            Box::new(move |f| {
                CenterLoss::new(4, 2, 0.5, &DEV).unwrap().loss(&f.to_dtype(DType::F32).unwrap(), &ltc).unwrap()
            }),
        ));
        for (name, f) in &fns {
            let (loss, grad) = value_and_grad(f.as_ref(), &x.concat(), shape);
            assert!(
                loss.is_finite() && grad.iter().all(|g| g.is_finite()),
                "{name} on labels {labels:?}: loss {loss}, grad {grad:?}"
            );
        }
    }
    // No valid triplet: loss exactly 0 and a zero (not missing) gradient.
    let x = Var::from_vec(vec![0.1f64, 0.2, 0.3, 0.4], (2, 2), &DEV).unwrap();
    let out = TripletLoss::facenet(0.2).forward(x.as_tensor(), &labels_tensor(&[0, 1])).unwrap();
    assert_eq!((scalar(&out.loss), out.terms), (0.0, 0));
    let g = out.loss.backward().unwrap();
    assert_eq!(flat(g.get(x.as_tensor()).expect("a zero gradient, not none")), vec![0.0; 4]);
}

#[test]
fn lsoftmax_properties() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (x, _) = random_batch(&mut rng, 7, 3, 1);
    let w: Vec<Vec<f64>> = (0..4).map(|_| (0..3).map(|_| rng.random_range(-1.0..1.0)).collect()).collect();
    let labels = labels_tensor(&[0, 1, 2, 3, 0, 1, 2]);
    let (xt, wt) = (matrix(&x), matrix(&w));
    let plain = flat(&xt.matmul(&wt.t().unwrap()).unwrap());
    // m = 1 is softmax on x·Wᵀ, for any λ.
    for lambda in [0.0, 0.7, 50.0] {
        let l1 = LSoftmax::new(wt.clone(), 1).unwrap();
        assert_close("m=1", &flat(&l1.train_logits(&xt, &labels, lambda).unwrap()), &plain, 1e-12, 1e-12);
    }
    // λ → ∞ gives the plain logits for every m.
    for m in 2..=4 {
        let l = LSoftmax::new(wt.clone(), m).unwrap();
        assert_close(&format!("λ→∞ m={m}"), &flat(&l.train_logits(&xt, &labels, 1e12).unwrap()), &plain, 1e-9, 1e-9);
        assert_close("test logits", &flat(&l.test_logits(&xt).unwrap()), &plain, 1e-12, 1e-12);
    }
    // ψ is continuous and decreasing in θ on [0, π], and equals cos θ for m = 1.
    for m in 1..=4 {
        let thetas: Vec<f64> = (0..=20_000).map(|i| i as f64 * std::f64::consts::PI / 20_000.0).collect();
        let cos: Vec<f64> = thetas.iter().map(|t| t.cos()).collect();
        let p = flat(&psi(&Tensor::from_vec(cos.clone(), cos.len(), &DEV).unwrap(), m).unwrap());
        for i in 1..p.len() {
            assert!(p[i] <= p[i - 1] + 1e-12, "ψ increases at θ = {} for m = {m}", thetas[i]);
            assert!((p[i] - p[i - 1]).abs() < 2e-3 * m as f64, "ψ jumps at θ = {} for m = {m}", thetas[i]);
        }
        assert!(
            (p[0] - 1.0).abs() < 1e-12 && (p[p.len() - 1] - (1.0 - 2.0 * m as f64)).abs() < 1e-9,
            "ψ(0) = 1 and ψ(π) = 1 − 2m"
        );
    }
    assert!(LSoftmax::new(wt.clone(), 5).is_err() && LSoftmax::new(wt, 0).is_err());
    // The authors' MNIST schedule and the rescaled one.
    let s = LambdaSchedule::authors_mnist();
    assert_eq!(s.at(0), 1000.0);
    assert!((s.at(5000) - 16.205473102404344).abs() < 1e-9);
    let r = LambdaSchedule::rescaled(1000.0, 35.0, 0.0, 1e-3, 2000);
    assert!((r.at(2000) - 1e-3).abs() < 1e-12);
}

#[test]
fn center_update_by_hand() {
    // Two samples of class 0 at (1, 0) and (3, 0), center (0, 0), α = 0.5:
    // Δc = ((0−1) + (0−3)) / (1 + 2) = −4/3 → c = 0 − 0.5·(−4/3) = 2/3. Class 1 is absent: unchanged.
    let mut c = CenterLoss::from_centers(Tensor::new(&[[0.0f64, 0.0], [5.0, 5.0]], &DEV).unwrap(), 0.5).unwrap();
    c.update(&Tensor::new(&[[1.0f64, 0.0], [3.0, 0.0]], &DEV).unwrap(), &labels_tensor(&[0, 0])).unwrap();
    assert_close("centers", &flat(c.centers()), &[2.0 / 3.0, 0.0, 5.0, 5.0], 1e-15, 1e-15);
    assert!(CenterLoss::from_centers(Tensor::new(&[[0.0f64]], &DEV).unwrap(), f64::NAN).is_err());
}

#[test]
fn losses_work_in_f32_too() {
    let x = Tensor::new(&[[0.1f32, 0.9], [0.8, 0.2], [0.15, 0.85], [0.9, 0.1]], &DEV).unwrap();
    let l = labels_tensor(&[0, 1, 0, 1]);
    assert!(scalar(&contrastive_loss(&x, &l, 1.0, ContrastiveForm::Distance).unwrap()).is_finite());
    assert!(scalar(&TripletLoss::facenet(0.2).forward(&x, &l).unwrap().loss).is_finite());
    assert!(scalar(&softmax_loss(&x, &l).unwrap()).is_finite());
    let lsm = LSoftmax::new(Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0]], &DEV).unwrap(), 4).unwrap();
    assert!(scalar(&softmax_loss(&lsm.train_logits(&x, &l, 0.0).unwrap(), &l).unwrap()).is_finite());
}

#[test]
fn mining_statistics_and_rules_on_a_hand_built_batch() {
    // 1-D points: anchors of class 0 at 0 and 1; class 1 at 0.5, 2 and 5.
    let x = Tensor::new(&[[0.0f64], [1.0], [0.5], [2.0], [5.0]], &DEV).unwrap();
    let labels = [0u32, 0, 1, 1, 1];
    let d =
        replicate::losses::distance::to_host(&replicate::losses::distance::pairwise(&x, Distance::Euclidean).unwrap())
            .unwrap();
    // SemiHard for (0, 1): d_ap = 1, negatives at 0.5, 2, 5 → the closest farther than 1 is 2 (index 3).
    let t = mine(Mining::SemiHard, &d, &labels);
    let pos = t.anchors.iter().zip(&t.positives).position(|(&a, &p)| (a, p) == (0, 1)).unwrap();
    assert_eq!(t.negatives[pos], 3);
    // HardestNegative for anchor 0: the negative at 0.5 (index 2).
    let t = mine(Mining::HardestNegative, &d, &labels);
    assert_eq!(t.negatives[t.anchors.iter().position(|&a| a == 0).unwrap()], 2);
    // Fallback: anchor 4 (at 5) with positive 2 (at 0.5): d_ap = 4.5, negatives at 0 and 1 are
    // both closer → the easiest (largest d_an), index 0.
    let t = mine(Mining::SemiHard, &d, &labels);
    let pos = t.anchors.iter().zip(&t.positives).position(|(&a, &p)| (a, p) == (4, 2)).unwrap();
    assert_eq!(t.negatives[pos], 0);
    let out = TripletLoss { margin: 0.2, mining: Mining::BatchHard, distance: Distance::Euclidean }
        .forward(&x, &labels_tensor(&labels))
        .unwrap();
    assert_eq!(out.terms, 5);
    assert!(out.active_fraction > 0.0 && out.mean_ap > 0.0 && out.mean_an > 0.0);
}
