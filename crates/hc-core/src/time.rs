//! Durations in words.

use crate::model::Nanos;
use std::time::Duration;

/// Nanoseconds as a short "12.3 ms" / "0.040 ms".
pub fn ms(ns: Nanos) -> String {
    let mut s = if ns.unsigned_abs() >= 10_000_000 {
        ms_fixed(ns, 1)
    } else {
        ms_fixed(ns, 3)
    };
    s.push_str(" ms");
    s
}

/// Nanoseconds in milliseconds with `decimals` digits (0 to 6): exactly
/// what `format!("{:.decimals$}", ns as f64 / 1e6)` writes, in integers
/// (the timeline writes a few of these per line). A value exactly half
/// way, and a negative one, are left to the float formatting itself, so
/// the result never differs from it.
pub fn ms_fixed(ns: Nanos, decimals: u32) -> String {
    let decimals = decimals.min(6);
    let unit = 10i64.pow(6 - decimals);
    let (q, r) = (ns.div_euclid(unit), ns.rem_euclid(unit));
    if ns < 0 || 2 * r == unit {
        return format!("{:.*}", decimals as usize, ns as f64 / 1e6);
    }
    let q = if 2 * r > unit { q + 1 } else { q };
    let scale = 10i64.pow(decimals);
    let (whole, frac) = (q / scale, q % scale);
    if decimals == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:0width$}", width = decimals as usize)
    }
}

/// A duration as a user gave it: "3 s", "0.5 s"; "-" for none.
pub fn secs(t: Option<Duration>) -> String {
    t.map_or_else(|| "-".into(), |d| format!("{} s", d.as_secs_f64()))
}

#[cfg(test)]
mod ms_tests {
    use super::*;

    #[test]
    fn fixed_milliseconds_are_what_the_float_formatting_writes() {
        let float = |ns: Nanos, d: u32| format!("{:.*}", d as usize, ns as f64 / 1e6);
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut checked = 0;
        for _ in 0..20_000 {
            // Up to ~3 hours, and exact ties and near ties on purpose.
            let base = (next() % 10_000_000_000_000) as Nanos;
            for ns in [
                base,
                base / 1000 * 1000 + 500,
                base / 100_000 * 100_000 + 50_000,
                base % 1000,
                -(base % 5_000_000),
                999_999_500,
                9_999_950,
            ] {
                for d in 0..=6 {
                    assert_eq!(ms_fixed(ns, d), float(ns, d), "{ns} ns, {d} decimals");
                    checked += 1;
                }
            }
        }
        assert!(checked > 900_000);
        // Negative control: the helper would be wrong if it cut instead of rounding.
        assert_ne!(ms_fixed(1_999_600, 3), "1.999");
        assert_eq!(ms(12_345_678), "12.3 ms");
        assert_eq!(ms(40_000), "0.040 ms");
        assert_eq!(ms(-12_345_678), "-12.3 ms");
    }
}
