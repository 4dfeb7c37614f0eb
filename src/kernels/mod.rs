//! The fast kernels: GEMM (faer, AMX), fused bias + activation, activation backward, column
//! sums, loss gradients, optimizer updates, gathers and the direct convolution.
//!
//! This is the only module allowed `unsafe`. The elementwise kernels are compiled several
//! times with different CPU features and one is chosen at run time ([`level`], the
//! `multiversion!` macro); a portable version is always compiled. Every fast kernel has a
//! plain twin in [`reference`](mod@reference), and the tests compare them at every level this
//! machine runs ([`levels`], [`with_level`]).
//!
//! | file | kernels |
//! |---|---|
//! | `mod.rs` | SIMD level detection and dispatch, [`Precision`] |
//! | `gemm.rs` | [`matmul_rows`] (faer or AMX per block of [`ROW_BLOCK`] rows, in chunks of columns), [`matmul_seq`] (one call, for per-image loops), [`par_fill_blocks`] |
//! | `elementwise.rs` | [`fast_exp`], [`bias_activation`], [`activation_backward`], [`column_sums`], [`sum_squares`], … |
//! | `loss.rs` | output gradients of MSE and BCE |
//! | `optim.rs` | AdamW and SGD updates |
//! | `gather.rs` | [`GatherTable`] (im2col / col2im) |
//! | `direct.rs` | direct channels-last convolution for inference |
//! | `dot.rs` | dense layers at inference: dot products over weight rows in one fixed order |
//! | `amx.rs` | bf16 GEMM on AMX tiles (and the bf16 packing both bf16 paths use) |
//! | `dpbf16.rs` | bf16 GEMM with AVX512-BF16 `vdpbf16ps`, where AMX is absent and it beats f32 |
//! | `int8.rs` | int8 inference: quantization and the exact i32 product (VNNI `vpdpbusd`, AVX-512BW, AVX2) |
//!
//! # Determinism
//! Work is split into blocks whose boundaries depend only on the problem size, never on the
//! number of threads, and no reduction is split across blocks. Results are therefore
//! bit-identical for any thread count.

pub mod amx;
pub mod direct;
pub mod dot;
pub mod dpbf16;
mod elementwise;
mod gather;
mod gemm;
pub mod int8;
mod loss;
mod optim;
pub mod reference;
pub mod sparse;

pub use elementwise::{
    activation_backward, bias_activation, column_sums, fast_exp, fast_ln, max_norm_rows, outer_and_back,
    plane_bias_activation, scale_in_place, sum_squares,
};
pub use gather::GatherTable;
pub use gemm::{matmul_rows, matmul_rows_with, matmul_seq, par_fill_blocks, view};
pub use loss::{bce_sigmoid_output_grad, mse_output_grad};
pub use optim::{adam_update, sgd_update};

use std::cell::Cell;
use std::sync::OnceLock;

/// Rows of a GEMM output computed as one sequential faer call. Fixed (independent of the
/// thread count) so results do not depend on it. Measured on the 2-core Xeon (AVX-512) of
/// BENCHMARKS.md, one MNIST epoch at batch 256, samples/s for {32, 64, 128, 256}:
/// 784-256-64 AE 59.0k / 65.2k / 67.8k / 54.2k; 784-1000-500-250-30 AE 9.2k / 10.6k / 11.6k / 9.4k.
pub const ROW_BLOCK: usize = 128;

/// Elements per task of the elementwise optimizer kernels (keeps each task's data in L2).
pub const ELEMENT_BLOCK: usize = 1 << 14;

/// Arithmetic of the GEMMs in training.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// f32 everywhere (the default).
    #[default]
    F32,
    /// GEMM operands rounded to bf16, products accumulated in f32 on AMX tiles or with
    /// AVX512-BF16 (where it beats f32: [`dpbf16::pays`]); weights, activations, gradients and
    /// optimizer state stay f32. Falls back to f32 GEMMs (with a note) elsewhere.
    Bf16,
}

impl Precision {
    /// Whether GEMMs really run in bf16 on this machine: on AMX-BF16 tiles, or else with
    /// AVX512-BF16 (`vdpbf16ps`), at the AVX-512 level.
    pub fn uses_bf16(self) -> bool {
        self.bf16_unit().is_some()
    }

    /// The unit that runs this precision's GEMMs here, when they run in bf16.
    pub fn bf16_unit(self) -> Option<Bf16Unit> {
        Bf16Unit::here().filter(|_| self == Precision::Bf16 && level() == Level::Avx512)
    }

    /// The precision the GEMMs really run in on this machine.
    pub fn effective(self) -> Precision {
        if self.uses_bf16() {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// When this precision cannot run here: what runs instead, and why.
    pub fn fallback_note(self) -> Option<String> {
        if self != Precision::Bf16 || self.uses_bf16() {
            return None;
        }
        let why = if (amx::available() || dpbf16::available()) && level() != Level::Avx512 {
            format!("the SIMD level is {}, and bf16 GEMMs need avx512", level().name())
        } else if dpbf16::available() {
            "this Intel CPU has AVX512-BF16 but no AMX tiles, and there bf16 GEMMs ran slower than f32 (0.3–0.7× measured, BENCHMARKS.md)".to_string()
        } else {
            "this CPU has neither AMX-BF16 tiles nor AVX512-BF16, one of which hourglass's bf16 GEMMs need".to_string()
        };
        Some(format!("precision bf16 was asked for, f32 GEMMs run instead: {why}"))
    }

    /// The kernels a run of this precision uses here, for reports: the SIMD level, and the
    /// bf16 unit when the GEMMs run in bf16.
    pub fn kernels(self) -> String {
        match self.bf16_unit() {
            Some(unit) => format!("{} + {}", level().name(), unit.name()),
            None => level().name().to_string(),
        }
    }
}

/// What runs the bf16 GEMMs: AMX tiles where the CPU has them, else AVX512-BF16.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Unit {
    /// AMX-BF16 tiles (`tdpbf16ps`), [`amx`].
    Amx,
    /// AVX512-BF16 vectors (`vdpbf16ps`), [`dpbf16`].
    Avx512Bf16,
}

impl Bf16Unit {
    /// The fastest this CPU has, if any: AMX tiles, else AVX512-BF16 where it is faster
    /// than f32 ([`dpbf16::pays`]).
    pub fn here() -> Option<Bf16Unit> {
        if amx::available() {
            Some(Bf16Unit::Amx)
        } else if dpbf16::pays() {
            Some(Bf16Unit::Avx512Bf16)
        } else {
            None
        }
    }

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Unit::Amx => "amx-bf16",
            Bf16Unit::Avx512Bf16 => "avx512-bf16",
        }
    }

    /// `dst (+)= a * b` with `b` packed, on this unit.
    pub fn matmul(self, dst: &mut [f32], a: faer::MatRef<'_, f32>, b: &amx::PackedB, accumulate: bool) {
        match self {
            Bf16Unit::Amx => amx::matmul(dst, a, b, accumulate),
            Bf16Unit::Avx512Bf16 => dpbf16::matmul(dst, a, b, accumulate),
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("unknown precision `{s}`; expected f32 or bf16")),
        }
    }
}

/// The instruction sets the elementwise kernels are compiled for, fastest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// AVX-512 (F, VL, DQ, BW) with FMA.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Plain x86-64 (or any other architecture): always available.
    Portable,
}

impl Level {
    /// Every level, fastest first.
    pub const ALL: [Level; 3] = [Level::Avx512, Level::Avx2, Level::Portable];

    /// The name used by `HOURGLASS_SIMD` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Level::Avx512 => "avx512",
            Level::Avx2 => "avx2+fma",
            Level::Portable => "portable",
        }
    }

    /// Whether this CPU runs the level's instructions.
    pub fn supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Level::Avx512 => {
                    has!("avx512f") && has!("avx512vl") && has!("avx512dq") && has!("avx512bw") && has!("fma")
                }
                Level::Avx2 => has!("avx2") && has!("fma"),
                Level::Portable => true,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Level::Portable
        }
    }
}

thread_local! {
    /// A level forced on this thread by [`with_level`].
    static FORCED: Cell<Option<Level>> = const { Cell::new(None) };
}

/// The level the kernels run at: the fastest this CPU supports, lowered by the environment
/// variable `HOURGLASS_SIMD` (`avx512`, `avx2` or `portable`; read once; it can only lower
/// the level) or, on the current thread, by [`with_level`].
pub fn level() -> Level {
    FORCED.with(Cell::get).unwrap_or_else(process_level)
}

fn process_level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = Level::ALL
            .into_iter()
            .find(|l| l.supported())
            .unwrap_or(Level::Portable);
        let cap = match std::env::var("HOURGLASS_SIMD").as_deref() {
            Ok("avx512") => Level::Avx512,
            Ok("avx2") => Level::Avx2,
            Ok("portable") => Level::Portable,
            _ => best,
        };
        best.max(cap)
    })
}

/// Every level this machine runs, fastest first (what tests compare with the reference twins).
pub fn levels() -> Vec<Level> {
    Level::ALL.into_iter().filter(|l| l.supported()).collect()
}

/// Runs `f` with every kernel at `level`, on a pool of one thread (so that every kernel call
/// of `f`, nested parallel loops included, runs on the thread that holds the setting; results
/// do not depend on the thread count anyway).
///
/// # Panics
/// If this CPU does not support `level`.
#[track_caller]
pub fn with_level<T: Send>(level: Level, f: impl FnOnce() -> T + Send) -> T {
    assert!(level.supported(), "this CPU does not run {}", level.name());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(|| {
        let before = FORCED.with(|c| c.replace(Some(level)));
        let out = f();
        FORCED.with(|c| c.set(before));
        out
    })
}

/// The instruction set the elementwise kernels run with on this machine.
pub fn simd_level() -> &'static str {
    level().name()
}

/// Compiles a function body three times (AVX-512, AVX2+FMA, portable) and picks one at run time.
/// The body must be plain safe Rust; the compiler vectorizes it for each feature set.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { generic($($arg),*) }
                match $crate::kernels::level() {
                    // SAFETY: `level()` is Avx512 only where `Level::supported` detected every
                    // feature v4 enables (`with_level` asserts it, detection checks it).
                    $crate::kernels::Level::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: as above, for avx2 and fma.
                    $crate::kernels::Level::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::kernels::Level::Portable => {}
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use multiversion;

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers of the kernel tests.
    use crate::rng::Rng;

    /// The sizes every kernel is tried on.
    pub const AWKWARD: [usize; 11] = [1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65];

    /// `n` values uniform in [-1, 1).
    pub fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect()
    }

    /// Runs `f` once at each level this machine has.
    pub fn at_every_level(f: impl Fn(super::Level) + Sync) {
        for level in super::levels() {
            super::with_level(level, || f(level));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_forced_per_call_and_restored() {
        let all = levels();
        assert_eq!(all.last(), Some(&Level::Portable));
        for l in &all {
            assert_eq!(with_level(*l, level), *l);
        }
        // Nested parallel work inside `with_level` sees the forced level.
        let seen: Vec<Level> = with_level(Level::Portable, || {
            use rayon::prelude::*;
            (0..8).into_par_iter().map(|_| level()).collect()
        });
        assert!(seen.iter().all(|&l| l == Level::Portable));
        assert_eq!(level(), process_level());
    }
}
