//! Spec scripts (`.wast`) converted on the host into [`kernel_core::spec`] commands.
//!
//! The `wast` crate parses the script; text modules (and `module quote`) are encoded to
//! binary here, so the engine, hosted or bare-metal, only ever sees binary modules and
//! decoded values. A directive that cannot be converted becomes a command that fails when
//! run ([`CommandKind::BadModule`] or [`CommandKind::Unsupported`]), never a skipped one.

use std::fmt;
use std::path::{Path, PathBuf};

use kernel_core::spec::{
    Action, Command, CommandKind, Expected, FloatPattern, RefKind, SpecValue, V128Pattern,
};
use wast::core::{
    AbstractHeapType, HeapType, NanPattern, V128Pattern as WastV128Pattern, WastArgCore,
    WastRetCore,
};
use wast::lexer::Lexer;
use wast::parser::{self, ParseBuffer};
use wast::token::{Id, Span};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

use crate::diagnostic;

/// A script that could not be parsed at all (as opposed to one directive that could not
/// be converted, which becomes a failing command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// The script's path, as given.
    pub path: PathBuf,
    /// The 1-based line of the error.
    pub line: u32,
    /// The parser's message, with the offending source line.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptError {}

/// Parses a spec script and converts every directive into a [`Command`].
///
/// `path` only labels error messages. Confusable Unicode characters are allowed in the
/// text, as the testsuite uses them on purpose (`names.wast`).
///
/// # Errors
///
/// [`ScriptError`] when the script itself does not parse (unbalanced parentheses, an
/// unknown directive keyword, an ill-formed text module outside `module quote`).
pub fn parse_script(source: &str, path: &Path) -> Result<Vec<Command>, ScriptError> {
    let lines = LineTable::new(source);
    let script_error = |error: wast::Error| {
        let line = lines.line(error.span());
        let message =
            diagnostic::parse_error(&error.message(), path, source, error.span().offset());
        ScriptError {
            path: path.to_path_buf(),
            line,
            message,
        }
    };
    let mut lexer = Lexer::new(source);
    lexer.allow_confusing_unicode(true);
    let buffer = ParseBuffer::new_with_lexer(lexer).map_err(script_error)?;
    let wast = parser::parse::<Wast<'_>>(&buffer).map_err(script_error)?;
    Ok(wast
        .directives
        .into_iter()
        .map(|directive| Command {
            line: lines.line(directive.span()),
            kind: convert_directive(directive),
        })
        .collect())
}

/// Byte offsets of line starts, to turn spans into line numbers in logarithmic time
/// (`Span::linecol_in` scans the whole text, once per directive).
struct LineTable {
    starts: Vec<usize>,
}

impl LineTable {
    fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { starts }
    }

    /// The 1-based line holding `span`'s first byte.
    fn line(&self, span: Span) -> u32 {
        let line = self.starts.partition_point(|&start| start <= span.offset());
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}

/// Why a directive could not be converted: the directive's keyword and the reason.
type Unconverted = (&'static str, String);

/// Converts one directive; anything that cannot be converted becomes a failing command.
fn convert_directive(directive: WastDirective<'_>) -> CommandKind {
    try_convert(directive).unwrap_or_else(|(directive, reason)| CommandKind::Unsupported {
        directive: directive.to_string(),
        reason,
    })
}

fn try_convert(directive: WastDirective<'_>) -> Result<CommandKind, Unconverted> {
    Ok(match directive {
        WastDirective::Module(module) => {
            reject_component("module", &module)?;
            let name = id_name(module.name());
            match encode_quote(module) {
                Ok(bytes) => CommandKind::Module { name, bytes },
                Err(message) => CommandKind::BadModule { name, message },
            }
        }
        WastDirective::ModuleDefinition(module) => {
            reject_component("module definition", &module)?;
            let name = id_name(module.name());
            match encode_quote(module) {
                Ok(bytes) => CommandKind::ModuleDefinition { name, bytes },
                Err(message) => CommandKind::BadModule { name, message },
            }
        }
        WastDirective::ModuleInstance {
            instance, module, ..
        } => CommandKind::ModuleInstance {
            instance: id_name(instance),
            definition: id_name(module),
        },
        WastDirective::Register { name, module, .. } => CommandKind::Register {
            as_name: name.to_string(),
            module: id_name(module),
        },
        WastDirective::Invoke(invoke) => CommandKind::Action(convert_invoke(invoke, "invoke")?),
        WastDirective::AssertReturn { exec, results, .. } => {
            const DIRECTIVE: &str = "assert_return";
            let action = convert_execute(exec, DIRECTIVE)?;
            let expected = results
                .into_iter()
                .map(convert_ret)
                .collect::<Result<_, _>>()
                .map_err(|reason| (DIRECTIVE, reason))?;
            CommandKind::AssertReturn { action, expected }
        }
        WastDirective::AssertTrap { exec, message, .. } => {
            const DIRECTIVE: &str = "assert_trap";
            let message = message.to_string();
            match exec {
                WastExecute::Wat(module) => CommandKind::AssertUninstantiable {
                    bytes: encode_wat(module, DIRECTIVE)?,
                    message,
                },
                exec => CommandKind::AssertTrap {
                    action: convert_execute(exec, DIRECTIVE)?,
                    message,
                },
            }
        }
        WastDirective::AssertExhaustion { call, message, .. } => CommandKind::AssertExhaustion {
            action: convert_invoke(call, "assert_exhaustion")?,
            message: message.to_string(),
        },
        WastDirective::AssertInvalid {
            module, message, ..
        } => {
            const DIRECTIVE: &str = "assert_invalid";
            reject_component(DIRECTIVE, &module)?;
            let bytes = encode_quote(module).map_err(|error| {
                (
                    DIRECTIVE,
                    format!("the module text failed to encode: {error}"),
                )
            })?;
            CommandKind::AssertInvalid {
                bytes,
                message: message.to_string(),
            }
        }
        WastDirective::AssertMalformed {
            module, message, ..
        } => {
            reject_component("assert_malformed", &module)?;
            CommandKind::AssertMalformed {
                // Text that fails to parse or encode is malformed: that is the expected
                // outcome, and the command passes.
                bytes: encode_quote(module).ok(),
                message: message.to_string(),
            }
        }
        WastDirective::AssertUnlinkable {
            module, message, ..
        } => CommandKind::AssertUnlinkable {
            bytes: encode_wat(module, "assert_unlinkable")?,
            message: message.to_string(),
        },
        WastDirective::AssertInvalidCustom { .. } => {
            return Err(unsupported("assert_invalid_custom"));
        }
        WastDirective::AssertMalformedCustom { .. } => {
            return Err(unsupported("assert_malformed_custom"));
        }
        WastDirective::AssertException { .. } => return Err(unsupported("assert_exception")),
        WastDirective::AssertSuspension { .. } => return Err(unsupported("assert_suspension")),
        WastDirective::Thread(_) => return Err(unsupported("thread")),
        WastDirective::Wait { .. } => return Err(unsupported("wait")),
    })
}

fn unsupported(directive: &'static str) -> Unconverted {
    (
        directive,
        format!("the `{directive}` directive is not supported"),
    )
}

fn id_name(id: Option<Id<'_>>) -> Option<String> {
    id.map(|id| id.name().to_string())
}

/// Components are not core modules: the kernel runs only the latter.
fn reject_component(directive: &'static str, module: &QuoteWat<'_>) -> Result<(), Unconverted> {
    match module {
        QuoteWat::Wat(Wat::Component(_)) | QuoteWat::QuoteComponent(..) => Err((
            directive,
            "components are not supported, only core modules".to_string(),
        )),
        QuoteWat::Wat(Wat::Module(_)) | QuoteWat::QuoteModule(..) => Ok(()),
    }
}

/// Encodes a text, binary or quoted module to binary; the error is the parser's message.
fn encode_quote(mut module: QuoteWat<'_>) -> Result<Vec<u8>, String> {
    module
        .encode()
        .map_err(|error| diagnostic::printable(&error.message(), diagnostic::MESSAGE_CHARS))
}

/// Encodes a module of an assertion that needs its binary.
fn encode_wat(mut module: Wat<'_>, directive: &'static str) -> Result<Vec<u8>, Unconverted> {
    if let Wat::Component(_) = module {
        return Err((
            directive,
            "components are not supported, only core modules".to_string(),
        ));
    }
    module.encode().map_err(|error| {
        (
            directive,
            format!(
                "the module text failed to encode: {}",
                diagnostic::printable(&error.message(), diagnostic::MESSAGE_CHARS)
            ),
        )
    })
}

fn convert_execute(exec: WastExecute<'_>, directive: &'static str) -> Result<Action, Unconverted> {
    match exec {
        WastExecute::Invoke(invoke) => convert_invoke(invoke, directive),
        WastExecute::Get { module, global, .. } => Ok(Action::Get {
            module: id_name(module),
            field: global.to_string(),
        }),
        WastExecute::Wat(_) => Err((directive, "a module is not an action here".to_string())),
    }
}

fn convert_invoke(invoke: WastInvoke<'_>, directive: &'static str) -> Result<Action, Unconverted> {
    let args = invoke
        .args
        .into_iter()
        .map(convert_arg)
        .collect::<Result<_, _>>()
        .map_err(|reason| (directive, reason))?;
    Ok(Action::Invoke {
        module: id_name(invoke.module),
        field: invoke.name.to_string(),
        args,
    })
}

fn convert_arg(arg: WastArg<'_>) -> Result<SpecValue, String> {
    let WastArg::Core(arg) = arg else {
        return Err(format!("component-model argument {arg:?}"));
    };
    Ok(match arg {
        // The casts keep the bits: the engine sees i32 and i64 as bit patterns.
        WastArgCore::I32(value) => SpecValue::I32(value as u32),
        WastArgCore::I64(value) => SpecValue::I64(value as u64),
        WastArgCore::F32(value) => SpecValue::F32(value.bits),
        WastArgCore::F64(value) => SpecValue::F64(value.bits),
        WastArgCore::V128(value) => SpecValue::V128(u128::from_le_bytes(value.to_le_bytes())),
        WastArgCore::RefNull(heap_type) => match ref_kind(&heap_type)? {
            RefKind::Func => SpecValue::FuncRef(None),
            RefKind::Extern => SpecValue::ExternRef(None),
        },
        WastArgCore::RefExtern(value) => SpecValue::ExternRef(Some(value)),
        WastArgCore::RefHost(_) => return Err("`ref.host` arguments are not supported".into()),
    })
}

/// The reference hierarchy of an abstract `func` or `extern` heap type.
fn ref_kind(heap_type: &HeapType<'_>) -> Result<RefKind, String> {
    match heap_type {
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Func | AbstractHeapType::NoFunc,
        } => Ok(RefKind::Func),
        HeapType::Abstract {
            shared: false,
            ty: AbstractHeapType::Extern | AbstractHeapType::NoExtern,
        } => Ok(RefKind::Extern),
        other => Err(format!(
            "null references of heap type {other:?} are not supported"
        )),
    }
}

fn convert_ret(ret: WastRet<'_>) -> Result<Expected, String> {
    let WastRet::Core(ret) = ret else {
        return Err(format!("component-model result {ret:?}"));
    };
    convert_ret_core(ret)
}

fn convert_ret_core(ret: WastRetCore<'_>) -> Result<Expected, String> {
    Ok(match ret {
        WastRetCore::I32(value) => Expected::I32(value as u32),
        WastRetCore::I64(value) => Expected::I64(value as u64),
        WastRetCore::F32(pattern) => Expected::F32(float_pattern(pattern, |f| f.bits)),
        WastRetCore::F64(pattern) => Expected::F64(float_pattern(pattern, |f| f.bits)),
        WastRetCore::V128(pattern) => Expected::V128(v128_pattern(pattern)),
        WastRetCore::RefNull(None) => Expected::RefNull(None),
        WastRetCore::RefNull(Some(heap_type)) => Expected::RefNull(Some(ref_kind(&heap_type)?)),
        WastRetCore::RefExtern(value) => Expected::RefExtern(value),
        WastRetCore::RefFunc(_) => Expected::RefFunc,
        WastRetCore::Either(choices) => Expected::Either(
            choices
                .into_iter()
                .map(convert_ret_core)
                .collect::<Result<_, _>>()?,
        ),
        other @ (WastRetCore::RefHost(_)
        | WastRetCore::RefAny
        | WastRetCore::RefEq
        | WastRetCore::RefArray
        | WastRetCore::RefStruct
        | WastRetCore::RefI31
        | WastRetCore::RefI31Shared) => {
            return Err(format!("result pattern {other:?} is not supported"));
        }
    })
}

fn float_pattern<F, Bits>(pattern: NanPattern<F>, bits: impl Fn(F) -> Bits) -> FloatPattern<Bits> {
    match pattern {
        NanPattern::CanonicalNan => FloatPattern::CanonicalNan,
        NanPattern::ArithmeticNan => FloatPattern::ArithmeticNan,
        NanPattern::Value(value) => FloatPattern::Exact(bits(value)),
    }
}

fn v128_pattern(pattern: WastV128Pattern) -> V128Pattern {
    // Integer lanes keep their bits whatever their sign in the script.
    match pattern {
        WastV128Pattern::I8x16(lanes) => V128Pattern::I8x16(lanes.map(|lane| lane as u8)),
        WastV128Pattern::I16x8(lanes) => V128Pattern::I16x8(lanes.map(|lane| lane as u16)),
        WastV128Pattern::I32x4(lanes) => V128Pattern::I32x4(lanes.map(|lane| lane as u32)),
        WastV128Pattern::I64x2(lanes) => V128Pattern::I64x2(lanes.map(|lane| lane as u64)),
        WastV128Pattern::F32x4(lanes) => {
            V128Pattern::F32x4(lanes.map(|lane| float_pattern(lane, |f| f.bits)))
        }
        WastV128Pattern::F64x2(lanes) => {
            V128Pattern::F64x2(lanes.map(|lane| float_pattern(lane, |f| f.bits)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(source: &str) -> Vec<Command> {
        parse_script(source, Path::new("test.wast")).expect("the script parses")
    }

    #[test]
    fn modules_are_encoded_and_lines_counted() {
        let commands = parse(
            ";; comment\n\
             (module $m (func (export \"f\") (result i32) i32.const 7))\n\
             (module quote \"(func)\")\n\
             (module binary \"\\00asm\" \"\\01\\00\\00\\00\")\n\
             (register \"M\" $m)\n",
        );
        assert_eq!(commands.len(), 4);
        assert_eq!(
            commands.iter().map(|c| c.line).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        let CommandKind::Module { name, bytes } = &commands[0].kind else {
            panic!("{:?}", commands[0]);
        };
        assert_eq!(name.as_deref(), Some("m"));
        assert!(bytes.starts_with(b"\0asm"));
        assert!(matches!(
            &commands[1].kind,
            CommandKind::Module { name: None, .. }
        ));
        assert_eq!(
            commands[2].kind,
            CommandKind::Module {
                name: None,
                bytes: b"\0asm\x01\0\0\0".to_vec()
            }
        );
        assert_eq!(
            commands[3].kind,
            CommandKind::Register {
                as_name: "M".into(),
                module: Some("m".into())
            }
        );
    }

    #[test]
    fn values_and_patterns() {
        let commands = parse(
            "(assert_return (invoke $m \"f\" (i32.const -1) (i64.const -2) (f32.const -0x1p0) \
               (f64.const nan:0x4) (v128.const i16x8 -1 0 0 0 0 0 0 1) (ref.null func) \
               (ref.null extern) (ref.extern 3))\n\
               (i32.const -1) (f32.const nan:canonical) (f64.const nan:arithmetic) \
               (f32.const 1.5) (v128.const f32x4 nan:canonical 0 -0 nan:arithmetic) \
               (v128.const i8x16 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1) \
               (ref.null func) (ref.func) (ref.extern 4) (either (i32.const 1) (i32.const 2)))\n\
             (assert_return (get \"g\") (i64.const 1))",
        );
        let CommandKind::AssertReturn { action, expected } = &commands[0].kind else {
            panic!("{:?}", commands[0]);
        };
        assert_eq!(
            *action,
            Action::Invoke {
                module: Some("m".into()),
                field: "f".into(),
                args: vec![
                    SpecValue::I32(u32::MAX),
                    SpecValue::I64(u64::MAX - 1),
                    SpecValue::F32(0xbf80_0000),
                    SpecValue::F64(0x7ff0_0000_0000_0004),
                    SpecValue::V128(0xffff | (1 << 112)),
                    SpecValue::FuncRef(None),
                    SpecValue::ExternRef(None),
                    SpecValue::ExternRef(Some(3)),
                ],
            }
        );
        let mut bytes = [0u8; 16];
        bytes[0] = 0xff;
        bytes[15] = 1;
        assert_eq!(
            *expected,
            [
                Expected::I32(u32::MAX),
                Expected::F32(FloatPattern::CanonicalNan),
                Expected::F64(FloatPattern::ArithmeticNan),
                Expected::F32(FloatPattern::Exact(0x3fc0_0000)),
                Expected::V128(V128Pattern::F32x4([
                    FloatPattern::CanonicalNan,
                    FloatPattern::Exact(0),
                    FloatPattern::Exact(0x8000_0000),
                    FloatPattern::ArithmeticNan,
                ])),
                Expected::V128(V128Pattern::I8x16(bytes)),
                Expected::RefNull(Some(RefKind::Func)),
                Expected::RefFunc,
                Expected::RefExtern(Some(4)),
                Expected::Either(vec![Expected::I32(1), Expected::I32(2)]),
            ]
        );
        assert_eq!(commands[0].line, 1);
        assert_eq!(commands[1].line, 3);
        assert_eq!(
            commands[1].kind,
            CommandKind::AssertReturn {
                action: Action::Get {
                    module: None,
                    field: "g".into()
                },
                expected: vec![Expected::I64(1)],
            }
        );
    }

    #[test]
    fn assertions() {
        let commands = parse(
            "(assert_trap (invoke \"f\") \"unreachable\")\n\
             (assert_trap (module (func $f unreachable) (start $f)) \"unreachable\")\n\
             (assert_exhaustion (invoke \"f\") \"call stack exhausted\")\n\
             (assert_invalid (module (func (result i32))) \"type mismatch\")\n\
             (assert_malformed (module quote \"(func (i32.bogus))\") \"unknown operator\")\n\
             (assert_malformed (module binary \"\\00asm\") \"unexpected end\")\n\
             (assert_unlinkable (module (import \"x\" \"y\" (func))) \"unknown import\")\n",
        );
        let kinds: Vec<&CommandKind> = commands.iter().map(|c| &c.kind).collect();
        assert!(
            matches!(kinds[0], CommandKind::AssertTrap { message, .. } if message == "unreachable")
        );
        assert!(
            matches!(kinds[1], CommandKind::AssertUninstantiable { bytes, .. } if bytes.starts_with(b"\0asm"))
        );
        assert!(matches!(kinds[2], CommandKind::AssertExhaustion { .. }));
        assert!(matches!(kinds[3], CommandKind::AssertInvalid { .. }));
        assert!(matches!(
            kinds[4],
            CommandKind::AssertMalformed { bytes: None, .. }
        ));
        assert_eq!(
            *kinds[5],
            CommandKind::AssertMalformed {
                bytes: Some(b"\0asm".to_vec()),
                message: "unexpected end".into()
            }
        );
        assert!(matches!(kinds[6], CommandKind::AssertUnlinkable { .. }));
        assert!(commands.iter().all(|c| c.kind.is_assertion()));
        assert!(commands.iter().all(|c| c.kind.conversion_error().is_none()));
    }

    #[test]
    fn what_cannot_be_converted_fails_instead_of_vanishing() {
        let commands = parse(
            "(module quote \"(func (i32.bogus))\")\n\
             (assert_return (invoke \"f\") (ref.i31))\n\
             (thread $t (invoke \"f\"))\n\
             (wait $t)\n\
             (assert_invalid (module quote \"(func (i32.bogus))\") \"type mismatch\")\n",
        );
        assert_eq!(commands.len(), 5);
        assert!(
            matches!(&commands[0].kind, CommandKind::BadModule { name: None, message } if message.contains("unknown operator")),
            "{:?}",
            commands[0]
        );
        for command in &commands {
            assert!(command.kind.conversion_error().is_some(), "{command:?}");
        }
        assert_eq!(commands[2].kind.directive(), "thread");
        assert!(commands[4].kind.is_assertion());
    }

    #[test]
    fn a_script_that_does_not_parse_is_an_error() {
        let error = parse_script(
            "(module)\n(assert_return (invoke \"f\")",
            Path::new("x.wast"),
        )
        .expect_err("unbalanced");
        assert_eq!(error.line, 2);
        assert!(error.to_string().contains("x.wast"), "{error}");
    }
}
