//! The runner against a mock engine whose "modules" are short texts.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::collections::HashMap;

use super::*;

/// A module is its text: `invalid`, `unlinkable`, `unsupported`, `trap MESSAGE`, or any
/// other text for a module that instantiates. Every instance exports the same functions
/// (see [`MockEngine::invoke`]) and a global `g` holding ten times its id.
#[derive(Default)]
struct MockEngine {
    /// Instance id → the module text it was instantiated from.
    instances: HashMap<u32, String>,
    registered: Vec<(String, u32)>,
    instantiations: u32,
}

impl SpecEngine for MockEngine {
    type Instance = u32;

    fn instantiate(&mut self, bytes: &[u8]) -> Result<u32, InstantiateError> {
        self.instantiations += 1;
        let text =
            core::str::from_utf8(bytes).map_err(|e| InstantiateError::Invalid(e.to_string()))?;
        match text {
            "invalid" => Err(InstantiateError::Invalid("type mismatch".into())),
            "unlinkable" => Err(InstantiateError::Unlinkable("unknown import".into())),
            "unsupported" => Err(InstantiateError::Unsupported("threads".into())),
            _ => {
                if let Some(message) = text.strip_prefix("trap ") {
                    return Err(InstantiateError::Trap(message.into()));
                }
                let id = u32::try_from(self.instances.len()).unwrap() + 1;
                self.instances.insert(id, text.into());
                Ok(id)
            }
        }
    }

    fn register(&mut self, name: &str, instance: &u32) -> Result<(), String> {
        self.registered.push((name.into(), *instance));
        Ok(())
    }

    /// `whoami` → the instance id; `add` → the sum of two i32; `div` traps on a zero
    /// divisor; `element` traps with a detailed message; `recurse` exhausts the stack;
    /// `nan` → a canonical f32 NaN; `pair` → two i64.
    fn invoke(
        &mut self,
        instance: &u32,
        field: &str,
        args: &[SpecValue],
    ) -> Result<Vec<SpecValue>, CallError> {
        assert!(self.instances.contains_key(instance));
        match (field, args) {
            ("whoami", []) => Ok(vec![SpecValue::I32(*instance)]),
            ("add", [SpecValue::I32(a), SpecValue::I32(b)]) => {
                Ok(vec![SpecValue::I32(a.wrapping_add(*b))])
            }
            ("div", [SpecValue::I32(_), SpecValue::I32(0)]) => {
                Err(CallError::Trap("integer divide by zero".into()))
            }
            ("div", [SpecValue::I32(a), SpecValue::I32(b)]) => Ok(vec![SpecValue::I32(a / b)]),
            ("element", []) => Err(CallError::Trap("uninitialized element 7".into())),
            ("recurse", []) => Err(CallError::Exhaustion("call stack exhausted".into())),
            ("nan", []) => Ok(vec![SpecValue::F32(0xffc0_0000)]),
            ("pair", []) => Ok(vec![SpecValue::I64(1), SpecValue::I64(2)]),
            _ => Err(CallError::Other(format!(
                "no export {field:?} taking {args:?}"
            ))),
        }
    }

    fn get_global(&mut self, instance: &u32, field: &str) -> Result<SpecValue, CallError> {
        match field {
            "g" => Ok(SpecValue::I32(instance * 10)),
            _ => Err(CallError::Other(format!("no global {field:?}"))),
        }
    }
}

fn module(name: Option<&str>, text: &str) -> CommandKind {
    CommandKind::Module {
        name: name.map(Into::into),
        bytes: text.as_bytes().to_vec(),
    }
}

fn invoke(module: Option<&str>, field: &str, args: &[SpecValue]) -> Action {
    Action::Invoke {
        module: module.map(Into::into),
        field: field.into(),
        args: args.to_vec(),
    }
}

fn assert_return(action: Action, expected: &[Expected]) -> CommandKind {
    CommandKind::AssertReturn {
        action,
        expected: expected.to_vec(),
    }
}

/// Numbers the commands from line 1 and runs them.
fn run_script(engine: &mut MockEngine, kinds: Vec<CommandKind>) -> Summary {
    let commands: Vec<Command> = kinds
        .into_iter()
        .zip(1..)
        .map(|(kind, line)| Command { line, kind })
        .collect();
    run(engine, &commands)
}

fn failed_lines(summary: &Summary) -> Vec<u32> {
    summary.failures.iter().map(|f| f.line).collect()
}

#[test]
fn every_command_counts_once() {
    let mut engine = MockEngine::default();
    let summary = run_script(
        &mut engine,
        vec![
            module(None, "m"), // 1 pass
            assert_return(
                invoke(None, "add", &[SpecValue::I32(2), SpecValue::I32(3)]),
                &[Expected::I32(5)],
            ), // 2 pass
            assert_return(
                invoke(None, "add", &[SpecValue::I32(2), SpecValue::I32(3)]),
                &[Expected::I32(6)],
            ), // 3 fail
            assert_return(invoke(None, "pair", &[]), &[Expected::I64(1)]), // 4 fail: count
            assert_return(
                invoke(None, "nan", &[]),
                &[Expected::F32(FloatPattern::CanonicalNan)],
            ), // 5 pass
            assert_return(
                invoke(None, "nan", &[]),
                &[Expected::F32(FloatPattern::Exact(0x7fc0_0000))],
            ), // 6 fail: sign
            CommandKind::Action(invoke(None, "whoami", &[])), // 7 pass
            CommandKind::Action(invoke(None, "missing", &[])), // 8 fail
            CommandKind::Action(invoke(None, "div", &[SpecValue::I32(1), SpecValue::I32(0)])), // 9 fail: trapped
            assert_return(
                Action::Get {
                    module: None,
                    field: "g".into(),
                },
                &[Expected::I32(10)],
            ), // 10 pass
            CommandKind::Unsupported {
                directive: "thread".into(),
                reason: "threads".into(),
            }, // 11 fail
        ],
    );
    assert_eq!(
        (summary.passed, summary.failed),
        (5, 6),
        "{:#?}",
        summary.failures
    );
    assert_eq!(summary.total(), 11);
    assert_eq!(failed_lines(&summary), [3, 4, 6, 8, 9, 11]);
    assert_eq!(
        summary.failures[0].to_string(),
        "line 3: assert_return: invoke \"add\"(i32 2 (0x2), i32 3 (0x3)): \
         result 0: expected i32 6 (0x6), got i32 5 (0x5)"
    );
    assert!(
        summary.failures[1]
            .message
            .contains("expected 1 results, got 2")
    );
    assert!(
        summary.failures[5]
            .message
            .starts_with("thread: not converted")
    );
}

#[test]
fn a_failed_module_is_not_silently_replaced_by_the_previous_one() {
    let mut engine = MockEngine::default();
    let summary = run_script(
        &mut engine,
        vec![
            module(Some("a"), "first"),                                      // 1 pass
            assert_return(invoke(None, "whoami", &[]), &[Expected::I32(1)]), // 2 pass
            module(None, "invalid"),                                         // 3 fail
            assert_return(invoke(None, "whoami", &[]), &[Expected::I32(1)]), // 4 fail: no module
            assert_return(invoke(Some("a"), "whoami", &[]), &[Expected::I32(1)]), // 5 pass
            CommandKind::BadModule {
                name: Some("a".into()),
                message: "unknown operator".into(),
            }, // 6 fail
            assert_return(invoke(Some("a"), "whoami", &[]), &[Expected::I32(1)]), // 7 fail: $a gone
            module(None, "unlinkable"),                                      // 8 fail
            module(None, "trap out of bounds memory access"),                // 9 fail
            module(None, "unsupported"),                                     // 10 fail
            CommandKind::Register {
                as_name: "M".into(),
                module: None,
            }, // 11 fail: no module
        ],
    );
    assert_eq!(
        failed_lines(&summary),
        [3, 4, 6, 7, 8, 9, 10, 11],
        "{:#?}",
        summary.failures
    );
    assert_eq!(summary.passed, 3);
    assert!(summary.failures[1].message.contains("no current module"));
    assert!(summary.failures[3].message.contains("no module $a"));
    assert!(
        summary.failures[5]
            .message
            .contains("trap: out of bounds memory access")
    );
    assert!(engine.registered.is_empty());
}

#[test]
fn named_modules_and_register() {
    let mut engine = MockEngine::default();
    let summary = run_script(
        &mut engine,
        vec![
            module(Some("a"), "first"),
            module(Some("b"), "second"),
            module(None, "third"),
            assert_return(invoke(Some("a"), "whoami", &[]), &[Expected::I32(1)]),
            assert_return(invoke(Some("b"), "whoami", &[]), &[Expected::I32(2)]),
            assert_return(invoke(None, "whoami", &[]), &[Expected::I32(3)]),
            assert_return(
                Action::Get {
                    module: Some("b".into()),
                    field: "g".into(),
                },
                &[Expected::I32(20)],
            ),
            CommandKind::Register {
                as_name: "A".into(),
                module: Some("a".into()),
            },
            CommandKind::Register {
                as_name: "current".into(),
                module: None,
            },
            CommandKind::Register {
                as_name: "C".into(),
                module: Some("c".into()),
            }, // fails
        ],
    );
    assert_eq!(
        (summary.passed, summary.failed),
        (9, 1),
        "{:#?}",
        summary.failures
    );
    assert_eq!(
        engine.registered,
        [("A".to_string(), 1), ("current".to_string(), 3)]
    );
}

#[test]
fn traps_and_exhaustion() {
    let trap = |field: &str, message: &str| CommandKind::AssertTrap {
        action: invoke(None, field, &[SpecValue::I32(1), SpecValue::I32(0)]),
        message: message.into(),
    };
    let exhaustion = |field: &str| CommandKind::AssertExhaustion {
        action: invoke(None, field, &[]),
        message: "call stack exhausted".into(),
    };
    let mut engine = MockEngine::default();
    let summary = run_script(
        &mut engine,
        vec![
            module(None, "m"),                     // 1 pass
            trap("div", "integer divide by zero"), // 2 pass
            trap("div", "integer overflow"),       // 3 fail: other message
            trap("add", "integer divide by zero"), // 4 fail: returned
            CommandKind::AssertTrap {
                // 5 pass: the engine adds a detail
                action: invoke(None, "element", &[]),
                message: "uninitialized element".into(),
            },
            CommandKind::AssertTrap {
                // 6 pass: the script shortens
                action: invoke(None, "element", &[]),
                message: "uninitialized".into(),
            },
            CommandKind::AssertTrap {
                // 7 fail: another detail
                action: invoke(None, "element", &[]),
                message: "uninitialized element 2".into(),
            },
            exhaustion("recurse"), // 8 pass
            exhaustion("whoami"),  // 9 fail
        ],
    );
    assert_eq!(
        failed_lines(&summary),
        [3, 4, 7, 9],
        "{:#?}",
        summary.failures
    );
    assert!(
        summary.failures[1]
            .message
            .contains("got results [i32 1 (0x1)]")
    );
}

#[test]
fn trap_messages_match_as_prefixes_at_word_boundaries() {
    assert!(trap_message_matches("unreachable", "unreachable"));
    assert!(trap_message_matches(
        "uninitialized element",
        "uninitialized element 7"
    ));
    assert!(trap_message_matches(
        "uninitialized element 7",
        "uninitialized element"
    ));
    assert!(trap_message_matches(
        "uninitialized",
        "uninitialized element"
    ));
    assert!(trap_message_matches(
        "out of bounds memory access",
        "out of bounds memory access: address 65536"
    ));
    assert!(!trap_message_matches(
        "uninitialized element 7",
        "uninitialized element 2"
    ));
    assert!(!trap_message_matches(
        "undefined element",
        "uninitialized element"
    ));
    assert!(!trap_message_matches("integer overflow", "integer over"));
    assert!(!trap_message_matches("unreachable", ""));
    assert!(!trap_message_matches("", "unreachable"));
}

#[test]
fn module_assertions() {
    let bytes = |text: &str| text.as_bytes().to_vec();
    let invalid = |text: &str| CommandKind::AssertInvalid {
        bytes: bytes(text),
        message: "type mismatch".into(),
    };
    let malformed = |text: Option<&str>| CommandKind::AssertMalformed {
        bytes: text.map(bytes),
        message: "unexpected token".into(),
    };
    let unlinkable = |text: &str| CommandKind::AssertUnlinkable {
        bytes: bytes(text),
        message: "unknown import".into(),
    };
    let uninstantiable = |text: &str| CommandKind::AssertUninstantiable {
        bytes: bytes(text),
        message: "out of bounds table access".into(),
    };
    let mut engine = MockEngine::default();
    let summary = run_script(
        &mut engine,
        vec![
            invalid("invalid"),                                 // 1 pass
            invalid("valid"),                                   // 2 fail
            invalid("unlinkable"),                              // 3 fail: valid but unlinkable
            invalid("unsupported"),                             // 4 fail: cannot tell
            malformed(None),                                    // 5 pass: host rejected the text
            malformed(Some("invalid")),                         // 6 pass
            malformed(Some("valid")),                           // 7 fail
            unlinkable("unlinkable"),                           // 8 pass
            unlinkable("invalid"),                              // 9 fail
            unlinkable("valid"),                                // 10 fail
            uninstantiable("trap out of bounds table access"),  // 11 pass
            uninstantiable("trap out of bounds memory access"), // 12 fail: other message
            uninstantiable("unlinkable"),                       // 13 fail
            uninstantiable("valid"),                            // 14 fail
        ],
    );
    assert_eq!(
        failed_lines(&summary),
        [2, 3, 4, 7, 9, 10, 12, 13, 14],
        "{:#?}",
        summary.failures
    );
    assert_eq!(summary.passed, 5);
    assert!(
        summary.failures[0]
            .message
            .contains("but the module is valid")
    );
    // None of the assertions' modules becomes the current module.
    let summary = run_script(
        &mut engine,
        vec![
            unlinkable("valid"),
            CommandKind::Action(invoke(None, "whoami", &[])),
        ],
    );
    assert_eq!(failed_lines(&summary), [1, 2]);
}

#[test]
fn module_definitions_and_instances() {
    let definition = |name: Option<&str>, text: &str| CommandKind::ModuleDefinition {
        name: name.map(Into::into),
        bytes: text.as_bytes().to_vec(),
    };
    let instance = |instance: Option<&str>, definition: Option<&str>| CommandKind::ModuleInstance {
        instance: instance.map(Into::into),
        definition: definition.map(Into::into),
    };
    let mut engine = MockEngine::default();
    let summary = run_script(
        &mut engine,
        vec![
            definition(Some("D"), "defined"), // 1 pass
            instance(Some("i1"), Some("D")),  // 2 pass
            instance(None, None),             // 3 pass: the last definition
            assert_return(invoke(None, "whoami", &[]), &[Expected::I32(3)]), // 4 pass
            assert_return(invoke(Some("i1"), "whoami", &[]), &[Expected::I32(2)]), // 5 pass
            definition(Some("E"), "invalid"), // 6 fail
            instance(None, Some("E")),        // 7 fail
            instance(None, None),             // 8 fail: last one failed
            instance(None, Some("nope")),     // 9 fail
        ],
    );
    assert_eq!(
        failed_lines(&summary),
        [6, 7, 8, 9],
        "{:#?}",
        summary.failures
    );
    // The default `validate` instantiates: definitions 1 and 6, instances 2 and 3.
    assert_eq!(engine.instantiations, 4);
}

#[test]
fn summaries_merge() {
    let mut total = Summary::default();
    let mut engine = MockEngine::default();
    total.merge(run_script(&mut engine, vec![module(None, "invalid")]));
    total.merge(run_script(
        &mut engine,
        vec![module(None, "m"), module(None, "invalid")],
    ));
    assert_eq!((total.passed, total.failed), (1, 2));
    assert_eq!(failed_lines(&total), [1, 2]);
}
