//! `poll_oneoff`: clock subscriptions and descriptor readiness (standard input is ready
//! when it has bytes or has ended; files and output streams always are).

use alloc::vec::Vec;

use super::state::Object;
use super::types::{Errno, WasiResult, clock};
use super::{Args, Memory};
use crate::KernelHal;
use crate::process::Process;

/// The most subscriptions one call may pass.
const MAX_SUBSCRIPTIONS: u32 = 4096;

/// One subscription.
enum Subscription {
    /// Ready at `deadline_ns` of the monotonic clock.
    Clock { deadline_ns: u64 },
    /// Ready when descriptor `fd` can be read (`write`: written).
    Fd { fd: u32, write: bool },
}

/// `poll_oneoff(in, out, nsubscriptions, nevents)`: waits until at least one subscription
/// is ready and reports every ready one.
pub(super) fn poll_oneoff<H: KernelHal>(
    process: &'static Process<H>,
    memory: &mut Memory<'_, '_>,
    args: &Args<'_>,
) -> WasiResult<()> {
    let (input, output, count) = (args.u32(0), args.u32(1), args.u32(2));
    if count == 0 || count > MAX_SUBSCRIPTIONS {
        return Err(Errno::Inval);
    }
    memory.check(output, count * 32)?;
    let bytes = memory.read(input, count * 48)?.to_vec();
    let hal = process.kernel().hal();
    let now = hal.now_ns();
    let mut subscriptions = Vec::with_capacity(count as usize);
    for raw in bytes.chunks_exact(48) {
        let word = |at: usize| {
            let mut value = [0u8; 8];
            value.copy_from_slice(&raw[at..at + 8]);
            u64::from_le_bytes(value)
        };
        let userdata = word(0);
        let subscription = match raw[8] {
            0 => {
                let id = u32::from_le_bytes([raw[16], raw[17], raw[18], raw[19]]);
                let timeout = word(24);
                let absolute = u16::from_le_bytes([raw[40], raw[41]]) & 1 != 0;
                let deadline_ns = match (id, absolute) {
                    (clock::MONOTONIC, true) => Ok(timeout),
                    (clock::REALTIME, true) => {
                        Ok(now.saturating_add(timeout.saturating_sub(super::realtime_ns(process))))
                    }
                    (clock::MONOTONIC | clock::REALTIME, false) => Ok(now.saturating_add(timeout)),
                    (clock::PROCESS_CPUTIME | clock::THREAD_CPUTIME, _) => Err(Errno::NotSup),
                    _ => Err(Errno::Inval),
                };
                deadline_ns.map(|deadline_ns| Subscription::Clock { deadline_ns })
            }
            tag @ (1 | 2) => Ok(Subscription::Fd {
                fd: u32::from_le_bytes([raw[16], raw[17], raw[18], raw[19]]),
                write: tag == 2,
            }),
            _ => return Err(Errno::Inval),
        };
        subscriptions.push((userdata, raw[8], subscription));
    }
    let mut backoff_ns = 100_000u64;
    loop {
        let now = hal.now_ns();
        let mut events: Vec<[u8; 32]> = Vec::new();
        let mut next_deadline = u64::MAX;
        for (userdata, tag, subscription) in &subscriptions {
            let ready = match subscription {
                Err(errno) => Some((*errno, 0)),
                Ok(Subscription::Clock { deadline_ns }) => {
                    next_deadline = next_deadline.min(*deadline_ns);
                    (*deadline_ns <= now).then_some((Errno::Success, 0))
                }
                Ok(Subscription::Fd { fd, write }) => fd_ready(process, *fd, *write),
            };
            if let Some((errno, nbytes)) = ready {
                let mut event = [0u8; 32];
                event[0..8].copy_from_slice(&userdata.to_le_bytes());
                event[8..10].copy_from_slice(&(errno as u16).to_le_bytes());
                event[10] = *tag;
                event[16..24].copy_from_slice(&nbytes.to_le_bytes());
                events.push(event);
            }
        }
        if !events.is_empty() {
            for (index, event) in events.iter().enumerate() {
                memory.write(output + 32 * index as u32, event)?;
            }
            return memory.write_u32(args.u32(3), events.len() as u32);
        }
        let wake = next_deadline.min(now.saturating_add(backoff_ns));
        process.sleep_until(wake);
        backoff_ns = (backoff_ns * 2).min(20_000_000);
    }
}

/// Whether `fd` is ready: `Some((error, bytes))`, `None` while it is not.
fn fd_ready<H: KernelHal>(process: &Process<H>, fd: u32, write: bool) -> Option<(Errno, u64)> {
    let object = match process.wasi().get(fd) {
        Ok(descriptor) => descriptor.object.clone(),
        Err(errno) => return Some((errno, 0)),
    };
    match (object, write) {
        (Object::Stdin, false) => super::fd::stdin_ready(process).then(|| {
            let pending = process.kernel().wasi().stdin.lock().pending.len();
            (Errno::Success, pending as u64)
        }),
        (Object::Stdin, true) | (Object::Stdout | Object::Stderr, false) => Some((Errno::BadF, 0)),
        (Object::Directory { .. }, _) => Some((Errno::BadF, 0)),
        (Object::File { fs, node, position }, false) => {
            let size = fs.stat(node).map_or(0, |stat| stat.size);
            Some((Errno::Success, size.saturating_sub(position)))
        }
        _ => Some((Errno::Success, 0)),
    }
}
