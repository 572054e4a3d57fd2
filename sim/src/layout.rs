//! `sim layout FILE [--json]`: the VMContext layout of a module.

use std::fmt::Write as _;
use std::path::Path;

use kernel_core::wasm::env::vmshape::HEADER_FIELDS;
use kernel_core::wasm::env::{DESCRIBE_FEATURES, VMShape, translate};

use crate::exit::Status;
use crate::module_file;

/// Loads the module, computes its layout and prints it.
pub fn run(path: &Path, json: bool) -> Status {
    let bytes = match module_file::read(path) {
        Ok(bytes) => bytes,
        Err(status) => return status,
    };
    let module = match translate(&bytes, DESCRIBE_FEATURES) {
        Ok(module) => module,
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return Status::for_module_error(&error);
        }
    };
    let shape = match VMShape::for_module(&module) {
        Ok(shape) => shape,
        Err(error) => {
            eprintln!("error: {}: {error}", path.display());
            return Status::UnsupportedModule;
        }
    };
    let text = if json {
        render_json(&shape)
    } else {
        render_table(&shape)
    };
    let mut stdout = std::io::stdout().lock();
    match std::io::Write::write_all(&mut stdout, text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout))
    {
        Ok(()) => Status::Success,
        Err(error) => {
            eprintln!("error: the layout could not be written: {error}");
            Status::OutputFailed
        }
    }
}

/// One JSON object: `size`, `header` (field to offset, with `dynamic_data_start`) and
/// `arrays` in layout order. Every key is a fixed identifier, so nothing needs escaping.
fn render_json(shape: &VMShape) -> String {
    let mut out = format!("{{\"size\": {}, \"header\": {{", shape.size());
    for (name, offset) in HEADER_FIELDS {
        let _ = write!(out, "\"{name}\": {offset}, ");
    }
    let _ = write!(
        out,
        "\"dynamic_data_start\": {}}}, \"arrays\": [",
        VMShape::DYNAMIC_DATA_START
    );
    for (position, (array, layout)) in shape.arrays().enumerate() {
        let separator = if position == 0 { "" } else { ", " };
        let _ = write!(
            out,
            "{separator}{{\"name\": \"{}\", \"offset\": {}, \"count\": {}, \"stride\": {}}}",
            array.name(),
            layout.offset,
            layout.count,
            layout.stride
        );
    }
    out.push_str("]}\n");
    out
}

/// A human-readable table.
fn render_table(shape: &VMShape) -> String {
    let mut out = String::from("header\n");
    for (name, offset) in HEADER_FIELDS {
        let _ = writeln!(out, "  {name:<20} {offset:>8}");
    }
    let _ = writeln!(
        out,
        "  {:<20} {:>8}",
        "dynamic_data_start",
        VMShape::DYNAMIC_DATA_START
    );
    let _ = writeln!(
        out,
        "arrays\n  {:<20} {:>8} {:>8} {:>8} {:>8}",
        "name", "offset", "count", "stride", "end"
    );
    for (array, layout) in shape.arrays() {
        let _ = writeln!(
            out,
            "  {:<20} {:>8} {:>8} {:>8} {:>8}",
            array.name(),
            layout.offset,
            layout.count,
            layout.stride,
            layout.end()
        );
    }
    let _ = writeln!(out, "size {}", shape.size());
    out
}
