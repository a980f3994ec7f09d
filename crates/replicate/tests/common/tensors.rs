//! Tensor helpers of the loss tests: reference files, closeness with a message, autograd and
//! finite-difference gradients.

use candle_core::{DType, Device, Tensor, Var};
use serde_json::Value;

pub const DEV: Device = Device::Cpu;

pub fn matrix(rows: &[Vec<f64>]) -> Tensor {
    let (b, d) = (rows.len(), rows.first().map(|r| r.len()).unwrap_or(0));
    Tensor::from_vec(rows.concat(), (b, d), &DEV).unwrap()
}

pub fn labels_tensor(labels: &[u32]) -> Tensor {
    Tensor::from_vec(labels.to_vec(), labels.len(), &DEV).unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

pub fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar().unwrap()
}

/// |a − b| ≤ abs + rel·|b| elementwise, with the first offending element in the message.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= abs + rel * w.abs(),
            "{what}[{i}]: got {g}, want {w} (rel {rel}, abs {abs})\n got  {got:?}\n want {want:?}"
        );
    }
}

/// Loss value and autograd gradient of `f` at `x` (shape [b, d]).
pub fn value_and_grad(f: &dyn Fn(&Tensor) -> Tensor, x: &[f64], shape: (usize, usize)) -> (f64, Vec<f64>) {
    let v = Var::from_vec(x.to_vec(), shape, &DEV).unwrap();
    let loss = f(v.as_tensor());
    let grads = loss.backward().unwrap();
    let g = grads.get(v.as_tensor()).map(flat).unwrap_or_else(|| vec![0.0; x.len()]);
    (scalar(&loss), g)
}

/// Central finite differences of `f` at `x`.
pub fn finite_difference(f: &dyn Fn(&Tensor) -> Tensor, x: &[f64], shape: (usize, usize), h: f64) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let at = |delta: f64| {
                let mut y = x.to_vec();
                y[i] += delta;
                scalar(&f(&Tensor::from_vec(y, shape, &DEV).unwrap()))
            };
            (at(h) - at(-h)) / (2.0 * h)
        })
        .collect()
}

/// One of the vendored reference files in tests/reference (copies of ../shared/reference).
pub fn reference(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

/// The vendored copy equals the shared one where the shared one exists (a fresh clone has no
/// ../shared: then there is nothing to compare).
pub fn assert_vendored_matches_shared(file: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared = root.join("../../../shared/reference").join(file);
    if let Ok(theirs) = std::fs::read(&shared) {
        let ours = std::fs::read(root.join("tests/reference").join(file)).unwrap();
        assert!(ours == theirs, "tests/reference/{file} differs from {}: copy the new version in", shared.display());
    }
}

pub fn rows(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
}

pub fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

pub fn ints(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The reference files' agreement in float64: values, gradients, and absolute near zero.
pub const VALUE_REL: f64 = 1e-9;
pub const GRAD_REL: f64 = 1e-5;
pub const ABS: f64 = 1e-9;

/// ψ_m(θ) of L-Softmax and SphereFace from cos θ, by acos: an oracle for the tensor version.
pub fn oracle_psi(cos: f64, m: usize) -> f64 {
    let theta = cos.clamp(-1.0, 1.0).acos();
    let k = ((theta * m as f64 / std::f64::consts::PI).floor() as usize).min(m - 1);
    let sign = if k.is_multiple_of(2) { 1.0 } else { -1.0 };
    sign * (m as f64 * theta).cos() - 2.0 * k as f64
}
