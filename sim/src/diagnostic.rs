//! Error messages that quote input: the offending line shortened around the error and
//! every control character escaped, so that a 1 MB line or a binary file given as text
//! gives a short, printable message.

use std::fmt::Write as _;
use std::path::Path;

/// The most characters of a quoted source line shown before the error's column.
const SNIPPET_BEFORE: usize = 32;
/// The most characters of a quoted source line shown from the error's column on.
const SNIPPET_AFTER: usize = 48;
/// The most characters of a message (which may quote names from the input) kept.
pub const MESSAGE_CHARS: usize = 240;

/// Appends `ch` to `out` as it can be shown on a terminal: control characters (NUL, escape,
/// carriage return, ...) and the bidirectional-text controls that would reorder the line
/// as `\u{..}` escapes, a tab as `\t`.
fn push_printable(out: &mut String, ch: char) {
    match ch {
        '\t' => out.push_str("\\t"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {
            out.extend(ch.escape_unicode());
        }
        ch if ch.is_control() => out.extend(ch.escape_unicode()),
        ch => out.push(ch),
    }
}

/// `text` with its control characters escaped ([`push_printable`], newlines included) and
/// cut after `max_chars` characters of input, marked with `…`.
#[must_use]
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2));
    for (index, ch) in text.chars().enumerate() {
        if index == max_chars {
            out.push('…');
            break;
        }
        push_printable(&mut out, ch);
    }
    out
}

/// Renders a parse error at byte `offset` of `source` as the `wast` crate does
/// (message, `--> path:line:column`, the line, a caret under the column), but with the
/// message and the line made [`printable`] and the line cut to a window around the column.
#[must_use]
pub fn parse_error(message: &str, path: &Path, source: &str, offset: usize) -> String {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let (before_error, from_error) = source.split_at(offset);
    let line_start = before_error.rfind('\n').map_or(0, |newline| newline + 1);
    let line_number = before_error.bytes().filter(|&byte| byte == b'\n').count() + 1;
    let line_before = &before_error[line_start..];
    let line_after = from_error.split('\n').next().unwrap_or("");
    let line_after = line_after.strip_suffix('\r').unwrap_or(line_after);
    let column = line_before.chars().count() + 1;

    let mut snippet = String::new();
    let skipped = (column - 1).saturating_sub(SNIPPET_BEFORE);
    if skipped > 0 {
        snippet.push('…');
    }
    for ch in line_before.chars().skip(skipped) {
        push_printable(&mut snippet, ch);
    }
    let caret = snippet.chars().count();
    let mut shown = line_after.chars();
    for ch in shown.by_ref().take(SNIPPET_AFTER) {
        push_printable(&mut snippet, ch);
    }
    if shown.next().is_some() {
        snippet.push('…');
    }

    let mut out = printable(message, MESSAGE_CHARS);
    let path = printable(&path.display().to_string(), MESSAGE_CHARS);
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        "\n     --> {path}:{line_number}:{column}\n      |\n {line_number:4} | {snippet}\n      | {:caret$}^",
        ""
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_lines_render_like_the_wast_crate() {
        let source = "(module\n  (func $x (oops)))\n";
        let offset = source.find("oops").unwrap();
        assert_eq!(
            parse_error("unknown operator", Path::new("m.wat"), source, offset),
            "unknown operator\n     --> m.wat:2:13\n      |\n    2 |   (func $x (oops)))\n      |             ^"
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column_and_controls_escaped() {
        let mut source = "a".repeat(1 << 20);
        source.insert_str(500_000, "\0\x1b[31m");
        let rendered = parse_error("bad", Path::new("x"), &source, 500_000);
        assert!(rendered.len() < 400, "{rendered}");
        assert!(
            !rendered.contains('\0') && !rendered.contains('\x1b'),
            "{rendered}"
        );
        assert!(rendered.contains("x:1:500001"), "{rendered}");
        let lines: Vec<&str> = rendered.lines().collect();
        let snippet = lines[3].split_once("| ").unwrap().1;
        let caret = lines[4].split_once("| ").unwrap().1;
        assert!(
            snippet.starts_with('…') && snippet.ends_with('…'),
            "{snippet}"
        );
        let at = caret.chars().count() - 1;
        assert_eq!(
            snippet.chars().skip(at).take(5).collect::<String>(),
            "\\u{0}"
        );
    }

    #[test]
    fn messages_are_cut_and_escaped() {
        assert_eq!(printable("a\nb\u{202e}c", 10), "a\\u{a}b\\u{202e}c");
        assert_eq!(printable(&"x".repeat(500), 3), "xxx…");
    }
}
