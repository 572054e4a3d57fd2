//! The `bench` imports of sightglass-style benchmarks: `start` and `end` (no parameters,
//! no results) mark the region a benchmark measures.
//!
//! Each call reads the kernel's clock ([`crate::kernel::Kernel::now_ns`]: the monotonic
//! clock, or the logical clock in deterministic mode) and records it into the calling
//! process ([`BenchTimes`]). A `start` opens an interval (a second `start` moves its
//! beginning), an `end` closes the open one; an `end` with no open interval records
//! nothing. A process keeps at most [`MAX_INTERVALS`] intervals and counts the ones past
//! that, so that a program calling the pair in a loop cannot grow the kernel's memory.
//! An embedder reads them with [`crate::process::Process::bench_intervals`]; `sim run
//! --bench-times` prints them ([`crate::boot::image::KernelOptions::bench_times`]).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::KernelHal;
use crate::process::Process;
use crate::wasm::env::FuncType;
use crate::wasm::runtime::HostCallback;

/// The import module of the benchmark markers.
pub const MODULE: &str = "bench";

/// The intervals a process keeps; later ones are only counted.
pub const MAX_INTERVALS: usize = 4096;

/// One measured region: the clock at `bench.start` and at the `bench.end` that closed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchInterval {
    /// The kernel's clock at `start`, nanoseconds.
    pub start_ns: u64,
    /// The kernel's clock at `end`, nanoseconds.
    pub end_ns: u64,
}

impl BenchInterval {
    /// The interval's length in nanoseconds.
    #[must_use]
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// A process's benchmark marks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BenchTimes {
    /// The clock at the `start` not yet closed by an `end`.
    open: Option<u64>,
    /// The closed intervals, in order, at most [`MAX_INTERVALS`].
    intervals: Vec<BenchInterval>,
    /// Intervals closed after [`MAX_INTERVALS`] were kept.
    dropped: u64,
}

impl BenchTimes {
    /// `bench.start` at `now_ns`.
    pub fn start(&mut self, now_ns: u64) {
        self.open = Some(now_ns);
    }

    /// `bench.end` at `now_ns`: closes the open interval, if any.
    pub fn end(&mut self, now_ns: u64) {
        let Some(start_ns) = self.open.take() else {
            return;
        };
        if self.intervals.len() < MAX_INTERVALS {
            self.intervals.push(BenchInterval {
                start_ns,
                end_ns: now_ns,
            });
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// The closed intervals, in the order they closed.
    #[must_use]
    pub fn intervals(&self) -> &[BenchInterval] {
        &self.intervals
    }

    /// Intervals closed past [`MAX_INTERVALS`], not kept.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The lines `sim run --bench-times` prints on standard error: `bench: N ns` per
    /// interval, then `bench: M more intervals not kept` when some were dropped.
    #[must_use]
    pub fn report_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .intervals
            .iter()
            .map(|interval| format!("bench: {} ns", interval.duration_ns()))
            .collect();
        if self.dropped > 0 {
            lines.push(format!("bench: {} more intervals not kept", self.dropped));
        }
        lines
    }
}

/// The marker called `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Start,
    End,
}

impl Marker {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "start" => Some(Self::Start),
            "end" => Some(Self::End),
            _ => None,
        }
    }
}

/// The type of `bench.name`, if it is a marker: `[] -> []`.
pub fn function_type(name: &str) -> Option<FuncType> {
    Marker::from_name(name).map(|_| FuncType {
        params: Box::new([]),
        results: Box::new([]),
    })
}

/// The host function of `bench.name` for `process`, if it is a marker.
pub(crate) fn host_function<H: KernelHal>(
    name: &str,
    process: &'static Process<H>,
) -> Option<HostCallback<'static>> {
    let marker = Marker::from_name(name)?;
    Some(Box::new(move |_caller, args, results| {
        let now = process.kernel().now_ns();
        let trace_name = match marker {
            Marker::Start => {
                process.bench_times().start(now);
                "bench.start"
            }
            Marker::End => {
                process.bench_times().end(now);
                "bench.end"
            }
        };
        super::after_syscall(process, trace_name, args, results, false);
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_closes_the_open_start_and_an_unmatched_end_records_nothing() {
        let mut times = BenchTimes::default();
        times.end(5);
        times.start(10);
        times.start(12);
        times.end(40);
        times.end(50);
        assert_eq!(
            times.intervals(),
            &[BenchInterval {
                start_ns: 12,
                end_ns: 40
            }]
        );
        assert_eq!(times.report_lines(), ["bench: 28 ns"]);
    }

    #[test]
    fn intervals_past_the_limit_are_counted_not_kept() {
        let mut times = BenchTimes::default();
        for tick in 0..(MAX_INTERVALS as u64 + 3) {
            times.start(tick);
            times.end(tick + 1);
        }
        assert_eq!(times.intervals().len(), MAX_INTERVALS);
        assert_eq!(times.dropped(), 3);
        assert_eq!(
            times.report_lines().last().map(String::as_str),
            Some("bench: 3 more intervals not kept")
        );
    }

    #[test]
    fn only_start_and_end_are_markers() {
        assert!(function_type("start").is_some());
        assert!(function_type("end").is_some());
        assert!(function_type("stop").is_none());
    }
}
