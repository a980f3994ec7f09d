//! Which vector instructions the kernels' matrix products use: AVX-512 where the CPU has it,
//! else AVX2 with FMA, else scalar code. `REPLICATE_ISA=avx2` (or `scalar`) forces a narrower
//! path at run time, so that one build tests every path the machine can run. The products call
//! gemm's microkernels for the chosen path directly (gemm itself always takes the widest);
//! candle's own matrix products (the fc layer and the heads) still dispatch on their own.

use std::sync::OnceLock;

use gemm_common::gemm::gemm_basic_generic;
use gemm_common::Parallelism;

/// A vector instruction set the matrix products can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Avx512,
    Avx2,
    Scalar,
}

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Scalar => "scalar",
        }
    }

    /// The widest this CPU runs.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Scalar
    }

    /// Whether a CPU whose widest path is `self` runs `other`.
    pub fn runs(self, other: Isa) -> bool {
        other.rank() <= self.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Isa::Scalar => 0,
            Isa::Avx2 => 1,
            Isa::Avx512 => 2,
        }
    }

    /// The path `REPLICATE_ISA` asks for (the detected one when unset or empty), or why it cannot
    /// be had here.
    pub fn from_env() -> Result<Isa, String> {
        let detected = Isa::detected();
        let wanted = match std::env::var("REPLICATE_ISA").unwrap_or_default().trim() {
            "" => return Ok(detected),
            "avx512" => Isa::Avx512,
            "avx2" => Isa::Avx2,
            "scalar" => Isa::Scalar,
            other => return Err(format!("REPLICATE_ISA={other:?} is not one of avx512, avx2, scalar (or unset)")),
        };
        if !detected.runs(wanted) {
            return Err(format!(
                "REPLICATE_ISA={} asks for more than this CPU has (its widest path: {})",
                wanted.name(),
                detected.name()
            ));
        }
        Ok(wanted)
    }
}

/// The path the kernels use in this process: `REPLICATE_ISA`'s, else the detected one. A bad
/// `REPLICATE_ISA` falls back to the detected path here; the command line refuses it before any
/// work ([`Isa::from_env`]).
pub fn isa() -> Isa {
    static CHOSEN: OnceLock<Isa> = OnceLock::new();
    *CHOSEN.get_or_init(|| Isa::from_env().unwrap_or_else(|_| Isa::detected()))
}

/// The rows and columns (MR, NR) of gemm's microkernel on the `isa` path, the one [`gemm_f32`]
/// calls: they set its depth block for large products.
pub(crate) fn microkernel_shape(isa: Isa) -> (usize, usize) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            use gemm_f32::microkernel::avx512f::f32 as ukr;
            (ukr::MR_DIV_N * 16, ukr::NR)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            use gemm_f32::microkernel::fma::f32 as ukr;
            (ukr::MR_DIV_N * 8, ukr::NR)
        }
        _ => {
            use gemm_f32::microkernel::scalar::f32 as ukr;
            (ukr::MR_DIV_N, ukr::NR)
        }
    }
}

/// dst[m×n] (+)= lhs[m×k] · rhs[k×n] on the `isa` path; strides are in elements and positive,
/// `cs` along a row and `rs` down a column, as gemm takes them.
///
/// # Safety
/// Every element the sizes and strides address must lie in its allocation, `dst` must alias
/// neither input, and this CPU must run `isa` (see [`Isa::detected`]).
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_f32(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_cs: isize,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
) {
    // gemm's microkernels want a column-major destination: a row-major product is computed as
    // its transpose, as gemm::gemm does.
    let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs < dst_rs {
        (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
    } else {
        (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
    };
    macro_rules! on {
        ($simd:ty, $kernels:path, $lanes:expr) => {{
            use $kernels as ukr;
            // SAFETY: the caller's contract, which includes a CPU that runs this path.
            unsafe {
                gemm_basic_generic::<
                    _,
                    f32,
                    $lanes,
                    { ukr::MR_DIV_N * $lanes },
                    { ukr::NR },
                    { ukr::MR_DIV_N },
                    { ukr::H_M },
                    { ukr::H_N },
                >(
                    <$simd as gemm_common::simd::MixedSimd<f32, f32, f32, f32>>::try_new().expect("checked by isa()"),
                    m,
                    n,
                    k,
                    dst,
                    dst_cs,
                    dst_rs,
                    accumulate,
                    lhs,
                    lhs_cs,
                    lhs_rs,
                    rhs,
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    |a, b, c| a * b + c,
                    &ukr::UKR,
                    &ukr::H_UKR,
                    false,
                    Parallelism::None,
                )
            }
        }};
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => on!(gemm_common::simd::V4, gemm_f32::microkernel::avx512f::f32, 16),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => on!(gemm_common::simd::V3, gemm_f32::microkernel::fma::f32, 8),
        _ => on!(gemm_common::simd::Scalar, gemm_f32::microkernel::scalar::f32, 1),
    }
}
