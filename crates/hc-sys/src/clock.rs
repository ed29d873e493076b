//! The clocks: CLOCK_REALTIME is the one clock of every timestamp hc-trace
//! shows (libpcap stamps packets with it); CLOCK_MONOTONIC is the clock of
//! the kernel's trace, shifted onto it.

/// Nanoseconds since the Unix epoch on CLOCK_REALTIME.
pub fn now_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME)
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; both clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC in ns, from the closest of a few
/// back-to-back readings (pairs agree to ~30 ns here).
pub fn realtime_minus_monotonic() -> i64 {
    (0..5)
        .map(|_| {
            let a = clock_ns(libc::CLOCK_MONOTONIC);
            let r = clock_ns(libc::CLOCK_REALTIME);
            let b = clock_ns(libc::CLOCK_MONOTONIC);
            (b - a, r - (a + (b - a) / 2))
        })
        .min_by_key(|(spread, _)| *spread)
        .map_or(0, |(_, off)| off)
}

#[cfg(test)]
mod tests {
    #[test]
    fn realtime_is_after_2020_and_the_offset_is_stable() {
        assert!(super::now_ns() > 1_577_836_800_000_000_000);
        let (a, b) = (
            super::realtime_minus_monotonic(),
            super::realtime_minus_monotonic(),
        );
        assert!((a - b).abs() < 1_000_000, "{a} vs {b}");
    }
}
