//! Durations in words.

use crate::model::Nanos;
use std::time::Duration;

/// Nanoseconds as a short "12.3 ms" / "0.040 ms".
pub fn ms(ns: Nanos) -> String {
    let v = ns as f64 / 1e6;
    if v.abs() >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.3} ms")
    }
}

/// A duration as a user gave it: "3 s", "0.5 s"; "-" for none.
pub fn secs(t: Option<Duration>) -> String {
    t.map_or_else(|| "-".into(), |d| format!("{} s", d.as_secs_f64()))
}
