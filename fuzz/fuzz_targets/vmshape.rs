//! Arbitrary (often hostile) counts into the VMContext layout: an error, or a layout whose
//! arrays are in order, aligned, disjoint and inside `size`, whose accessors accept exactly
//! the in-range indices. Never a panic.
#![no_main]

use kernel_core::wasm::env::{VMCounts, VMShape};
use libfuzzer_sys::fuzz_target;

/// Reads eleven little-endian `u32` counts (missing bytes are zero).
fn counts(data: &[u8]) -> VMCounts {
    let mut words = data.chunks(4).map(|chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        u32::from_le_bytes(word)
    });
    let mut next = || words.next().unwrap_or(0);
    VMCounts {
        imported_functions: next(),
        imported_tables: next(),
        imported_memories: next(),
        imported_globals: next(),
        imported_tags: next(),
        defined_tables: next(),
        defined_memories: next(),
        owned_memories: next(),
        defined_globals: next(),
        defined_tags: next(),
        escaped_functions: next(),
    }
}

fuzz_target!(|data: &[u8]| {
    let counts = counts(data);
    let Ok(shape) = VMShape::new(counts) else {
        return;
    };
    let mut previous_end = VMShape::DYNAMIC_DATA_START;
    for (array, layout) in shape.arrays() {
        assert_eq!(layout.count, array.count(&counts));
        assert_eq!(layout.offset % array.align(), 0);
        assert!(layout.offset >= previous_end && layout.offset - previous_end < array.align());
        assert!(layout.end() <= shape.size());
        if layout.count > 0 {
            let last = layout.element(layout.count - 1).unwrap();
            assert_eq!(last + layout.stride, layout.end());
        }
        assert_eq!(layout.element(layout.count), None);
        assert_eq!(layout.element(u32::MAX), None);
        previous_end = layout.end();
    }
    assert_eq!(previous_end, shape.size());
});
