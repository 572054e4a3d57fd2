//! Deterministic mode: one host CPU runs every simulated CPU in turn, on a logical clock,
//! with every scheduling choice drawn from a seed.
//!
//! `sim boot --seed S --cpus N` (hosted or under QEMU) boots the kernel with `N` simulated
//! CPUs, each a run queue of the scheduler, served by the boot CPU alone: the other CPUs
//! are not started and no timer interrupt is used.
//!
//! # The logical clock
//!
//! The engine is built with `CompileOptions::count_epoch_checks`: every epoch check point
//! (function entries and loop headers, the same WebAssembly positions on every ISA) adds
//! one to the epoch before comparing it with its store's deadline. The epoch is therefore
//! the number of check points passed by every process so far, and the logical time is
//! [`NS_PER_CHECK`] nanoseconds per check point. A time slice ends after a number of check
//! points; `now` and `sleep` read and wait for logical time; when every simulated CPU is
//! idle and a process sleeps, the clock jumps to the earliest wake-up.
//!
//! # The choices
//!
//! [`SplitMix64`], seeded with `S`, decides at every step which simulated CPU runs next
//! (uniformly among all `N`), which ready process of its queue it takes (uniformly), whom
//! it steals from when its queue is empty (uniformly among the CPUs with work), how long
//! the slice is (uniformly in `1..=2 * MEAN_SLICE_CHECKS` check points), which CPU's queue
//! a woken sleeper joins, and whether a process is preempted right after a syscall
//! (one time in [`SYSCALL_PREEMPT_ONE_IN`]). So different seeds explore different
//! interleavings, and the same seed repeats one.
//!
//! # The trace
//!
//! Every scheduling decision and every syscall with its result is an event: one line
//! `<logical ns> cpu=<c> pid=<p> <what>`. The lines are hashed with [`Fnv1a64`] as they
//! are made; the kernel prints the hash as `trace-hash: <16 hex digits>` at shutdown, and
//! `--trace FILE` keeps the lines. Hosted, the host takes them with [`take_outputs`] after
//! the boot; under QEMU they go over the console framed by [`FRAME_PREFIX`].

use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use super::{Scheduler, Sleeper, Stopped};
use crate::KernelHal;
use crate::process::{ProcessBox, Request};
use crate::replay::{Fnv1a64, InputKind, Recording};
use crate::sync::SpinLock;
use crate::wasm::runtime::epoch;

/// Logical nanoseconds per epoch check point.
pub const NS_PER_CHECK: u64 = 10;

/// The mean time slice in check points: 10 ms of logical time.
pub const MEAN_SLICE_CHECKS: u64 = 10_000_000 / NS_PER_CHECK;

/// A process is preempted right after a syscall one time in this many.
pub const SYSCALL_PREEMPT_ONE_IN: u64 = 4;

/// The byte that starts a console line carrying a trace or recording line (ASCII "group
/// separator"), followed by `T` (trace) or `R` (recording) and the line.
pub const FRAME_PREFIX: u8 = 0x1d;

/// SplitMix64 (Steele, Lea and Flood, 2014): a 64-bit state advanced by a constant,
/// mixed by two multiply-xorshift rounds. Small, fast, and the same on every machine.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `bound` (which must not be 0; 0 gives 0). The small bias of the
    /// modulo does not matter for scheduling choices.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.next_u64() % bound
    }
}

/// What the trace and the recording of a finished run hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// The trace hash.
    pub trace_hash: u64,
    /// The trace's lines, when kept (`--trace`).
    pub trace: Option<String>,
    /// The recording's text, when kept (`--record`).
    pub recording: Option<String>,
}

/// The outputs of the last deterministic boot, for a hosted host to take.
static OUTPUTS: SpinLock<Option<Outputs>> = SpinLock::new(None);

/// Takes the trace and recording of the last deterministic boot (hosted `sim` writes them
/// to the files given with `--trace` and `--record`).
pub fn take_outputs() -> Option<Outputs> {
    OUTPUTS.lock().take()
}

/// The state of deterministic mode. Only the boot CPU uses it (the lock is never
/// contended; it makes the scheduler `Sync`).
pub struct Deterministic {
    /// Simulated CPUs.
    cpus: usize,
    /// The epoch when the run began: logical time 0.
    epoch_base: u64,
    state: SpinLock<State>,
}

/// The changing part of [`Deterministic`].
struct State {
    rng: SplitMix64,
    /// The simulated CPU running now.
    cpu: usize,
    /// The process running now (0: none).
    pid: u32,
    hash: Fnv1a64,
    /// The trace's lines, when kept.
    trace: Option<String>,
    /// The recording being made (always: its seed and inputs), kept in the outputs when
    /// asked for.
    recording: Recording,
    keep_recording: bool,
    /// The inputs left to replay, when replaying.
    replay: Option<VecDeque<(InputKind, Vec<u8>)>>,
    /// The trace hash the replayed recording says the run had.
    expected_hash: Option<u64>,
    /// Why the replay did not repeat the recorded run, once it did not.
    divergence: Option<String>,
}

/// How a deterministic run is set up.
pub struct Setup {
    /// Simulated CPUs.
    pub cpus: u32,
    /// The seed.
    pub seed: u64,
    /// The boot programs: name and hash of the module bytes (for the recording).
    pub programs: Vec<(String, u64)>,
    /// The recording being replayed, if any.
    pub replay: Option<Recording>,
    /// Keep the trace's lines.
    pub trace: bool,
    /// Keep the recording.
    pub record: bool,
}

impl Deterministic {
    /// The state of a run set up as `setup` says.
    #[must_use]
    pub fn new(setup: Setup) -> Self {
        let (replay, expected_hash) = match setup.replay {
            Some(recording) => (Some(recording.inputs.into()), recording.trace_hash),
            None => (None, None),
        };
        Self {
            cpus: setup.cpus.max(1) as usize,
            epoch_base: epoch::current(),
            state: SpinLock::new(State {
                rng: SplitMix64::new(setup.seed),
                cpu: 0,
                pid: 0,
                hash: Fnv1a64::new(),
                trace: setup.trace.then(String::new),
                recording: Recording {
                    seed: setup.seed,
                    cpus: setup.cpus.max(1),
                    programs: setup.programs,
                    inputs: Vec::new(),
                    trace_hash: None,
                },
                keep_recording: setup.record,
                replay,
                expected_hash,
                divergence: None,
            }),
        }
    }

    /// How many CPUs are simulated.
    #[must_use]
    pub fn cpus(&self) -> usize {
        self.cpus
    }

    /// The logical time: [`NS_PER_CHECK`] per check point passed since the run began.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        epoch::current()
            .saturating_sub(self.epoch_base)
            .saturating_mul(NS_PER_CHECK)
    }

    /// Moves the logical clock forward to `ns` (never back).
    fn advance_to_ns(&self, ns: u64) {
        epoch::advance_to(self.epoch_base.saturating_add(ns.div_ceil(NS_PER_CHECK)));
    }

    /// The simulated CPU running now.
    #[must_use]
    pub fn current_cpu(&self) -> usize {
        self.state.lock().cpu
    }

    /// A number below `bound` from the seeded generator.
    pub fn choose(&self, bound: u64) -> u64 {
        self.state.lock().rng.below(bound)
    }

    /// Whether the process that just made a syscall is preempted now.
    pub fn preempt_after_syscall(&self) -> bool {
        self.choose(SYSCALL_PREEMPT_ONE_IN) == 0
    }

    /// Adds one event to the trace: `what` happened on the current CPU to the current
    /// process.
    pub fn event(&self, what: core::fmt::Arguments<'_>) {
        let now = self.now_ns();
        let mut state = self.state.lock();
        let mut line = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(line, "{now} cpu={} pid={} {what}", state.cpu, state.pid);
        state.hash.write(line.as_bytes());
        if let Some(trace) = &mut state.trace {
            trace.push_str(&line);
        }
    }

    /// The trace hash so far.
    #[must_use]
    pub fn trace_hash(&self) -> u64 {
        self.state.lock().hash.finish()
    }

    /// Reads an outside input of `kind` into `buf` with `read` (returning how many bytes
    /// it read) and records it; when replaying, gives back the recorded input instead.
    pub fn external_input(
        &self,
        kind: InputKind,
        buf: &mut [u8],
        read: impl FnOnce(&mut [u8]) -> usize,
    ) -> usize {
        let mut state = self.state.lock();
        if let Some(inputs) = &mut state.replay {
            match inputs.pop_front() {
                Some((recorded, bytes)) if recorded == kind && bytes.len() <= buf.len() => {
                    buf[..bytes.len()].copy_from_slice(&bytes);
                    state.recording.inputs.push((kind, bytes.clone()));
                    return bytes.len();
                }
                other => {
                    if state.divergence.is_none() {
                        state.divergence = Some(match other {
                            Some((recorded, _)) => format!(
                                "the run read {} input where the recording has {} input",
                                kind.name(),
                                recorded.name()
                            ),
                            None => format!(
                                "the run read {} input past the recording's end",
                                kind.name()
                            ),
                        });
                    }
                }
            }
        }
        drop(state);
        let count = read(buf).min(buf.len());
        self.state
            .lock()
            .recording
            .inputs
            .push((kind, buf[..count].to_vec()));
        count
    }

    /// Ends the run: keeps the outputs (for [`take_outputs`]) and returns them with why
    /// a replay did not repeat the recorded run, if it did not.
    pub fn finish(&self) -> (Outputs, Option<String>) {
        let mut state = self.state.lock();
        let hash = state.hash.finish();
        state.recording.trace_hash = Some(hash);
        let mut divergence = state.divergence.take();
        if divergence.is_none()
            && let Some(expected) = state.expected_hash
            && expected != hash
        {
            divergence = Some(format!(
                "trace hash {hash:016x}, the recording has {expected:016x}"
            ));
        }
        let outputs = Outputs {
            trace_hash: hash,
            trace: state.trace.take(),
            recording: state.keep_recording.then(|| state.recording.to_text()),
        };
        *OUTPUTS.lock() = Some(outputs.clone());
        (outputs, divergence)
    }

    /// Sets the CPU and process the next events are about.
    fn set_current(&self, cpu: usize, pid: u32) {
        let mut state = self.state.lock();
        state.cpu = cpu;
        state.pid = pid;
    }
}

impl<H: KernelHal> Scheduler<H> {
    /// Runs every simulated CPU on the current (boot) CPU until no process is left or
    /// every process left is blocked forever (see the [module documentation](self)).
    pub(crate) fn run_deterministic(&self, det: &Deterministic) -> Stopped {
        let cpus = det.cpus().min(self.cpus.len());
        loop {
            let now = det.now_ns();
            self.wake_sleepers_deterministic(det, now, cpus);
            let with_work: Vec<usize> = (0..cpus)
                .filter(|&cpu| !self.cpus[cpu].queue.lock().is_empty())
                .collect();
            if with_work.is_empty() {
                if self.live() == 0 {
                    return Stopped::AllEnded;
                }
                let Some(wake) = self.next_wake() else {
                    det.set_current(0, 0);
                    det.event(format_args!("deadlock"));
                    return Stopped::Deadlock;
                };
                det.advance_to_ns(wake);
                det.set_current(0, 0);
                det.event(format_args!("idle until {wake}"));
                continue;
            }
            // Bounded by `cpus` and queue lengths, which fit u64 and come back below them.
            let cpu = det.choose(cpus as u64) as usize;
            let (process, victim) = {
                let mut own = self.cpus[cpu].queue.lock();
                if own.is_empty() {
                    drop(own);
                    let victim = with_work[det.choose(with_work.len() as u64) as usize];
                    let process = self.cpus[victim].queue.lock().pop_back();
                    (process, Some(victim))
                } else {
                    let index = det.choose(own.len() as u64) as usize;
                    (own.remove(index), None)
                }
            };
            let Some(process) = process else { continue };
            self.running.fetch_add(1, Ordering::SeqCst);
            det.set_current(cpu, process.pid());
            let slice = 1 + det.choose(2 * MEAN_SLICE_CHECKS);
            match victim {
                Some(victim) => det.event(format_args!("steal from cpu={victim} slice={slice}")),
                None => det.event(format_args!("run slice={slice}")),
            }
            self.run_simulated(det, cpu, process, slice);
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Runs `process` on simulated CPU `cpu` for at most `slice` check points, then does
    /// what it asked.
    fn run_simulated(&self, det: &Deterministic, cpu: usize, process: ProcessBox<H>, slice: u64) {
        let end = epoch::current().saturating_add(slice);
        process.begin_slice(det.now_ns(), end);
        let context = process.context();
        let real = self.hal.current_cpu();
        // Safety: as in `Scheduler::run`: the boot CPU's slot context is this loop's own,
        // continued only by the process about to run (on this same CPU: deterministic mode
        // never starts another); the process's context is valid and no CPU runs it (it
        // was taken out of a queue).
        unsafe { self.hal.switch(self.slot(real).context.get(), context) };
        process.end_slice(det.now_ns());
        match process.request() {
            Request::Yield => {
                if epoch::current() >= end {
                    det.event(format_args!("preempted"));
                } else {
                    det.event(format_args!("yielded"));
                }
                self.cpus[cpu].queue.lock().push_back(process);
            }
            Request::Sleep { until_ns } => {
                det.event(format_args!("sleep until {until_ns}"));
                self.sleepers.lock().push(Sleeper {
                    wake_ns: until_ns,
                    process,
                });
            }
            Request::Wait { queue, generation } => {
                // Safety: as in `Scheduler::run`: a process waits only on queues of
                // objects it holds while it waits.
                let queue = unsafe { queue.as_ref() };
                match queue.park(process, generation) {
                    Some(process) => {
                        det.event(format_args!("wait: woken already"));
                        self.cpus[cpu].queue.lock().push_back(process);
                    }
                    None => det.event(format_args!("wait: blocked")),
                }
            }
            Request::Exit => {
                det.event(format_args!("ended"));
                self.finish(process);
            }
        }
        self.events.fetch_add(1, Ordering::SeqCst);
    }

    /// Moves the sleepers due at `now`, earliest first (then by pid), each to the queue
    /// of a simulated CPU chosen at random.
    fn wake_sleepers_deterministic(&self, det: &Deterministic, now: u64, cpus: usize) {
        let mut due = Vec::new();
        {
            let mut sleepers = self.sleepers.lock();
            let mut index = 0;
            while index < sleepers.len() {
                if sleepers[index].wake_ns <= now {
                    due.push(sleepers.remove(index));
                } else {
                    index += 1;
                }
            }
        }
        due.sort_by_key(|sleeper| (sleeper.wake_ns, sleeper.process.pid()));
        for sleeper in due {
            let cpu = det.choose(cpus as u64) as usize;
            det.set_current(cpu, sleeper.process.pid());
            det.event(format_args!("woken"));
            self.cpus[cpu].queue.lock().push_back(sleeper.process);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(replay: Option<Recording>) -> Setup {
        Setup {
            cpus: 2,
            seed: 5,
            programs: alloc::vec![(String::from("init"), 1)],
            replay,
            trace: true,
            record: true,
        }
    }

    #[test]
    fn outside_inputs_are_recorded_then_replayed_without_reading() {
        let det = Deterministic::new(setup(None));
        let mut buf = [0u8; 8];
        let read = det.external_input(InputKind::Random, &mut buf, |buf| {
            buf[..3].copy_from_slice(&[7, 8, 9]);
            3
        });
        assert_eq!((read, &buf[..3]), (3, &[7, 8, 9][..]));
        det.event(format_args!("something"));
        let (outputs, divergence) = det.finish();
        assert_eq!(divergence, None);
        assert_eq!(
            outputs.trace.as_deref(),
            Some("0 cpu=0 pid=0 something\n"),
            "one event, at logical time 0"
        );
        let recording = Recording::parse(outputs.recording.unwrap().as_bytes()).unwrap();
        assert_eq!(
            recording.inputs,
            alloc::vec![(InputKind::Random, alloc::vec![7, 8, 9])]
        );
        assert_eq!(recording.trace_hash, Some(outputs.trace_hash));

        // The replay gives the bytes back without reading, and repeats the hash.
        let replay = Deterministic::new(setup(Some(recording.clone())));
        let mut again = [0u8; 8];
        let read = replay.external_input(InputKind::Random, &mut again, |_| {
            panic!("a replay reads no outside input")
        });
        assert_eq!((read, &again[..3]), (3, &[7, 8, 9][..]));
        replay.event(format_args!("something"));
        assert_eq!(replay.finish().1, None);

        // Another kind of input than recorded, or another run, is a divergence.
        let diverging = Deterministic::new(setup(Some(recording)));
        let read = diverging.external_input(InputKind::Clock, &mut again, |buf| {
            buf[0] = 1;
            1
        });
        assert_eq!(
            read, 1,
            "the input is read for real once the replay diverged"
        );
        let divergence = diverging.finish().1.unwrap();
        assert!(divergence.contains("clock input where the recording has random input"));
    }

    #[test]
    fn splitmix64_matches_its_reference_sequence() {
        // The first outputs for seed 1234567 of the reference C implementation.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(rng.next_u64(), 9_817_491_932_198_370_423);
        assert!((0..1000).all(|_| rng.below(7) < 7));
        assert_eq!(rng.below(0), 0);
    }
}
