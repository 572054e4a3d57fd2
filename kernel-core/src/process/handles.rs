//! A process's handles: the capabilities it holds, by number.
//!
//! A handle is a small non-negative `i32` naming one open channel end in one process; the
//! numbers of another process mean nothing here. New handles take the lowest free number.
//! A table holds at most its limit of handles (`KernelOptions::max_handles`).

use alloc::vec::Vec;

use crate::KernelHal;
use crate::ipc::ChannelEnd;

/// The handles of one process.
pub struct HandleTable<H: KernelHal> {
    slots: Vec<Option<ChannelEnd<H>>>,
    open: usize,
    limit: usize,
}

impl<H: KernelHal> HandleTable<H> {
    /// An empty table that holds at most `limit` handles.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self {
            slots: Vec::new(),
            open: 0,
            limit,
        }
    }

    /// How many handles are open.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether no handle is open.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Whether `count` more handles fit.
    #[must_use]
    pub fn has_room(&self, count: usize) -> bool {
        self.open.saturating_add(count) <= self.limit
    }

    /// Adds `end` under the lowest free number; gives it back when the table is full.
    ///
    /// # Errors
    /// The end itself, when the table holds its limit already.
    pub fn insert(&mut self, end: ChannelEnd<H>) -> Result<i32, ChannelEnd<H>> {
        if !self.has_room(1) {
            return Err(end);
        }
        let index = match self.slots.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let Ok(handle) = i32::try_from(index) else {
            return Err(end);
        };
        self.slots[index] = Some(end);
        self.open += 1;
        Ok(handle)
    }

    /// The end named `handle`, if the process holds one by that number.
    #[must_use]
    pub fn get(&self, handle: i32) -> Option<&ChannelEnd<H>> {
        self.slots.get(usize::try_from(handle).ok()?)?.as_ref()
    }

    /// Puts `end` back under `handle`, a number [`HandleTable::take`] freed (a move that
    /// failed). Does nothing if the number is taken again or out of range.
    pub fn restore(&mut self, handle: i32, end: ChannelEnd<H>) {
        if let Some(slot) = usize::try_from(handle)
            .ok()
            .and_then(|index| self.slots.get_mut(index))
            && slot.is_none()
        {
            *slot = Some(end);
            self.open += 1;
        }
    }

    /// Takes the end named `handle` out of the table (to close it or move it).
    pub fn take(&mut self, handle: i32) -> Option<ChannelEnd<H>> {
        let end = self.slots.get_mut(usize::try_from(handle).ok()?)?.take()?;
        self.open -= 1;
        Some(end)
    }
}
