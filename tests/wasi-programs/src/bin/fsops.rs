//! Changes the directory it is given (first argument, default `.`): writes, appends,
//! truncates, renames, copies, links and deletes files, makes and removes directories,
//! printing what each step returned; then tries what must fail and prints the error kinds.
//! Exits with the number of steps that went otherwise than expected.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// An error as its message without the errno's number (the numbers differ between WASI
/// and Linux; the messages of wasi-libc and glibc agree). Not the kind: std on
/// wasm32-wasip1 leaves some errnos (`ENOTEMPTY`) uncategorized.
fn describe(error: &std::io::Error) -> String {
    let message = error.to_string();
    match message.find(" (os error") {
        Some(end) => message[..end].to_owned(),
        None => message,
    }
}

fn main() {
    let base = std::env::args().nth(1).unwrap_or_else(|| ".".to_owned());
    let base = Path::new(&base);
    let p = |name: &str| base.join(name);
    let mut unexpected = 0;
    let mut step = |name: &str, result: std::io::Result<String>, should_succeed: bool| {
        match &result {
            Ok(value) => println!("{name}: ok {value}"),
            Err(error) => println!("{name}: error {}", describe(error)),
        }
        if result.is_ok() != should_succeed {
            unexpected += 1;
        }
    };

    step(
        "create_dir out",
        fs::create_dir(p("out")).map(|()| String::new()),
        true,
    );
    step(
        "create_dir_all out/a/b/c",
        fs::create_dir_all(p("out/a/b/c")).map(|()| String::new()),
        true,
    );
    step(
        "write out/new.txt",
        fs::write(p("out/new.txt"), b"first line\n").map(|()| String::new()),
        true,
    );
    step(
        "append out/new.txt",
        OpenOptions::new()
            .append(true)
            .open(p("out/new.txt"))
            .and_then(|mut file| file.write_all(b"second line\n"))
            .map(|()| String::new()),
        true,
    );
    step(
        "read out/new.txt",
        fs::read_to_string(p("out/new.txt")).map(|text| format!("{text:?}")),
        true,
    );
    step(
        "seek and overwrite out/new.txt",
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(p("out/new.txt"))
            .and_then(|mut file| {
                file.seek(SeekFrom::Start(6))?;
                file.write_all(b"LINE")?;
                let end = file.seek(SeekFrom::End(0))?;
                file.seek(SeekFrom::Start(0))?;
                let mut text = String::new();
                file.read_to_string(&mut text)?;
                Ok(format!("end {end}: {text:?}"))
            }),
        true,
    );
    step(
        "truncate hello.txt to 5",
        OpenOptions::new()
            .write(true)
            .open(p("hello.txt"))
            .and_then(|file| file.set_len(5))
            .and_then(|()| fs::metadata(p("hello.txt")))
            .map(|meta| format!("len {}", meta.len())),
        true,
    );
    step(
        "rename data/old.txt out/renamed.txt",
        fs::rename(p("data/old.txt"), p("out/renamed.txt")).map(|()| String::new()),
        true,
    );
    step(
        "rename out/a out/moved",
        fs::rename(p("out/a"), p("out/moved")).map(|()| String::new()),
        true,
    );
    step(
        "copy hello.txt out/copy.txt",
        fs::copy(p("hello.txt"), p("out/copy.txt")).map(|n| n.to_string()),
        true,
    );
    step(
        "hard_link out/copy.txt out/link.txt",
        fs::hard_link(p("out/copy.txt"), p("out/link.txt")).map(|()| String::new()),
        true,
    );
    step(
        "remove_file junk.txt",
        fs::remove_file(p("junk.txt")).map(|()| String::new()),
        true,
    );
    step(
        "remove_dir empty",
        fs::remove_dir(p("empty")).map(|()| String::new()),
        true,
    );
    step(
        "remove_dir_all out/moved",
        fs::remove_dir_all(p("out/moved")).map(|()| String::new()),
        true,
    );
    step(
        "create_new out/exclusive.txt",
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p("out/exclusive.txt"))
            .and_then(|mut file| file.write_all(b"only once\n"))
            .map(|()| String::new()),
        true,
    );
    let mut big = Vec::new();
    for i in 0..20_000u32 {
        big.extend_from_slice(&i.to_le_bytes());
    }
    step(
        "write out/big.bin 80000 bytes",
        fs::write(p("out/big.bin"), &big).map(|()| String::new()),
        true,
    );
    step(
        "read back out/big.bin",
        fs::read(p("out/big.bin"))
            .map(|bytes| format!("{} bytes, equal {}", bytes.len(), bytes == big)),
        true,
    );

    // What must fail.
    step(
        "read missing.txt",
        fs::read(p("missing.txt")).map(|_| String::new()),
        false,
    );
    step(
        "create_new out/exclusive.txt again",
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p("out/exclusive.txt"))
            .map(|_| String::new()),
        false,
    );
    step(
        "create_dir data (exists)",
        fs::create_dir(p("data")).map(|()| String::new()),
        false,
    );
    step(
        "remove_dir data (not empty)",
        fs::remove_dir(p("data")).map(|()| String::new()),
        false,
    );
    step(
        "remove_file data (a directory)",
        fs::remove_file(p("data")).map(|()| String::new()),
        false,
    );
    step(
        "read_dir hello.txt (a file)",
        fs::read_dir(p("hello.txt")).map(|_| String::new()),
        false,
    );
    step(
        "read hello.txt/x (through a file)",
        fs::read(p("hello.txt/x")).map(|_| String::new()),
        false,
    );
    step(
        "rename missing.txt x",
        fs::rename(p("missing.txt"), p("x")).map(|()| String::new()),
        false,
    );

    println!("{unexpected} unexpected");
    std::process::exit(unexpected);
}
