//! Resource bounds, as one policy: sizes that multiply are multiplied with overflow checks,
//! and what a file or a setting asks to allocate is held to the machine's memory before
//! anything is allocated, so a hostile header or an absurd flag gets an error, never an abort.
//!
//! The memory limit is the smallest of the machine's memory, the cgroup's `memory.max` and the
//! process's address-space limit; `HOURGLASS_MEMORY_LIMIT` (bytes, or with a K/M/G/T suffix)
//! overrides it.

use crate::error::{Error, Result};
use std::sync::OnceLock;

/// The environment variable that overrides the memory limit.
pub const MEMORY_ENV: &str = "HOURGLASS_MEMORY_LIMIT";

/// Used when the machine's memory cannot be read.
const FALLBACK_LIMIT: u64 = 16 << 30;

/// The most threads a pool may have: four per core, and never fewer than 64.
pub fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (4 * cores).max(64)
}

/// The most bytes one dataset, model or decoded file may take.
pub fn memory_limit() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        if let Some(v) = std::env::var(MEMORY_ENV).ok().and_then(|s| parse_size(&s)) {
            return v;
        }
        [machine_memory(), cgroup_memory(), address_space_limit()]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(FALLBACK_LIMIT)
    })
}

/// `12345`, `512K`, `8M`, `16G`, `1T` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix("iB").or_else(|| s.strip_suffix('B')).unwrap_or(s);
    let (digits, shift) = match s.chars().last()?.to_ascii_uppercase() {
        'K' => (&s[..s.len() - 1], 10),
        'M' => (&s[..s.len() - 1], 20),
        'G' => (&s[..s.len() - 1], 30),
        'T' => (&s[..s.len() - 1], 40),
        _ => (s, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

fn cgroup_memory() -> Option<u64> {
    std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    // "Max address space  <soft>  <hard>  bytes": the soft limit, unless unlimited.
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Bytes for people: `3.7 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The product of `dims`, `None` when it overflows.
pub fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &b| a.checked_mul(b))
}

/// The product of `dims`, or [`Error::TooLarge`] naming `what` when it overflows.
///
/// # Errors
/// As above.
pub fn product(dims: &[usize], what: impl std::fmt::Display) -> Result<usize> {
    checked_product(dims).ok_or_else(|| Error::TooLarge {
        what: what.to_string(),
        detail: format!(
            "{} overflows",
            dims.iter().map(usize::to_string).collect::<Vec<_>>().join(" x ")
        ),
    })
}

/// Checks that `count` values of `bytes_each` bytes fit within [`memory_limit`].
///
/// # Errors
/// [`Error::TooLarge`] naming `what`, with the bytes needed and the limit.
pub fn check_alloc(count: usize, bytes_each: usize, what: impl std::fmt::Display) -> Result<()> {
    check_alloc_within(count, bytes_each, memory_limit(), what)
}

/// [`check_alloc`] against a given limit.
///
/// # Errors
/// As [`check_alloc`].
pub fn check_alloc_within(count: usize, bytes_each: usize, limit: u64, what: impl std::fmt::Display) -> Result<()> {
    let need = (count as u128) * (bytes_each as u128);
    if need > limit as u128 {
        return Err(Error::TooLarge {
            what: what.to_string(),
            detail: format!(
                "it needs {}, more than the memory limit of {} (set {MEMORY_ENV} to change it)",
                human(u64::try_from(need).unwrap_or(u64::MAX)),
                human(limit)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_size("12345"), Some(12345));
        assert_eq!(parse_size("8M"), Some(8 << 20));
        assert_eq!(parse_size("16GiB"), Some(16 << 30));
        assert_eq!(parse_size("2 g"), Some(2 << 30));
        assert_eq!(parse_size("1T"), Some(1 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn products_and_allocations_are_checked() {
        assert_eq!(product(&[3, 4, 5], "x").unwrap(), 60);
        let e = product(&[usize::MAX / 2, 3], "the image").unwrap_err();
        assert!(
            e.to_string().contains("the image is too large") && e.to_string().contains("overflows"),
            "{e}"
        );
        assert!(check_alloc_within(1000, 4, 4000, "a").is_ok());
        let e = check_alloc_within(1001, 4, 4000, "the model's weights").unwrap_err();
        assert!(
            e.to_string().contains("needs 3.9 KiB") && e.to_string().contains(MEMORY_ENV),
            "{e}"
        );
        assert!(check_alloc_within(usize::MAX, usize::MAX, u64::MAX, "z").is_err());
        assert!(memory_limit() > 0 && max_threads() >= 64);
    }
}
