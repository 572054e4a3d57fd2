//! The jobs of `sim run` and `sim wast` (and of the kernel under `sim qemu`), through a
//! console as the RISC-V kernel prints them: results, traps, usage and module errors,
//! script failures and counts, argument parsing.

use core::cell::RefCell;

use kernel_core::boot::image::{RunRequest, STDERR_PREFIX, Script, WastRequest};
use kernel_core::hal::Console;
use kernel_core::job::{
    ConsoleOutput, JobStatus as Status, format_value, group_args, parse_arg, run_module,
    run_scripts,
};
use kernel_core::spec::{Action, Command, CommandKind, Expected, SpecValue};
use kernel_core::wasm::env::{RefType, ValType, WASM1_FEATURES};
use kernel_core::wasm::runtime::Val;
use tests::hosted_engine;

/// A console that keeps what is written.
#[derive(Default)]
struct Captured(RefCell<Vec<u8>>);

impl Console for Captured {
    fn write_bytes(&self, bytes: &[u8]) {
        self.0.borrow_mut().extend_from_slice(bytes);
    }

    fn read_bytes(&self, _: &mut [u8]) -> usize {
        0
    }
}

impl Captured {
    /// Standard output and standard error, split as the host splits them.
    fn split(&self) -> (String, String) {
        let text = String::from_utf8(self.0.borrow().clone()).unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        for line in text.split_inclusive('\n') {
            match line.strip_prefix(char::from(STDERR_PREFIX)) {
                Some(line) => err.push_str(line),
                None => out.push_str(line),
            }
        }
        (out, err)
    }
}

/// Runs `request` on an engine of its own (no syscalls: every import is unlinkable).
fn run_request(request: &RunRequest, console: &Captured) -> Status {
    let code = run_module(hosted_engine(), request, &ConsoleOutput(console), &());
    Status::from_code(code).expect("a job status")
}

fn run_wat(wat: &str, invoke: Option<&str>, args: &[&str]) -> (Status, String, String) {
    let request = RunRequest {
        path: "test.wat".into(),
        module: wat::parse_str(wat).unwrap(),
        invoke: invoke.map(Into::into),
        args: args.iter().map(|arg| (*arg).to_string()).collect(),
    };
    let console = Captured::default();
    let status = run_request(&request, &console);
    let (out, err) = console.split();
    (status, out, err)
}

const MODULE: &str = r#"(module $demo
    (func $div (export "div") (param i32 i32) (result i32)
        (i32.div_s (local.get 0) (local.get 1)))
    (func (export "pair") (param i64 f64) (result i64 f64)
        (local.get 0) (local.get 1))
    (func (export "_start")))"#;

#[test]
fn results_one_per_line() {
    let (status, out, err) = run_wat(MODULE, Some("pair"), &["-0x1", "2.5"]);
    assert_eq!(
        (status, out.as_str(), err.as_str()),
        (Status::Success, "-1\n2.5\n", "")
    );
    let (status, out, _) = run_wat(MODULE, Some("div"), &["0xffffffff", "1"]);
    assert_eq!((status, out.as_str()), (Status::Success, "-1\n"));
    let (status, out, _) = run_wat(MODULE, None, &[]);
    assert_eq!((status, out.as_str()), (Status::Success, ""));
}

#[test]
fn traps_go_to_standard_error() {
    let (status, out, err) = run_wat(MODULE, Some("div"), &["1", "0"]);
    assert_eq!(status, Status::Trap);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "trap: integer divide by zero\nwasm backtrace:\n  0: demo!div (func 0) at offset 0x43\n"
    );
}

#[test]
fn usage_errors() {
    let (status, _, err) = run_wat(MODULE, Some("nope"), &[]);
    assert_eq!(status, Status::Usage);
    assert_eq!(err, "error: the module exports no function `nope`\n");
    let (status, _, err) = run_wat(MODULE, Some("div"), &["1"]);
    assert_eq!(
        (status, err.as_str()),
        (Status::Usage, "error: `div` takes 2 arguments, 1 given\n")
    );
    let (status, _, err) = run_wat(MODULE, Some("div"), &["1", "x"]);
    assert_eq!(
        (status, err.as_str()),
        (
            Status::Usage,
            "error: `x` is not a valid i32: not a number in the spec notation\n"
        )
    );
    // Without `--invoke`, arguments need a `_start` to take them: none is refused.
    let (status, _, err) = run_wat("(module)", None, &["1", "2"]);
    assert_eq!(
        (status, err.as_str()),
        (
            Status::Usage,
            "error: arguments given, but there is no `--invoke` and no `_start` to take them\n"
        )
    );
}

#[test]
fn module_errors() {
    let (status, _, err) = run_wat(r#"(module (import "m" "f" (func)))"#, None, &[]);
    assert_eq!(status, Status::Unlinkable);
    assert_eq!(err, "error: test.wat: import m::f is not provided\n");
    let request = RunRequest {
        path: "bad.wasm".into(),
        module: b"\0asm\x02\0\0\0".to_vec(),
        invoke: None,
        args: Vec::new(),
    };
    let console = Captured::default();
    assert_eq!(run_request(&request, &console), Status::InvalidModule);
    assert!(console.split().1.starts_with("error: bad.wasm: "));
}

#[test]
fn scripts_print_failures_and_counts() {
    let module =
        wat::parse_str(r#"(module (func (export "one") (result i32) (i32.const 1)))"#).unwrap();
    let invoke = Action::Invoke {
        module: None,
        field: "one".into(),
        args: Vec::<SpecValue>::new(),
    };
    let commands = vec![
        Command {
            line: 1,
            kind: CommandKind::Module {
                name: None,
                bytes: module,
            },
        },
        Command {
            line: 2,
            kind: CommandKind::AssertReturn {
                action: invoke.clone(),
                expected: vec![Expected::I32(1)],
            },
        },
        Command {
            line: 3,
            kind: CommandKind::AssertReturn {
                action: invoke,
                expected: vec![Expected::I32(2)],
            },
        },
    ];
    let request = WastRequest {
        features: WASM1_FEATURES.bits(),
        scripts: vec![Script {
            path: "a.wast".into(),
            commands,
        }],
    };
    let console = Captured::default();
    assert_eq!(
        run_scripts(hosted_engine(), &request, &ConsoleOutput(&console)),
        Status::ScriptFailures
    );
    let (out, err) = console.split();
    assert_eq!(err, "");
    assert_eq!(
        out,
        "a.wast:3: assert_return: invoke \"one\"(): result 0: expected i32 2 (0x2), got i32 1 (0x1)\n\
         2 passed, 1 failed\n"
    );
}

#[test]
fn arguments_parse_as_sim_run_parses_them() {
    assert_eq!(parse_arg("0xffffffff", ValType::I32), Some(Val::I32(-1)));
    assert_eq!(
        parse_arg("-2147483648", ValType::I32),
        Some(Val::I32(i32::MIN))
    );
    assert_eq!(parse_arg("4294967296", ValType::I32), None);
    assert_eq!(
        parse_arg("18446744073709551615", ValType::I64),
        Some(Val::I64(-1))
    );
    assert_eq!(parse_arg("-0x10", ValType::I64), Some(Val::I64(-16)));
    assert_eq!(
        parse_arg("1e3", ValType::F32),
        Some(Val::F32(1000f32.to_bits()))
    );
    assert_eq!(
        parse_arg("inf", ValType::F64),
        Some(Val::F64(f64::INFINITY.to_bits()))
    );
    assert_eq!(parse_arg("1", ValType::V128), None);
    assert_eq!(format_value(&Val::F32(0.1f32.to_bits())), "0.1");
    assert_eq!(format_value(&Val::F64(f64::NAN.to_bits())), "nan");
    assert_eq!(format_value(&Val::I64(i64::MIN)), "-9223372036854775808");
}

#[test]
fn integers_take_one_sign_only() {
    for text in [
        "--5", "-+5", "+-5", "0x-1", "0x+ff", "0x", "-", "", "1__0", "_1", "0X10",
    ] {
        assert_eq!(parse_arg(text, ValType::I32), None, "{text:?}");
        assert_eq!(parse_arg(text, ValType::I64), None, "{text:?}");
    }
    assert_eq!(parse_arg("+5", ValType::I32), Some(Val::I32(5)));
    assert_eq!(parse_arg("1_000", ValType::I32), Some(Val::I32(1000)));
    assert_eq!(
        parse_arg("-0x8000_0000", ValType::I32),
        Some(Val::I32(i32::MIN))
    );
    assert_eq!(parse_arg("-0x8000_0001", ValType::I32), None);
    assert_eq!(
        parse_arg("-9223372036854775808", ValType::I64),
        Some(Val::I64(i64::MIN))
    );
    assert_eq!(
        parse_arg("99999999999999999999999999999999999999999", ValType::I64),
        None
    );
}

#[test]
fn floats_take_the_spec_notation_and_refuse_overflow() {
    let f32_bits = |text: &str| match parse_arg(text, ValType::F32) {
        Some(Val::F32(bits)) => Some(bits),
        _ => None,
    };
    let f64_bits = |text: &str| match parse_arg(text, ValType::F64) {
        Some(Val::F64(bits)) => Some(bits),
        _ => None,
    };
    assert_eq!(f32_bits("1e40"), None, "rounds to infinity");
    assert_eq!(f64_bits("1e400"), None);
    assert_eq!(f32_bits("0x10"), Some(16f32.to_bits()));
    assert_eq!(f32_bits("0x1p3"), Some(8f32.to_bits()));
    assert_eq!(f64_bits("-0x1.8p1"), Some((-3f64).to_bits()));
    assert_eq!(f32_bits("0x1.fffffep127"), Some(f32::MAX.to_bits()));
    assert_eq!(f32_bits("0x1.ffffffp127"), None, "rounds to infinity");
    assert_eq!(f32_bits("0x1.fffffe7p127"), Some(f32::MAX.to_bits()));
    assert_eq!(f32_bits("0x1p-149"), Some(1), "smallest subnormal");
    assert_eq!(f32_bits("0x1p-150"), Some(0), "a tie rounds to even");
    assert_eq!(f32_bits("0x1.8p-150"), Some(1));
    assert_eq!(
        f32_bits("0x1.fffffep-127"),
        Some(0x0080_0000),
        "rounds up to a normal"
    );
    assert_eq!(f64_bits("0x1p-1074"), Some(1));
    assert_eq!(
        f64_bits("0x1.0000000000000_8p0"),
        Some(1f64.to_bits()),
        "tie to even"
    );
    assert_eq!(f64_bits("0x1.0000000000001_8p0"), Some(1f64.to_bits() + 2));
    assert_eq!(
        f64_bits("0x1.00000000000008000000001p0"),
        Some(1f64.to_bits() + 1)
    );
    assert_eq!(f64_bits("1_000.5e-1"), Some(100.05f64.to_bits()));
    assert_eq!(f32_bits("NaN"), Some(0x7fc0_0000));
    assert_eq!(f32_bits("-nan"), Some(0xffc0_0000));
    assert_eq!(f32_bits("nan:0x200000"), Some(0x7fa0_0000));
    assert_eq!(f32_bits("-nan:0x1"), Some(0xff80_0001));
    assert_eq!(f64_bits("nan:0x4"), Some(0x7ff0_0000_0000_0004));
    assert_eq!(f32_bits("nan:0x0"), None);
    assert_eq!(f32_bits("nan:0x800000"), None);
    assert_eq!(f32_bits("-inf"), Some(f32::NEG_INFINITY.to_bits()));
    for text in [
        "--1", "-+1.5", "1e", "e5", "1.2.3", "0x", "0x1p", "0xg", "1e4.5", "nan:1",
    ] {
        assert_eq!(f32_bits(text), None, "{text:?}");
    }
}

#[test]
fn every_printed_value_parses_back_to_the_same_bits() {
    let values = [
        (Val::I32(-7), ValType::I32),
        (Val::I64(i64::MAX), ValType::I64),
        (Val::F32(0.1f32.to_bits()), ValType::F32),
        (Val::F32((-0f32).to_bits()), ValType::F32),
        (Val::F32(1), ValType::F32),
        (Val::F32(f32::MAX.to_bits()), ValType::F32),
        (Val::F32(0xffc0_0000), ValType::F32),
        (Val::F32(0x7fa0_0001), ValType::F32),
        (Val::F64(0xfff0_0000_0000_0001), ValType::F64),
        (Val::F64(f64::MIN_POSITIVE.to_bits()), ValType::F64),
        (Val::F64(f64::NEG_INFINITY.to_bits()), ValType::F64),
        (
            Val::V128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
            ValType::V128,
        ),
        (Val::ExternRef(Some(7)), ValType::Ref(RefType::Extern)),
        (Val::ExternRef(None), ValType::Ref(RefType::Extern)),
        (Val::FuncRef(None), ValType::Ref(RefType::Func)),
    ];
    for (value, ty) in values {
        let text = format_value(&value);
        assert_eq!(parse_arg(&text, ty), Some(value), "{text}");
        let words: Vec<String> = text.split(' ').map(String::from).collect();
        assert_eq!(group_args(&words), vec![text.clone()], "{text}");
    }
    assert_eq!(format_value(&Val::F32(0x7fa0_0000)), "nan:0x200000");
    assert_eq!(format_value(&Val::F64(0xfff8_0000_0000_0000)), "-nan");
    assert_eq!(
        format_value(&Val::V128(u128::from(u32::MAX) << 96 | 1)),
        "i32x4 0x00000001 0x00000000 0x00000000 0xffffffff"
    );
}

#[test]
fn vectors_references_and_nans_pass_through_a_call() {
    let module = r#"(module
        (func (export "v") (param v128) (result v128) (local.get 0))
        (func (export "e") (param externref funcref) (result externref funcref)
            (local.get 0) (local.get 1))
        (func (export "f") (param f32 f64) (result f32 f64) (local.get 0) (local.get 1)))"#;
    let (status, out, err) = run_wat(
        module,
        Some("v"),
        &["i16x8", "1", "2", "3", "4", "5", "6", "7", "-1"],
    );
    assert_eq!((status, err.as_str()), (Status::Success, ""));
    assert_eq!(
        out,
        "i32x4 0x00020001 0x00040003 0x00060005 0xffff0007
"
    );
    let (_, out, _) = run_wat(module, Some("v"), &["f32x4 1 -nan 0x1p-149 inf"]);
    assert_eq!(
        out,
        "i32x4 0x3f800000 0xffc00000 0x00000001 0x7f800000
"
    );
    let (_, out, _) = run_wat(module, Some("e"), &["ref.extern", "7", "ref.null"]);
    assert_eq!(
        out,
        "ref.extern 7
ref.null func
"
    );
    let (_, out, _) = run_wat(module, Some("f"), &["-nan:0x1", "nan:0x8000000000000"]);
    assert_eq!(
        out,
        "-nan:0x1
nan
"
    );
    let (status, _, err) = run_wat(module, Some("v"), &["i32x4", "1", "2", "3"]);
    assert_eq!(
        (status, err.as_str()),
        (
            Status::Usage,
            "error: `i32x4 1 2 3` is not a valid v128: i32x4 takes 4 lanes, 3 given\n"
        )
    );
}

#[test]
fn register_rebinds_the_builtin_spectest_module() {
    let replacement =
        wat::parse_str(r#"(module (global (export "global_i32") i32 (i32.const 42)))"#).unwrap();
    let importer = wat::parse_str(
        r#"(module
            (import "spectest" "global_i32" (global $g i32))
            (func (export "get") (result i32) (global.get $g)))"#,
    )
    .unwrap();
    let get = Action::Invoke {
        module: None,
        field: "get".into(),
        args: Vec::new(),
    };
    let commands = vec![
        Command {
            line: 1,
            kind: CommandKind::Module {
                name: Some("$M".into()),
                bytes: replacement,
            },
        },
        Command {
            line: 2,
            kind: CommandKind::Register {
                as_name: "spectest".into(),
                module: Some("$M".into()),
            },
        },
        Command {
            line: 3,
            kind: CommandKind::Module {
                name: None,
                bytes: importer,
            },
        },
        Command {
            line: 4,
            kind: CommandKind::AssertReturn {
                action: get,
                expected: vec![Expected::I32(42)],
            },
        },
    ];
    let request = WastRequest {
        features: WASM1_FEATURES.bits(),
        scripts: vec![Script {
            path: "register.wast".into(),
            commands,
        }],
    };
    let console = Captured::default();
    let status = run_scripts(hosted_engine(), &request, &ConsoleOutput(&console));
    let (out, _) = console.split();
    assert_eq!(
        (status, out.as_str()),
        (Status::Success, "4 passed, 0 failed\n")
    );
}
