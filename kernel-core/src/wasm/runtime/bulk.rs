//! Bulk memory and table operations, with every bounds check they need: what the
//! builtins of `memory.copy`, `memory.fill`, `memory.init`, `data.drop`, `table.grow`,
//! `table.copy`, `table.fill`, `table.init` and `elem.drop` do, and what instantiation
//! does with active segments (`table.init` or `memory.init`, then the drop, as the spec
//! describes it).
//!
//! Every operation checks that each range it touches lies inside the current size of its
//! memory or table (or the segment) before it writes anything, so a failing operation
//! changes nothing, and then copies with `core::ptr::copy` (memmove semantics) or the
//! slice equivalents. Memory accesses stay inside the committed part of the linear
//! memory: no guard page is ever touched from Rust.

use core::ptr::NonNull;

use super::engine::RuntimeHal;
use super::store::{InstanceId, StoreInner};
use crate::wasm::trap::Trap;

impl<H: RuntimeHal> StoreInner<'_, H> {
    /// The address of the `len` bytes at `start` of memory `memory_index` of `instance`,
    /// or `None` when they are not all inside the memory's current size.
    fn memory_bytes(
        &self,
        instance: InstanceId,
        memory_index: u64,
        start: u64,
        len: u64,
    ) -> Option<NonNull<u8>> {
        let id = *self
            .instances
            .get(instance.0)?
            .memories
            .get(usize::try_from(memory_index).ok()?)?;
        let memory = &self.memories.get(id.0)?.memory;
        let end = start.checked_add(len)?;
        if end > u64::try_from(memory.byte_len()).ok()? {
            return None;
        }
        let start = usize::try_from(start).ok()?;
        // Safety: `start <= end <= byte_len`, so the pointer is inside the memory's
        // committed part or one past it, and the offset fits an `isize` (at most 4 GiB).
        Some(unsafe { memory.base().add(start) })
    }

    /// `memory.copy`: copies `len` bytes from `src` of memory `src_memory` to `dst` of
    /// memory `dst_memory`; the ranges may overlap.
    ///
    /// # Errors
    /// [`Trap::MemoryOutOfBounds`], with nothing written, when either range is not
    /// inside its memory.
    pub(crate) fn memory_copy(
        &mut self,
        instance: InstanceId,
        dst_memory: u64,
        dst: u64,
        src_memory: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let out_of_bounds = || Trap::MemoryOutOfBounds;
        let to = self
            .memory_bytes(instance, dst_memory, dst, len)
            .ok_or_else(out_of_bounds)?;
        let from = self
            .memory_bytes(instance, src_memory, src, len)
            .ok_or_else(out_of_bounds)?;
        let len = usize::try_from(len).map_err(|_| out_of_bounds())?;
        // Safety: `memory_bytes` checked both ranges against the committed, read+write
        // part of their memories; `copy` allows them to overlap; the store is borrowed
        // mutably, so no Rust reference into a memory exists.
        unsafe { core::ptr::copy(from.as_ptr(), to.as_ptr(), len) };
        Ok(())
    }

    /// `memory.fill`: sets `len` bytes from `dst` of memory `memory_index` to `byte`.
    ///
    /// # Errors
    /// [`Trap::MemoryOutOfBounds`], with nothing written, when the range is not inside
    /// the memory.
    pub(crate) fn memory_fill(
        &mut self,
        instance: InstanceId,
        memory_index: u64,
        dst: u64,
        byte: u8,
        len: u64,
    ) -> Result<(), Trap> {
        let to = self
            .memory_bytes(instance, memory_index, dst, len)
            .ok_or(Trap::MemoryOutOfBounds)?;
        let len = usize::try_from(len).map_err(|_| Trap::MemoryOutOfBounds)?;
        // Safety: `memory_bytes` checked the range against the committed, read+write part
        // of the memory; the store is borrowed mutably, so no Rust reference into it
        // exists.
        unsafe { core::ptr::write_bytes(to.as_ptr(), byte, len) };
        Ok(())
    }

    /// `memory.init`: copies `len` bytes from `src` of data segment `data_index` of
    /// `instance` to `dst` of memory `memory_index`. A dropped segment is empty.
    ///
    /// # Errors
    /// [`Trap::MemoryOutOfBounds`], with nothing written, when the source range is not
    /// inside the segment or the destination range not inside the memory.
    pub(crate) fn memory_init(
        &mut self,
        instance: InstanceId,
        memory_index: u64,
        data_index: u64,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let out_of_bounds = || Trap::MemoryOutOfBounds;
        let to = self
            .memory_bytes(instance, memory_index, dst, len)
            .ok_or_else(out_of_bounds)?;
        let state = self.instances.get(instance.0).ok_or_else(out_of_bounds)?;
        let data_index = usize::try_from(data_index).map_err(|_| out_of_bounds())?;
        let segment = state
            .module
            .info
            .data
            .get(data_index)
            .ok_or_else(out_of_bounds)?;
        let bytes = match state.dropped_data.get(data_index) {
            Some(false) => state
                .module
                .wasm
                .get(segment.bytes.clone())
                .ok_or_else(out_of_bounds)?,
            _ => &[],
        };
        let from = usize::try_from(src)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(src, len)| bytes.get(src..src.checked_add(len)?))
            .ok_or_else(out_of_bounds)?;
        // Safety: `memory_bytes` checked `from.len()` bytes at `to` against the committed,
        // read+write part of the memory; the source is the module binary, which no
        // linear memory overlaps.
        unsafe { core::ptr::copy_nonoverlapping(from.as_ptr(), to.as_ptr(), from.len()) };
        Ok(())
    }

    /// `data.drop`: drops data segment `data_index` of `instance`; dropping it again, or
    /// a segment that does not exist, does nothing.
    pub(crate) fn data_drop(&mut self, instance: InstanceId, data_index: u64) {
        let state = self.instances.get_mut(instance.0);
        let dropped = usize::try_from(data_index)
            .ok()
            .zip(state)
            .and_then(|(index, state)| state.dropped_data.get_mut(index));
        if let Some(dropped) = dropped {
            *dropped = true;
        }
    }

    /// The store's table behind table `table_index` of `instance`.
    fn table_id(&self, instance: InstanceId, table_index: u64) -> Option<usize> {
        let id = self
            .instances
            .get(instance.0)?
            .tables
            .get(usize::try_from(table_index).ok()?)?;
        (id.0 < self.tables.len()).then_some(id.0)
    }

    /// `table.grow`: grows table `table_index` of `instance` by `delta` elements set to
    /// `init`; the previous size, or `None` when the table cannot grow that far.
    pub(crate) fn table_grow(
        &mut self,
        instance: InstanceId,
        table_index: u64,
        init: usize,
        delta: u64,
    ) -> Option<u64> {
        let id = self.table_id(instance, table_index)?;
        let previous = self.tables.get_mut(id)?.table.grow(delta, init)?;
        u64::try_from(previous).ok()
    }

    /// `table.fill`: sets `len` elements from `dst` of table `table_index` to `value`.
    ///
    /// # Errors
    /// [`Trap::TableOutOfBounds`], with nothing written, when the range is not inside the
    /// table.
    pub(crate) fn table_fill(
        &mut self,
        instance: InstanceId,
        table_index: u64,
        dst: u64,
        value: usize,
        len: u64,
    ) -> Result<(), Trap> {
        let id = self
            .table_id(instance, table_index)
            .ok_or(Trap::TableOutOfBounds)?;
        if self.tables[id].table.fill(dst, value, len) {
            Ok(())
        } else {
            Err(Trap::TableOutOfBounds)
        }
    }

    /// `table.copy`: copies `len` elements from `src` of table `src_table` to `dst` of
    /// table `dst_table`; within one table the ranges may overlap.
    ///
    /// # Errors
    /// [`Trap::TableOutOfBounds`], with nothing written, when either range is not inside
    /// its table, or when the tables' element types differ (which validation rules out;
    /// checked anyway, because a foreign word in a `funcref` table would be called).
    pub(crate) fn table_copy(
        &mut self,
        instance: InstanceId,
        dst_table: u64,
        dst: u64,
        src_table: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let out_of_bounds = Trap::TableOutOfBounds;
        let to = self.table_id(instance, dst_table).ok_or(out_of_bounds)?;
        let from = self.table_id(instance, src_table).ok_or(out_of_bounds)?;
        let copied = if to == from {
            self.tables[to].table.copy_within(dst, src, len)
        } else {
            let [destination, source] = self
                .tables
                .get_disjoint_mut([to, from])
                .map_err(|_| out_of_bounds)?;
            destination.table.element_type() == source.table.element_type()
                && source
                    .table
                    .slice(src, len)
                    .is_some_and(|values| destination.table.write(dst, values))
        };
        if copied { Ok(()) } else { Err(out_of_bounds) }
    }

    /// `table.init`: copies `len` elements from `src` of element segment `elem_index` of
    /// `instance` to `dst` of table `table_index`. A dropped segment is empty.
    ///
    /// # Errors
    /// [`Trap::TableOutOfBounds`], with nothing written, when the source range is not
    /// inside the segment or the destination range not inside the table, or when the
    /// segment's element type is not the table's (which validation rules out).
    pub(crate) fn table_init(
        &mut self,
        instance: InstanceId,
        table_index: u64,
        elem_index: u64,
        dst: u64,
        src: u64,
        len: u64,
    ) -> Result<(), Trap> {
        let out_of_bounds = Trap::TableOutOfBounds;
        let id = self.table_id(instance, table_index).ok_or(out_of_bounds)?;
        let state = self.instances.get(instance.0).ok_or(out_of_bounds)?;
        let elem_index = usize::try_from(elem_index).map_err(|_| out_of_bounds)?;
        let segment_type = state
            .module
            .info
            .elements
            .get(elem_index)
            .map(|segment| segment.element_type);
        let values = state
            .elements
            .get(elem_index)
            .and_then(|values| {
                let src = usize::try_from(src).ok()?;
                let len = usize::try_from(len).ok()?;
                values.get(src..src.checked_add(len)?)
            })
            .ok_or(out_of_bounds)?;
        let table = &mut self.tables[id].table;
        if segment_type == Some(table.element_type()) && table.write(dst, values) {
            Ok(())
        } else {
            Err(out_of_bounds)
        }
    }

    /// `elem.drop`: drops element segment `elem_index` of `instance`, freeing its
    /// references; dropping it again, or a segment that does not exist, does nothing.
    pub(crate) fn elem_drop(&mut self, instance: InstanceId, elem_index: u64) {
        let state = self.instances.get_mut(instance.0);
        let segment = usize::try_from(elem_index)
            .ok()
            .zip(state)
            .and_then(|(index, state)| state.elements.get_mut(index));
        if let Some(segment) = segment {
            *segment = alloc::boxed::Box::default();
        }
    }
}
