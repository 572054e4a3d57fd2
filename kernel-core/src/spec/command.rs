//! The commands of a spec script, converted from text on the host: modules are already
//! binary, values already decoded.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::value::{Expected, SpecValue};

/// One directive of a spec script and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The 1-based line of the directive in its script.
    pub line: u32,
    /// What to do.
    pub kind: CommandKind,
}

/// An action: call an export or read an exported global.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `(invoke $module? "field" args...)`.
    Invoke {
        /// The module's `$name`, or `None` for the most recent module.
        module: Option<String>,
        /// The export's name.
        field: String,
        /// The arguments.
        args: Vec<SpecValue>,
    },
    /// `(get $module? "field")`.
    Get {
        /// The module's `$name`, or `None` for the most recent module.
        module: Option<String>,
        /// The exported global's name.
        field: String,
    },
}

/// What a [`Command`] does, one variant per spec directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    /// `(module $name? ...)`: validate, instantiate, and make it the current module.
    Module {
        /// The module's `$name`, if it has one.
        name: Option<String>,
        /// The binary module.
        bytes: Vec<u8>,
    },
    /// A module (or a module definition) whose binary could not be produced on the host:
    /// the text failed to parse or encode. It counts as failed, and the name and the
    /// current module no longer refer to an earlier module.
    BadModule {
        /// The module's `$name`, if it has one.
        name: Option<String>,
        /// Why the binary could not be produced.
        message: String,
    },
    /// `(module definition $name? ...)`: validate, remember, do not instantiate.
    ModuleDefinition {
        /// The definition's `$name`, if it has one.
        name: Option<String>,
        /// The binary module.
        bytes: Vec<u8>,
    },
    /// `(module instance $instance? $definition?)`: instantiate a definition (the most
    /// recent one when `definition` is `None`) and make it the current module.
    ModuleInstance {
        /// The instance's `$name`, if it has one.
        instance: Option<String>,
        /// The definition's `$name`.
        definition: Option<String>,
    },
    /// `(register "as_name" $module?)`: make a module's exports importable as `as_name`.
    Register {
        /// The import module name.
        as_name: String,
        /// The module's `$name`, or `None` for the most recent module.
        module: Option<String>,
    },
    /// A bare action: it must complete without trapping.
    Action(Action),
    /// `(assert_return action results...)`.
    AssertReturn {
        /// The action.
        action: Action,
        /// One pattern per result, in order.
        expected: Vec<Expected>,
    },
    /// `(assert_trap action "message")`.
    AssertTrap {
        /// The action.
        action: Action,
        /// The spec's trap message.
        message: String,
    },
    /// `(assert_exhaustion action "message")`: the call stack runs out.
    AssertExhaustion {
        /// The action.
        action: Action,
        /// The spec's message (`call stack exhausted`).
        message: String,
    },
    /// `(assert_invalid module "message")`: the module fails validation.
    AssertInvalid {
        /// The binary module.
        bytes: Vec<u8>,
        /// The spec's message (informative: messages are not compared).
        message: String,
    },
    /// `(assert_malformed module "message")`: the module fails to decode.
    AssertMalformed {
        /// The binary module, or `None` when the host already failed to parse the text
        /// (which is the expected outcome: the command passes).
        bytes: Option<Vec<u8>>,
        /// The spec's message (informative: messages are not compared).
        message: String,
    },
    /// `(assert_unlinkable module "message")`: instantiation fails to resolve imports.
    AssertUnlinkable {
        /// The binary module.
        bytes: Vec<u8>,
        /// The spec's message (informative: messages are not compared).
        message: String,
    },
    /// `(assert_trap (module ...) "message")` (the spec interpreter's
    /// `assert_uninstantiable`): instantiation traps in a segment or the start function.
    AssertUninstantiable {
        /// The binary module.
        bytes: Vec<u8>,
        /// The spec's trap message.
        message: String,
    },
    /// A directive the host could not convert (threads, components, exceptions, a module
    /// that failed to encode in an assertion that needs it). It counts as failed.
    Unsupported {
        /// The directive's keyword, for instance `thread`.
        directive: String,
        /// Why it could not be converted.
        reason: String,
    },
}

impl CommandKind {
    /// The directive's keyword, for messages.
    #[must_use]
    pub fn directive(&self) -> &str {
        match self {
            CommandKind::Module { .. } | CommandKind::BadModule { .. } => "module",
            CommandKind::ModuleDefinition { .. } => "module definition",
            CommandKind::ModuleInstance { .. } => "module instance",
            CommandKind::Register { .. } => "register",
            CommandKind::Action(Action::Invoke { .. }) => "invoke",
            CommandKind::Action(Action::Get { .. }) => "get",
            CommandKind::AssertReturn { .. } => "assert_return",
            CommandKind::AssertTrap { .. } | CommandKind::AssertUninstantiable { .. } => {
                "assert_trap"
            }
            CommandKind::AssertExhaustion { .. } => "assert_exhaustion",
            CommandKind::AssertInvalid { .. } => "assert_invalid",
            CommandKind::AssertMalformed { .. } => "assert_malformed",
            CommandKind::AssertUnlinkable { .. } => "assert_unlinkable",
            CommandKind::Unsupported { directive, .. } => directive,
        }
    }

    /// Whether this is an assertion (an `assert_*` directive).
    #[must_use]
    pub fn is_assertion(&self) -> bool {
        match self {
            CommandKind::AssertReturn { .. }
            | CommandKind::AssertTrap { .. }
            | CommandKind::AssertExhaustion { .. }
            | CommandKind::AssertInvalid { .. }
            | CommandKind::AssertMalformed { .. }
            | CommandKind::AssertUnlinkable { .. }
            | CommandKind::AssertUninstantiable { .. } => true,
            CommandKind::Unsupported { directive, .. } => directive.starts_with("assert_"),
            CommandKind::Module { .. }
            | CommandKind::BadModule { .. }
            | CommandKind::ModuleDefinition { .. }
            | CommandKind::ModuleInstance { .. }
            | CommandKind::Register { .. }
            | CommandKind::Action(_) => false,
        }
    }

    /// Why the host could not convert this directive, if it could not: such a command
    /// always fails when run.
    #[must_use]
    pub fn conversion_error(&self) -> Option<&str> {
        match self {
            CommandKind::BadModule { message, .. } => Some(message),
            CommandKind::Unsupported { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, module, field) = match self {
            Action::Invoke { module, field, .. } => ("invoke", module, field),
            Action::Get { module, field } => ("get", module, field),
        };
        write!(f, "{verb} ")?;
        if let Some(module) = module {
            write!(f, "${module} ")?;
        }
        write!(f, "{field:?}")?;
        if let Action::Invoke { args, .. } = self {
            f.write_str("(")?;
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{arg}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}
