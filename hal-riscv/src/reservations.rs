//! The bookkeeping behind `VirtualMemory`: which ranges are reserved and, inside each
//! reservation, which pages are committed with which protection.
//!
//! Committing only records: pages are backed by frames when first touched (the demand
//! fault path asks [`Reservations::state`]), so committing 4 GiB of linear memory costs
//! one map entry, not a million page table entries. Committed runs with the same
//! protection are merged, so a memory grown page by page stays one entry.
//!
//! Plain computation, tested on the host against a page model.

use alloc::collections::BTreeMap;

use kernel_core::hal::Protection;

/// What an address is, as far as the bookkeeping knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageState {
    /// Outside every reservation.
    Unreserved,
    /// Reserved, not committed: no access.
    Reserved,
    /// Committed with this protection.
    Committed(Protection),
}

/// Why an operation on reservations was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationError {
    /// The range is not inside one reservation (or, for [`Reservations::remove`], is not
    /// exactly one).
    NotReserved,
    /// The range overlaps a reservation already made.
    Overlap,
}

/// A run of committed pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    end: usize,
    protection: Protection,
}

/// One reservation and its committed runs.
#[derive(Debug, Clone, Default)]
struct Reservation {
    end: usize,
    /// Committed runs, start → run, disjoint; touching runs have different protections.
    committed: BTreeMap<usize, Segment>,
}

/// Every live reservation.
#[derive(Debug, Clone, Default)]
pub struct Reservations {
    by_start: BTreeMap<usize, Reservation>,
}

impl Reservations {
    /// No reservations.
    pub const fn new() -> Self {
        Self {
            by_start: BTreeMap::new(),
        }
    }

    /// Records the reservation `[start, start + len)`, nothing committed.
    ///
    /// # Errors
    /// [`ReservationError::Overlap`] when it overlaps a live reservation (or is empty).
    pub fn insert(&mut self, start: usize, len: usize) -> Result<(), ReservationError> {
        let end = start.checked_add(len).ok_or(ReservationError::Overlap)?;
        let overlaps_before = self
            .by_start
            .range(..end)
            .next_back()
            .is_some_and(|(_, reservation)| reservation.end > start);
        if len == 0 || overlaps_before {
            return Err(ReservationError::Overlap);
        }
        self.by_start.insert(
            start,
            Reservation {
                end,
                committed: BTreeMap::new(),
            },
        );
        Ok(())
    }

    /// Forgets the reservation `[start, start + len)`, which must be exactly one.
    ///
    /// # Errors
    /// [`ReservationError::NotReserved`] otherwise; nothing changes then.
    pub fn remove(&mut self, start: usize, len: usize) -> Result<(), ReservationError> {
        match self.by_start.get(&start) {
            Some(reservation) if Some(reservation.end) == start.checked_add(len) => {
                self.by_start.remove(&start);
                Ok(())
            }
            _ => Err(ReservationError::NotReserved),
        }
    }

    /// The reservation holding all of `[start, start + len)` (`len > 0`).
    fn holding(&mut self, start: usize, len: usize) -> Option<&mut Reservation> {
        let end = start.checked_add(len)?;
        let (_, reservation) = self.by_start.range_mut(..=start).next_back()?;
        (len > 0 && end <= reservation.end).then_some(reservation)
    }

    /// Whether `[start, start + len)` lies inside one reservation.
    pub fn contains(&self, start: usize, len: usize) -> bool {
        let Some(end) = start.checked_add(len) else {
            return false;
        };
        len > 0
            && self
                .by_start
                .range(..=start)
                .next_back()
                .is_some_and(|(_, reservation)| end <= reservation.end)
    }

    /// Commits `[start, start + len)` with `protection` (`Some`), or decommits it
    /// (`None`), whatever its pages were before.
    ///
    /// # Errors
    /// [`ReservationError::NotReserved`] when the range is not inside one reservation;
    /// nothing changes then.
    pub fn set(
        &mut self,
        start: usize,
        len: usize,
        protection: Option<Protection>,
    ) -> Result<(), ReservationError> {
        let reservation = self
            .holding(start, len)
            .ok_or(ReservationError::NotReserved)?;
        let committed = &mut reservation.committed;
        let end = start + len;
        // Cut every run overlapping the range, keeping what sticks out on either side.
        while let Some((&run_start, &run)) = committed
            .range(..end)
            .next_back()
            .filter(|(_, run)| run.end > start)
        {
            committed.remove(&run_start);
            if run.end > end {
                committed.insert(
                    end,
                    Segment {
                        end: run.end,
                        ..run
                    },
                );
            }
            if run_start < start {
                committed.insert(run_start, Segment { end: start, ..run });
            }
            if run_start <= start {
                break;
            }
        }
        let Some(protection) = protection else {
            return Ok(());
        };
        let mut merged = (start, end);
        if let Some((&before_start, before)) = committed.range(..start).next_back()
            && before.end == start
            && before.protection == protection
        {
            committed.remove(&before_start);
            merged.0 = before_start;
        }
        if let Some(after) = committed.get(&end).copied()
            && after.protection == protection
        {
            committed.remove(&end);
            merged.1 = after.end;
        }
        committed.insert(
            merged.0,
            Segment {
                end: merged.1,
                protection,
            },
        );
        Ok(())
    }

    /// What `address` is.
    pub fn state(&self, address: usize) -> PageState {
        let Some((_, reservation)) = self
            .by_start
            .range(..=address)
            .next_back()
            .filter(|(_, reservation)| address < reservation.end)
        else {
            return PageState::Unreserved;
        };
        match reservation.committed.range(..=address).next_back() {
            Some((_, run)) if address < run.end => PageState::Committed(run.protection),
            _ => PageState::Reserved,
        }
    }

    /// The number of committed runs of the reservation at `start` (for tests and
    /// reports), `None` when there is no reservation there.
    pub fn runs(&self, start: usize) -> Option<usize> {
        self.by_start
            .get(&start)
            .map(|reservation| reservation.committed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 0x1000;

    #[test]
    fn commit_protect_decommit() {
        let mut reservations = Reservations::new();
        let base = 0x1000_0000;
        reservations.insert(base, 16 * PAGE).unwrap();
        assert_eq!(reservations.state(base), PageState::Reserved);
        assert_eq!(reservations.state(base - 1), PageState::Unreserved);
        assert_eq!(reservations.state(base + 16 * PAGE), PageState::Unreserved);
        reservations
            .set(base, 4 * PAGE, Some(Protection::ReadWrite))
            .unwrap();
        reservations
            .set(base + 4 * PAGE, 4 * PAGE, Some(Protection::ReadWrite))
            .unwrap();
        assert_eq!(reservations.runs(base), Some(1), "adjacent commits merge");
        reservations
            .set(base + 2 * PAGE, PAGE, Some(Protection::Read))
            .unwrap();
        assert_eq!(reservations.runs(base), Some(3));
        assert_eq!(
            reservations.state(base + 2 * PAGE),
            PageState::Committed(Protection::Read)
        );
        assert_eq!(
            reservations.state(base + 7 * PAGE + 5),
            PageState::Committed(Protection::ReadWrite)
        );
        reservations.set(base + PAGE, 6 * PAGE, None).unwrap();
        assert_eq!(reservations.state(base + 3 * PAGE), PageState::Reserved);
        assert_eq!(reservations.runs(base), Some(2));
        assert_eq!(
            reservations.set(base + 15 * PAGE, 2 * PAGE, None),
            Err(ReservationError::NotReserved)
        );
        assert_eq!(
            reservations.set(base, 0, None),
            Err(ReservationError::NotReserved)
        );
        assert!(reservations.contains(base, 16 * PAGE));
        assert!(!reservations.contains(base, 17 * PAGE));
    }

    #[test]
    fn insert_and_remove() {
        let mut reservations = Reservations::new();
        reservations.insert(0x10_000, 0x4000).unwrap();
        assert_eq!(
            reservations.insert(0x13_000, 0x4000),
            Err(ReservationError::Overlap)
        );
        assert_eq!(
            reservations.insert(0xf_000, 0x2000),
            Err(ReservationError::Overlap)
        );
        reservations.insert(0x14_000, 0x1000).unwrap();
        assert_eq!(
            reservations.remove(0x10_000, 0x3000),
            Err(ReservationError::NotReserved)
        );
        assert_eq!(reservations.remove(0x10_000, 0x4000), Ok(()));
        assert_eq!(reservations.state(0x10_000), PageState::Unreserved);
        assert_eq!(
            reservations.remove(0x10_000, 0x4000),
            Err(ReservationError::NotReserved)
        );
    }

    /// Random commits, protections and decommits against one state per page.
    #[test]
    fn matches_a_page_model() {
        const PAGES: usize = 96;
        let base = 0x4000_0000;
        let mut reservations = Reservations::new();
        reservations.insert(base, PAGES * PAGE).unwrap();
        let mut model = [PageState::Reserved; PAGES];
        let protections = [
            Some(Protection::None),
            Some(Protection::Read),
            Some(Protection::ReadWrite),
            Some(Protection::ReadExecute),
            None,
        ];
        let mut state = 0xdead_beef_cafe_f00du64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        for _ in 0..20_000 {
            let first = next(PAGES);
            let count = next(PAGES - first) + 1;
            let protection = protections[next(protections.len())];
            reservations
                .set(base + first * PAGE, count * PAGE, protection)
                .unwrap();
            model[first..first + count].fill(match protection {
                Some(protection) => PageState::Committed(protection),
                None => PageState::Reserved,
            });
            for (page, expected) in model.iter().enumerate() {
                assert_eq!(
                    reservations.state(base + page * PAGE + next(PAGE)),
                    *expected
                );
            }
            // Runs are maximal: their number is the number of changes of committed state.
            let runs = (0..PAGES)
                .filter(|&page| {
                    matches!(model[page], PageState::Committed(_))
                        && (page == 0 || model[page - 1] != model[page])
                })
                .count();
            assert_eq!(reservations.runs(base), Some(runs));
        }
    }
}
