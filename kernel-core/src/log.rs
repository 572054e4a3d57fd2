//! The kernel's logs: kernel-core logs through `tracing` everywhere (spans per process and
//! per syscall; events for scheduling, preemption, spawns, exits, traps and compiles).
//!
//! Hosted, `sim` installs `tracing-subscriber` with an `EnvFilter` from `SIM_LOG`. Under
//! QEMU there is no such subscriber: the boot image carries a filter (`sim qemu --log
//! FILTER`), and [`install`] sets up [`ConsoleSubscriber`], a small `no_std` subscriber
//! implementing the useful subset of the `EnvFilter` syntax ([`LogFilter`]: `target=level`
//! directives and a default level) that prints each event on the console's error stream.
//!
//! The cost when a log is disabled is one cached check at the call site: `tracing` asks
//! the subscriber once per call site whether it is ever interested
//! ([`Subscriber::register_callsite`]), and nothing is formatted for a disabled event.
//! [`clock_ns`] gives kernel code that has no clock of its own (the compiler) the time,
//! for the durations it logs.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::hal::{Clock, Console};

/// A log filter: the subset of `tracing-subscriber`'s `EnvFilter` syntax the kernel
/// implements: comma-separated directives, each `LEVEL` (the default for every target),
/// `TARGET` (everything from that target) or `TARGET=LEVEL`, where `LEVEL` is `off`,
/// `error`, `warn`, `info`, `debug` or `trace`. A target matches itself and the modules
/// below it (`kernel_core` matches `kernel_core::sched`); the longest matching target wins;
/// without a default, other targets are off (as with `EnvFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    default: LevelFilter,
    directives: Vec<(String, LevelFilter)>,
}

impl LogFilter {
    /// Parses `text`.
    ///
    /// # Errors
    /// A message naming the directive the kernel does not understand (span and field
    /// filters, `[...]` and `{...}`, are not supported).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut filter = Self {
            default: LevelFilter::OFF,
            directives: Vec::new(),
        };
        for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let (target, level) = match directive.split_once('=') {
                Some((target, level)) => (Some(target.trim()), parse_level(level.trim())),
                None => match parse_level(directive) {
                    Some(level) => (None, Some(level)),
                    None => (Some(directive), Some(LevelFilter::TRACE)),
                },
            };
            let Some(level) = level else {
                return Err(format!(
                    "`{}`: the level must be off, error, warn, info, debug or trace",
                    directive.escape_debug()
                ));
            };
            match target {
                None => filter.default = level,
                Some(target) => {
                    let valid = !target.is_empty()
                        && target
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-');
                    if !valid {
                        return Err(format!(
                            "`{}`: only `target=level` directives and a default level are \
                             supported (no span or field filters)",
                            directive.escape_debug()
                        ));
                    }
                    filter.directives.retain(|(existing, _)| existing != target);
                    filter.directives.push((target.to_string(), level));
                }
            }
        }
        Ok(filter)
    }

    /// The most verbose level `target` is logged at.
    #[must_use]
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.directives
            .iter()
            .filter(|(prefix, _)| {
                target
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, level)| *level)
    }

    /// Whether an event or span of `level` from `target` is logged.
    #[must_use]
    pub fn enabled(&self, target: &str, level: Level) -> bool {
        level <= self.level_for(target)
    }

    /// The most verbose level of any directive.
    #[must_use]
    pub fn max_level(&self) -> LevelFilter {
        self.directives
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, core::cmp::max)
    }
}

/// A level by name, as `EnvFilter` spells it (any case).
fn parse_level(text: &str) -> Option<LevelFilter> {
    let levels = [
        ("off", LevelFilter::OFF),
        ("error", LevelFilter::ERROR),
        ("warn", LevelFilter::WARN),
        ("info", LevelFilter::INFO),
        ("debug", LevelFilter::DEBUG),
        ("trace", LevelFilter::TRACE),
    ];
    levels
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, level)| level)
}

/// A subscriber printing every enabled event as one line on the console's error stream:
/// `[SECONDS] LEVEL target: message field=value ...`; a span is printed when it is made
/// (`LEVEL target: span name field=value ...`), as the kernel does not track which span
/// each CPU is in.
pub struct ConsoleSubscriber<H: Console + Clock + Send + Sync + 'static> {
    hal: &'static H,
    filter: LogFilter,
    next_span: AtomicU64,
}

impl<H: Console + Clock + Send + Sync + 'static> ConsoleSubscriber<H> {
    /// A subscriber printing what `filter` enables through `hal`.
    pub fn new(hal: &'static H, filter: LogFilter) -> Self {
        Self {
            hal,
            filter,
            next_span: AtomicU64::new(1),
        }
    }

    fn print(&self, metadata: &Metadata<'_>, what: &str, fields: &str) {
        let now = self.hal.now_ns();
        let line = format!(
            "[{:5}.{:06}] {:>5} {}: {what}{fields}\n",
            now / 1_000_000_000,
            now % 1_000_000_000 / 1000,
            metadata.level(),
            metadata.target()
        );
        self.hal.write_error_bytes(line.as_bytes());
    }
}

impl<H: Console + Clock + Send + Sync + 'static> Subscriber for ConsoleSubscriber<H> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.target(), *metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.filter.max_level())
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let metadata = span.metadata();
        self.print(metadata, &format!("span {}", metadata.name()), &fields.text);
        // Ids must not be 0; 2^64 spans are not made in a boot.
        Id::from_u64(self.next_span.fetch_add(1, Ordering::Relaxed).max(1))
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.message.take().unwrap_or_default();
        self.print(event.metadata(), &message, &fields.text);
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// Collects an event's message and its other fields as ` name=value`.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    text: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}

/// Installs a [`ConsoleSubscriber`] with `filter` as the global default. Does nothing when
/// a subscriber is installed already (hosted, `sim`'s).
pub fn install<H: Console + Clock + Send + Sync + 'static>(hal: &'static H, filter: LogFilter) {
    let subscriber = ConsoleSubscriber::new(hal, filter);
    let _ = tracing::dispatcher::set_global_default(tracing::Dispatch::new(subscriber));
}

/// A HAL (type-erased) and the function reading its clock.
type ClockReader = (*const (), fn(*const ()) -> u64);

/// The clock [`clock_ns`] reads: a leaked [`ClockReader`], or null.
static CLOCK: AtomicPtr<ClockReader> = AtomicPtr::new(core::ptr::null_mut());

/// Reads the clock of the HAL of type `H` at `hal`.
fn read_clock<H: Clock>(hal: *const ()) -> u64 {
    // Safety: `set_clock` stores only a `&'static H` with this reader.
    unsafe { (*hal.cast::<H>()).now_ns() }
}

/// Makes `hal`'s clock the one [`clock_ns`] reads (the boot path does, once).
pub fn set_clock<H: Clock + Sync + 'static>(hal: &'static H) {
    let pair = Box::into_raw(Box::new((
        core::ptr::from_ref(hal).cast::<()>(),
        read_clock::<H> as fn(*const ()) -> u64,
    )));
    // A replaced pair may still be read by another CPU: it is leaked (a boot sets the
    // clock once; a benchmark booting again leaks one pair per boot).
    CLOCK.store(pair, Ordering::Release);
}

/// The monotonic time in nanoseconds, or 0 before the boot path set the clock.
#[must_use]
pub fn clock_ns() -> u64 {
    let pair = CLOCK.load(Ordering::Acquire);
    if pair.is_null() {
        return 0;
    }
    // Safety: a non-null pointer is a leaked pair from `set_clock`, never freed.
    let (hal, read) = unsafe { *pair };
    read(hal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_pick_the_longest_matching_target() {
        let filter = LogFilter::parse("warn,kernel_core=info,kernel_core::sched=trace").unwrap();
        assert_eq!(filter.level_for("kernel_core::sched"), LevelFilter::TRACE);
        assert_eq!(
            filter.level_for("kernel_core::sched::wait"),
            LevelFilter::TRACE
        );
        assert_eq!(filter.level_for("kernel_core::schedx"), LevelFilter::INFO);
        assert_eq!(filter.level_for("kernel_core::process"), LevelFilter::INFO);
        assert_eq!(filter.level_for("hal_riscv"), LevelFilter::WARN);
        assert!(filter.enabled("kernel_core::sched", Level::TRACE));
        assert!(!filter.enabled("kernel_core::process", Level::DEBUG));
        assert_eq!(filter.max_level(), LevelFilter::TRACE);
    }

    #[test]
    fn without_a_default_other_targets_are_off() {
        let filter = LogFilter::parse("kernel_core::sched=debug").unwrap();
        assert!(!filter.enabled("kernel_core::process", Level::ERROR));
        assert!(filter.enabled("kernel_core::sched", Level::DEBUG));
        assert!(!filter.enabled("kernel_core::sched", Level::TRACE));
        let off = LogFilter::parse("off").unwrap();
        assert_eq!(off.max_level(), LevelFilter::OFF);
        let bare = LogFilter::parse("kernel_core").unwrap();
        assert!(bare.enabled("kernel_core::job", Level::TRACE));
        assert_eq!(LogFilter::parse("").unwrap().max_level(), LevelFilter::OFF);
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        for bad in [
            "kernel_core=loud",
            "[span]=trace",
            "a{field}=info",
            "=info",
            "a b",
        ] {
            assert!(LogFilter::parse(bad).is_err(), "{bad}");
        }
        assert!(LogFilter::parse("INFO, kernel_core::sched = TRACE").is_ok());
    }
}
