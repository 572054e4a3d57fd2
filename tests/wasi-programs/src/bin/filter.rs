//! Reads all of standard input, writes each line numbered and reversed to standard output,
//! then the counts; exits with the status given as the first argument.

use std::io::{BufRead, Read, Write};

fn main() {
    let status: i32 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(0);
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    // The first line through the buffered reader, the rest in one read.
    let mut first = String::new();
    lock.read_line(&mut first).expect("stdin");
    let mut rest = Vec::new();
    lock.read_to_end(&mut rest).expect("stdin");
    drop(lock);
    let mut all = first.into_bytes();
    all.extend_from_slice(&rest);
    let text = String::from_utf8_lossy(&all);
    let mut out = std::io::stdout().lock();
    let mut lines = 0;
    for (number, line) in text.lines().enumerate() {
        let reversed: String = line.chars().rev().collect();
        writeln!(out, "{:3} {reversed}", number + 1).unwrap();
        lines += 1;
    }
    writeln!(
        out,
        "{lines} lines, {} bytes, {} chars",
        all.len(),
        text.chars().count()
    )
    .unwrap();
    // A read at the end of input reads nothing.
    let mut more = [0u8; 16];
    writeln!(
        out,
        "after the end: {} bytes",
        std::io::stdin().read(&mut more).unwrap()
    )
    .unwrap();
    out.flush().unwrap();
    std::process::exit(status);
}
