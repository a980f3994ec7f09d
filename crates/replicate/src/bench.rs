//! `replicate bench`: training and inference speed of LeNets++ and of the face backbone with
//! candle's ops and with the fast CPU kernels, peak memory, and the time of the triplet mining
//! rules on FaceNet's batch.
//! A benchmark prints numbers; it asserts nothing.

use std::time::Instant;

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::Rng;

use crate::losses::{Distance, Mining, TripletLoss};
use crate::nn::{BackboneConfig, HeadKind, Kernels, Model};
use crate::optim::{Sgd, SgdConfig};
use crate::util::rng_for;

/// Median seconds of `runs` calls of `f` after `warmup` calls.
fn median_seconds(warmup: usize, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Peak resident memory of this process so far (VmHWM), in MiB, where /proc exists.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One row of the speed table.
#[derive(Debug, Clone)]
pub struct SpeedRow {
    pub width: f64,
    pub kernels: Kernels,
    pub train_images_per_second: f64,
    pub inference_images_per_second: f64,
    pub train_gflops: f64,
}

/// Training (forward, backward, SGD step) and inference images/s of LeNets++ at `width`.
pub fn lenetspp_speed(width: f64, kernels: Kernels, batch: usize, runs: usize) -> Result<SpeedRow> {
    backbone_speed(BackboneConfig::lenetspp(width, 2), 10, kernels, batch, runs)
}

/// The face backbone as deepid2-lfw's quick profile trains it: 32×32 faces, width 1.0, a 128-D
/// feature, a classifier over View 1's 1,184 training people.
pub fn face_config() -> (BackboneConfig, usize) {
    (BackboneConfig::face_cnn(1.0, 128, 32), 1_184)
}

/// Training and inference images/s of any backbone with a classifier over `classes`.
pub fn backbone_speed(
    config: BackboneConfig,
    classes: usize,
    kernels: Kernels,
    batch: usize,
    runs: usize,
) -> Result<SpeedRow> {
    let device = Device::Cpu;
    let model = Model::new(config, HeadKind::Linear { classes }, 1, kernels, &device)?;
    let side = config.plan().input_side;
    let mut rng = rng_for(1, "bench");
    let x = Tensor::from_vec(
        (0..batch * side * side).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>(),
        (batch, 1, side, side),
        &device,
    )?;
    let y = Tensor::from_vec((0..batch).map(|i| (i % classes) as u32).collect::<Vec<_>>(), batch, &device)?;
    let mut sgd = Sgd::new(SgdConfig { momentum: 0.9, weight_decay: 5e-4, max_grad_norm: 0.0 }, &model.params);
    let train = median_seconds(2, runs, || {
        let out = model.forward(&x)?;
        let loss = crate::losses::softmax_loss(out.logits.as_ref().expect("classifier"), &y)?;
        let grads = loss.backward()?;
        sgd.step(&model.params, &grads, 1e-4)?;
        Ok(())
    })?;
    let infer = median_seconds(2, runs, || {
        model.forward(&x)?.features.sum_all()?.to_scalar::<f32>()?;
        Ok(())
    })?;
    // Forward, input gradient and weight gradient: about 3 × 2 × MACs per image.
    let flops = 6.0 * config.forward_macs() as f64 * batch as f64;
    Ok(SpeedRow {
        width: config.width,
        kernels,
        train_images_per_second: batch as f64 / train,
        inference_images_per_second: batch as f64 / infer,
        train_gflops: flops / train / 1e9,
    })
}

/// Median milliseconds of one TripletLoss forward + backward on `batch` × `dim` embeddings
/// drawn from `classes` classes.
pub fn mining_ms(mining: Mining, batch: usize, dim: usize, classes: usize) -> Result<f64> {
    let device = Device::Cpu;
    let mut rng = rng_for(2, "bench-mining");
    let e = Tensor::from_vec(
        (0..batch * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>(),
        (batch, dim),
        &device,
    )?;
    let e = crate::nn::l2_normalize(&e)?;
    let var = candle_core::Var::from_tensor(&e)?;
    let labels = Tensor::from_vec((0..batch).map(|i| (i % classes) as u32).collect::<Vec<_>>(), batch, &device)?;
    let loss = TripletLoss { margin: 0.2, mining, distance: Distance::SquaredEuclidean };
    Ok(1e3
        * median_seconds(1, 5, || {
            let out = loss.forward(var.as_tensor(), &labels)?;
            out.loss.backward()?;
            Ok(())
        })?)
}

/// The machine a benchmark ran on: CPU model, the instruction set the kernels use, threads.
pub fn machine() -> String {
    let isa = crate::nn::kernels::isa::isa();
    let detected = crate::nn::kernels::isa::Isa::detected();
    let forced = if isa == detected {
        String::new()
    } else {
        format!(", forced by REPLICATE_ISA (widest here: {})", detected.name())
    };
    format!(
        "CPU: {} ({}); kernels' matrix products: {}{forced}; {} threads",
        crate::util::cpu_model(),
        crate::util::cpu_features(),
        isa.name(),
        rayon::current_num_threads()
    )
}

/// Prints the benchmark tables.
pub fn run(quick: bool) -> Result<()> {
    let runs = if quick { 3 } else { 7 };
    println!("LeNets++ (2-D feature, batch 128, f32, {} threads)", rayon::current_num_threads());
    println!("{:<7} {:<8} {:>12} {:>12} {:>10}", "width", "kernels", "train img/s", "infer img/s", "GFLOP/s");
    let mut rows = Vec::new();
    for width in [1.0, 0.5] {
        for kernels in [Kernels::Candle, Kernels::Fast] {
            let r = lenetspp_speed(width, kernels, 128, if kernels == Kernels::Candle { runs.min(3) } else { runs })?;
            println!(
                "{:<7} {:<8} {:>12.1} {:>12.1} {:>10.1}",
                width,
                format!("{:?}", kernels).to_lowercase(),
                r.train_images_per_second,
                r.inference_images_per_second,
                r.train_gflops
            );
            rows.push(r);
        }
    }
    for width in [1.0, 0.5] {
        let get = |k: Kernels| rows.iter().find(|r| r.width == width && r.kernels == k).expect("measured");
        let (c, f) = (get(Kernels::Candle), get(Kernels::Fast));
        println!(
            "width {width}: fast/candle train {:.2}x, inference {:.2}x",
            f.train_images_per_second / c.train_images_per_second,
            f.inference_images_per_second / c.inference_images_per_second
        );
    }
    let (face, classes) = face_config();
    println!();
    println!(
        "Face backbone (deepid2-lfw's quick setting: 32×32 faces, 3×3 kernels, width 1.0, 128-D feature, {classes} classes, batch 128)"
    );
    println!("{:<8} {:>12} {:>12} {:>10}", "kernels", "train img/s", "infer img/s", "GFLOP/s");
    let mut face_rows = Vec::new();
    for kernels in [Kernels::Candle, Kernels::Fast] {
        let r =
            backbone_speed(face, classes, kernels, 128, if kernels == Kernels::Candle { runs.min(3) } else { runs })?;
        println!(
            "{:<8} {:>12.1} {:>12.1} {:>10.1}",
            format!("{:?}", kernels).to_lowercase(),
            r.train_images_per_second,
            r.inference_images_per_second,
            r.train_gflops
        );
        face_rows.push(r);
    }
    println!(
        "face backbone: fast/candle train {:.2}x, inference {:.2}x",
        face_rows[1].train_images_per_second / face_rows[0].train_images_per_second,
        face_rows[1].inference_images_per_second / face_rows[0].inference_images_per_second
    );
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory of this process (all of the above): {mib:.0} MiB");
    }
    println!();
    println!(
        "Triplet mining on FaceNet's batch: 1800 × 128 L2-normalised embeddings, 45 classes × 40 (forward + backward)"
    );
    for mining in [Mining::SemiHard, Mining::BatchHard, Mining::HardestNegative] {
        println!("{:<18} {:>8.1} ms", mining.name(), mining_ms(mining, 1800, 128, 45)?);
    }
    Ok(())
}

/// Per-layer times (ms) of the fast kernels at batch 128 (NHWC): forward, input gradient (not for
/// the first layer, whose input is the images), weight gradient.
pub fn layer_breakdown(width: f64) -> Result<()> {
    let device = Device::Cpu;
    let c = BackboneConfig::lenetspp(width, 2).channels();
    let layers =
        [(1, c[0], 28), (c[0], c[0], 28), (c[0], c[1], 14), (c[1], c[1], 14), (c[1], c[2], 7), (c[2], c[2], 7)];
    let mut rng = rng_for(3, "bench-layers");
    let mut rand = |shape: &[usize]| -> Result<Tensor> {
        Ok(Tensor::from_vec(
            (0..shape.iter().product::<usize>()).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<_>>(),
            shape,
            &device,
        )?)
    };
    let peak = crate::nn::kernels::measured_peak_gflops();
    println!(
        "practical peak: {peak:.1} GFLOP/s ({} threads each multiplying 512×512 matrices on this path)",
        rayon::current_num_threads()
    );
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "layer", "fwd ms", "dx ms", "dw ms", "prelu ms", "GFLOP/s", "of peak"
    );
    for (cin, cout, side) in layers {
        let x = candle_core::Var::from_tensor(&rand(&[128, side, side, cin])?)?;
        let w = candle_core::Var::from_tensor(&rand(&[cout, cin, 5, 5])?)?;
        let b = candle_core::Var::from_tensor(&rand(&[cout])?)?;
        let slope = candle_core::Var::from_tensor(&rand(&[cout])?)?;
        let fwd = median_seconds(1, 5, || {
            crate::nn::kernels::conv2d_nhwc(x.as_tensor(), w.as_tensor(), b.as_tensor(), 2)?;
            Ok(())
        })?;
        let y = crate::nn::kernels::conv2d_nhwc(x.as_tensor(), w.as_tensor(), b.as_tensor(), 2)?;
        let prelu = median_seconds(1, 5, || {
            crate::nn::kernels::prelu_channels_last(&y, slope.as_tensor())?;
            Ok(())
        })?;
        // Training never asks for the images' gradient, so the first layer is timed without it.
        let needs_dx = cin > 1;
        let both = if needs_dx {
            median_seconds(1, 5, || {
                crate::nn::kernels::conv2d_nhwc(x.as_tensor(), w.as_tensor(), b.as_tensor(), 2)?
                    .sum_all()?
                    .backward()?;
                Ok(())
            })?
        } else {
            f64::NAN
        };
        let xd = x.as_tensor().detach();
        let dw_only = median_seconds(1, 5, || {
            crate::nn::kernels::conv2d_nhwc(&xd, w.as_tensor(), b.as_tensor(), 2)?.sum_all()?.backward()?;
            Ok(())
        })?;
        let macs = (128 * cin * cout * 25 * side * side) as f64;
        let (dx, dw) = (both - dw_only, dw_only - fwd);
        let (flops, seconds) = if needs_dx { (6.0 * macs, both) } else { (4.0 * macs, dw_only) };
        let gflops = flops / seconds / 1e9;
        let dx = if needs_dx { format!("{:.1}", dx * 1e3) } else { "-".into() };
        println!(
            "{:<16} {:>9.1} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>6.0}%",
            format!("{cin}->{cout} {side}x{side}"),
            fwd * 1e3,
            dx,
            dw * 1e3,
            prelu * 1e3,
            gflops,
            100.0 * gflops / peak
        );
    }
    Ok(())
}
