//! IPC: channels between processes, named by handles.
//!
//! A channel carries whole messages of at most [`MAX_MESSAGE`] bytes, in order, through a
//! queue of at most [`CHANNEL_CAPACITY`] messages. It has two kinds of ends: a process
//! holding a send end ([`End::Send`]) queues messages, one holding a receive end
//! ([`End::Receive`]) takes them. Ends are capabilities: a process reaches a channel only
//! through the handles it holds ([`crate::process::HandleTable`]), and can move one to a
//! child it spawns.
//!
//! - `send` copies the message out of the sender's memory, then blocks while the queue is
//!   full; it fails with [`Errno::Closed`] once no receive end is left.
//! - `recv` blocks until a message is queued and takes it; a message longer than the
//!   receiver's buffer stays queued ([`Errno::InvalidArgument`]); once every send end is
//!   closed and the queue is empty it fails with [`Errno::Closed`]. Messages queued before
//!   their sender closed its end (or exited) are still delivered.
//!
//! Blocking goes through the scheduler's wait queues (`crate::sched::WaitQueue`), one for
//! receivers and one for senders.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

use crate::KernelHal;
use crate::process::Process;
use crate::sched::{Scheduler, WaitQueue};
use crate::sync::SpinLock;
use crate::syscall::Errno;

/// The largest message, in bytes.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// How many messages a channel queues before `send` blocks.
pub const CHANNEL_CAPACITY: usize = 64;

/// Which end of a channel a handle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Queues messages.
    Send,
    /// Takes messages.
    Receive,
}

/// A channel: its queue, how many ends of each kind are open, and who waits.
pub struct Channel<H: KernelHal> {
    state: SpinLock<ChannelState>,
    /// Receivers waiting for a message (or for the last sender to close).
    readers: WaitQueue<H>,
    /// Senders waiting for room (or for the last receiver to close).
    writers: WaitQueue<H>,
    scheduler: &'static Scheduler<H>,
}

/// The part of a channel under its lock.
struct ChannelState {
    queue: VecDeque<Box<[u8]>>,
    senders: usize,
    receivers: usize,
}

/// An open end of a channel, as a handle table holds it. Dropping it closes the end.
pub struct ChannelEnd<H: KernelHal> {
    channel: Arc<Channel<H>>,
    end: End,
}

impl<H: KernelHal> Channel<H> {
    /// A new channel and its two ends: `(send, receive)`.
    pub fn create(scheduler: &'static Scheduler<H>) -> (ChannelEnd<H>, ChannelEnd<H>) {
        let channel = Arc::new(Self {
            state: SpinLock::new(ChannelState {
                queue: VecDeque::new(),
                senders: 1,
                receivers: 1,
            }),
            readers: WaitQueue::new(),
            writers: WaitQueue::new(),
            scheduler,
        });
        (
            ChannelEnd {
                channel: Arc::clone(&channel),
                end: End::Send,
            },
            ChannelEnd {
                channel,
                end: End::Receive,
            },
        )
    }
}

impl<H: KernelHal> ChannelEnd<H> {
    /// Which end this is.
    pub fn end(&self) -> End {
        self.end
    }

    /// Another handle to the same channel (used to keep the channel alive while blocking
    /// outside the handle table's borrow).
    fn channel(&self) -> Arc<Channel<H>> {
        Arc::clone(&self.channel)
    }

    /// A second open end of the same kind on the same channel: the caller holds it while
    /// it blocks, so that the table's own end may be closed meanwhile without freeing the
    /// channel under it. Counts as an open end until dropped.
    #[must_use]
    pub fn duplicate(&self) -> Self {
        let mut state = self.channel.state.lock();
        match self.end {
            End::Send => state.senders += 1,
            End::Receive => state.receivers += 1,
        }
        drop(state);
        Self {
            channel: self.channel(),
            end: self.end,
        }
    }

    /// Queues `message`, blocking `process` while the channel is full.
    ///
    /// # Errors
    /// [`Errno::BadHandle`] on a receive end, [`Errno::InvalidArgument`] for a message
    /// longer than [`MAX_MESSAGE`], [`Errno::Closed`] when no receive end is left.
    pub fn send(&self, process: &Process<H>, message: &[u8]) -> Result<(), Errno> {
        if self.end != End::Send {
            return Err(Errno::BadHandle);
        }
        if message.len() > MAX_MESSAGE {
            return Err(Errno::InvalidArgument);
        }
        let channel = self.channel();
        let mut message = Some(Box::<[u8]>::from(message));
        loop {
            let generation = {
                let mut state = channel.state.lock();
                if state.receivers == 0 {
                    return Err(Errno::Closed);
                }
                if state.queue.len() < CHANNEL_CAPACITY {
                    if let Some(message) = message.take() {
                        state.queue.push_back(message);
                    }
                    channel.readers.wake_all(channel.scheduler);
                    return Ok(());
                }
                channel.writers.generation()
            };
            process.wait(&channel.writers, generation);
        }
    }

    /// Takes the next message into `buffer` (through `deliver`, which copies it into the
    /// receiver's memory and cannot fail: the caller checked the buffer), blocking
    /// `process` until there is one. Returns its length.
    ///
    /// # Errors
    /// [`Errno::BadHandle`] on a send end, [`Errno::InvalidArgument`] when the next
    /// message is longer than `capacity` (it stays queued), [`Errno::Closed`] once every
    /// send end is closed and the queue is empty.
    pub fn recv(
        &self,
        process: &Process<H>,
        capacity: usize,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<usize, Errno> {
        if self.end != End::Receive {
            return Err(Errno::BadHandle);
        }
        let channel = self.channel();
        loop {
            let generation = {
                let mut state = channel.state.lock();
                if let Some(front) = state.queue.front() {
                    if front.len() > capacity {
                        return Err(Errno::InvalidArgument);
                    }
                    let message = state.queue.pop_front().unwrap_or_default();
                    channel.writers.wake_all(channel.scheduler);
                    drop(state);
                    deliver(&message);
                    return Ok(message.len());
                }
                if state.senders == 0 {
                    return Err(Errno::Closed);
                }
                channel.readers.generation()
            };
            process.wait(&channel.readers, generation);
        }
    }
}

impl<H: KernelHal> Drop for ChannelEnd<H> {
    fn drop(&mut self) {
        let channel = &self.channel;
        let mut state = channel.state.lock();
        match self.end {
            End::Send => {
                state.senders -= 1;
                if state.senders == 0 {
                    // Receivers waiting on an empty queue now get `Closed`.
                    channel.readers.wake_all(channel.scheduler);
                }
            }
            End::Receive => {
                state.receivers -= 1;
                if state.receivers == 0 {
                    // Senders waiting for room now get `Closed`; nobody will read what is
                    // queued.
                    state.queue.clear();
                    channel.writers.wake_all(channel.scheduler);
                }
            }
        }
    }
}
