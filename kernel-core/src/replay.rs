//! Recordings of deterministic runs: what came from outside the deterministic core, so
//! that a run can be replayed exactly, on either HAL.
//!
//! A deterministic run (`sim boot --seed S`, see [`crate::sched::deterministic`]) is a
//! function of its programs, its seed and number of simulated CPUs, and the inputs it read
//! from outside: console input, clock readings, random bytes. `sim boot --record FILE`
//! keeps those; `sim boot --replay FILE` (hosted or under QEMU) gives them back in the same
//! order, so the run repeats with the same output and the same trace hash. Every outside
//! read goes through [`crate::kernel::Kernel::external_input`], which records or replays.
//!
//! # Format
//!
//! A recording is UTF-8 text, one item per line, in this order:
//!
//! ```text
//! k23-recording 1
//! seed <u64, decimal>
//! cpus <u32, decimal>
//! program <name> <FNV-1a 64 of the module's bytes, 16 hex digits>   (one per boot program)
//! input <console|clock|random> <the bytes read, hex, `-` when none>  (in the order read)
//! trace-hash <16 hex digits>                                          (the run's hash)
//! ```
//!
//! The program lines let a replay refuse changed program files; the trace hash lets it
//! say whether it repeated the run. Names hold no white space (they are file stems).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// The first line of a recording.
pub const RECORDING_HEADER: &str = "k23-recording 1";

/// FNV-1a, 64 bits: the stable hash of traces and program files (the same on every
/// host and ISA, unlike the hashers of `std`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a64 {
    /// The FNV-1a 64 offset basis.
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    /// The FNV-1a 64 prime.
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// A hash of no bytes.
    #[must_use]
    pub const fn new() -> Self {
        Self(Self::OFFSET_BASIS)
    }

    /// Adds `bytes` to the hash.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(Self::PRIME);
        }
    }

    /// The hash so far.
    #[must_use]
    pub const fn finish(&self) -> u64 {
        self.0
    }

    /// The hash of `bytes`.
    #[must_use]
    pub fn of(bytes: &[u8]) -> u64 {
        let mut hash = Self::new();
        hash.write(bytes);
        hash.finish()
    }
}

/// What kind of outside input a run read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Bytes typed on the console.
    Console,
    /// A clock reading (8 bytes, little-endian nanoseconds).
    Clock,
    /// Random bytes.
    Random,
}

impl InputKind {
    /// The kind's name in a recording.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Console => "console",
            Self::Clock => "clock",
            Self::Random => "random",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Console, Self::Clock, Self::Random]
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// A recording, parsed or being made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recording {
    /// The seed of the scheduling choices.
    pub seed: u64,
    /// How many CPUs were simulated.
    pub cpus: u32,
    /// The boot programs in boot order: name and FNV-1a 64 hash of the module bytes.
    pub programs: Vec<(String, u64)>,
    /// The outside inputs, in the order the run read them.
    pub inputs: Vec<(InputKind, Vec<u8>)>,
    /// The run's trace hash (absent in a recording cut short).
    pub trace_hash: Option<u64>,
}

impl Recording {
    /// The recording's text (see the [format](self)).
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{RECORDING_HEADER}");
        let _ = writeln!(text, "seed {}", self.seed);
        let _ = writeln!(text, "cpus {}", self.cpus);
        for (name, hash) in &self.programs {
            let _ = writeln!(text, "program {name} {hash:016x}");
        }
        for (kind, bytes) in &self.inputs {
            let _ = write!(text, "input {} ", kind.name());
            if bytes.is_empty() {
                text.push('-');
            }
            for byte in bytes {
                let _ = write!(text, "{byte:02x}");
            }
            text.push('\n');
        }
        if let Some(hash) = self.trace_hash {
            let _ = writeln!(text, "trace-hash {hash:016x}");
        }
        text
    }

    /// Reads a recording's text.
    ///
    /// # Errors
    /// A message naming the first line that is not part of the format.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = core::str::from_utf8(bytes).map_err(|_| String::from("not UTF-8 text"))?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, line)) if line.trim_end() == RECORDING_HEADER => {}
            _ => return Err(format!("the first line is not `{RECORDING_HEADER}`")),
        }
        let mut recording = Self::default();
        let (mut seed, mut cpus) = (None, None);
        for (index, line) in lines {
            let bad = |what: &str| format!("line {}: {what}: `{line}`", index + 1);
            let mut words = line.split_whitespace();
            let Some(key) = words.next() else { continue };
            let fields: Vec<&str> = words.collect();
            match (key, fields.as_slice()) {
                ("seed", [value]) => seed = Some(value.parse().map_err(|_| bad("bad seed"))?),
                ("cpus", [value]) => {
                    let value: u32 = value.parse().map_err(|_| bad("bad CPU count"))?;
                    if !(1..=64).contains(&value) {
                        return Err(bad("the CPU count is not between 1 and 64"));
                    }
                    cpus = Some(value);
                }
                ("program", [name, hash]) => {
                    let hash = u64::from_str_radix(hash, 16).map_err(|_| bad("bad hash"))?;
                    recording.programs.push(((*name).into(), hash));
                }
                ("input", [kind, hex]) => {
                    let kind = InputKind::from_name(kind).ok_or_else(|| bad("unknown input"))?;
                    let bytes = if *hex == "-" {
                        Vec::new()
                    } else {
                        parse_hex(hex).ok_or_else(|| bad("bad hex bytes"))?
                    };
                    recording.inputs.push((kind, bytes));
                }
                ("trace-hash", [hash]) => {
                    let hash = u64::from_str_radix(hash, 16).map_err(|_| bad("bad hash"))?;
                    recording.trace_hash = Some(hash);
                }
                _ => return Err(bad("not a recording line")),
            }
        }
        recording.seed = seed.ok_or_else(|| String::from("no `seed` line"))?;
        recording.cpus = cpus.ok_or_else(|| String::from("no `cpus` line"))?;
        Ok(recording)
    }
}

/// The bytes of an even-length string of hex digits.
fn parse_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(Fnv1a64::of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a64::of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fnv1a64::of(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn recordings_round_trip_and_bad_ones_are_refused() {
        let recording = Recording {
            seed: 42,
            cpus: 4,
            programs: alloc::vec![("init".into(), 0x1234), ("echo".into(), u64::MAX)],
            inputs: alloc::vec![
                (InputKind::Clock, alloc::vec![1, 2, 255]),
                (InputKind::Console, Vec::new())
            ],
            trace_hash: Some(0xdead_beef),
        };
        let text = recording.to_text();
        assert_eq!(Recording::parse(text.as_bytes()), Ok(recording));
        assert!(Recording::parse(b"seed 1\ncpus 1\n").is_err());
        assert!(Recording::parse(b"k23-recording 1\ncpus 1\n").is_err());
        assert!(Recording::parse(b"k23-recording 1\nseed 1\ncpus 0\n").is_err());
        assert!(Recording::parse(b"k23-recording 1\nseed 1\ncpus 1\ninput clock 1\n").is_err());
        assert!(Recording::parse(b"k23-recording 1\nseed 1\ncpus 1\nbogus\n").is_err());
        assert!(Recording::parse(&[0xff, 0xfe]).is_err());
    }
}
