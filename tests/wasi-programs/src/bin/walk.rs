//! Prints every entry under each directory argument, depth first and sorted by name: its
//! kind and, for a file, its size and the first line of its contents.

use std::path::Path;

fn walk(dir: &Path, depth: usize) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        let indent = "  ".repeat(depth);
        if kind.is_dir() {
            println!("{indent}{name}/");
            walk(&path, depth + 1)?;
        } else if kind.is_symlink() {
            println!("{indent}{name} -> {}", std::fs::read_link(&path)?.display());
        } else {
            let bytes = std::fs::read(&path)?;
            let sum = bytes.iter().fold(0u32, |sum, &byte| {
                sum.wrapping_mul(31).wrapping_add(u32::from(byte))
            });
            let first = String::from_utf8_lossy(&bytes)
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(40)
                .collect::<String>();
            println!(
                "{indent}{name} {} bytes (metadata {}), sum {sum:08x}: {first:?}",
                bytes.len(),
                std::fs::metadata(&path)?.len()
            );
        }
    }
    Ok(())
}

fn main() {
    let mut status = 0;
    for dir in std::env::args().skip(1) {
        println!("{dir}:");
        if let Err(error) = walk(Path::new(&dir), 1) {
            println!("{dir}: error {:?}", error.kind());
            status = 2;
        }
    }
    std::process::exit(status);
}
