//! Running converted spec commands against an engine, and the engine's side of the
//! contract ([`SpecEngine`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::command::{Action, Command, CommandKind};
use super::value::SpecValue;

/// Why a module could not be validated or instantiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantiateError {
    /// The module is malformed (fails to decode) or invalid (fails validation).
    Invalid(String),
    /// An import could not be resolved, or resolved to something of the wrong type.
    Unlinkable(String),
    /// Instantiation trapped (an element or data segment out of bounds, or the start
    /// function trapped): the spec's trap message, possibly followed by details.
    Trap(String),
    /// A valid module using something this engine does not implement.
    Unsupported(String),
}

/// Why a call (or a global read) did not return values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The call trapped: the spec's trap message (`integer divide by zero`), possibly
    /// followed by details (`uninitialized element 7`).
    Trap(String),
    /// The call stack ran out.
    Exhaustion(String),
    /// Anything else: no such export, an export of the wrong kind, arguments of the
    /// wrong type, something the engine does not support.
    Other(String),
}

impl fmt::Display for InstantiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstantiateError::Invalid(message) => write!(f, "invalid: {message}"),
            InstantiateError::Unlinkable(message) => write!(f, "unlinkable: {message}"),
            InstantiateError::Trap(message) => write!(f, "trap: {message}"),
            InstantiateError::Unsupported(message) => write!(f, "unsupported: {message}"),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Trap(message) => write!(f, "trap: {message}"),
            CallError::Exhaustion(message) => write!(f, "exhaustion: {message}"),
            CallError::Other(message) => f.write_str(message),
        }
    }
}

/// A WebAssembly engine the runner drives: the lead's JIT runtime, or a test double.
///
/// The engine owns the import namespace. It must resolve imports from the `spectest`
/// module itself (the spec interpreter's host module: `print*` functions, `global_i32`
/// 666, `global_i64` 666, `global_f32` 666.6, `global_f64` 666.6, `table` 10..20
/// funcref, `memory` 1..2 pages) and from every name given to [`SpecEngine::register`].
pub trait SpecEngine {
    /// A handle on an instantiated module.
    type Instance: Clone;

    /// Decodes, validates and instantiates a module: resolves its imports, initializes
    /// its segments and runs its start function.
    ///
    /// # Errors
    ///
    /// An [`InstantiateError`] saying which step failed.
    fn instantiate(&mut self, bytes: &[u8]) -> Result<Self::Instance, InstantiateError>;

    /// Decodes and validates a module without instantiating it (for `assert_invalid`,
    /// `assert_malformed` and `module definition`).
    ///
    /// The provided implementation instantiates the module and calls it valid unless
    /// that fails with [`InstantiateError::Invalid`] or [`InstantiateError::Unsupported`];
    /// an engine that can validate alone should override it.
    ///
    /// # Errors
    ///
    /// [`InstantiateError::Invalid`] for a malformed or invalid module,
    /// [`InstantiateError::Unsupported`] when the engine cannot tell.
    fn validate(&mut self, bytes: &[u8]) -> Result<(), InstantiateError> {
        match self.instantiate(bytes) {
            Ok(_) | Err(InstantiateError::Unlinkable(_) | InstantiateError::Trap(_)) => Ok(()),
            Err(error @ (InstantiateError::Invalid(_) | InstantiateError::Unsupported(_))) => {
                Err(error)
            }
        }
    }

    /// Makes the exports of `instance` importable under the module name `name`.
    ///
    /// # Errors
    ///
    /// A message when the engine cannot register the instance.
    fn register(&mut self, name: &str, instance: &Self::Instance) -> Result<(), String>;

    /// The script can no longer name `instance` (it was anonymous, never registered, and
    /// another module replaced it as the current one): the engine may free what only it
    /// uses. The default keeps everything.
    fn release(&mut self, instance: &Self::Instance) {
        let _ = instance;
    }

    /// Calls the exported function `field` of `instance`.
    ///
    /// # Errors
    ///
    /// A [`CallError`]: a trap, stack exhaustion, or a call that could not be made.
    fn invoke(
        &mut self,
        instance: &Self::Instance,
        field: &str,
        args: &[SpecValue],
    ) -> Result<Vec<SpecValue>, CallError>;

    /// Reads the exported global `field` of `instance`.
    ///
    /// # Errors
    ///
    /// [`CallError::Other`] when there is no such exported global.
    fn get_global(
        &mut self,
        instance: &Self::Instance,
        field: &str,
    ) -> Result<SpecValue, CallError>;
}

/// A command that failed, with the script line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The 1-based line of the directive.
    pub line: u32,
    /// What went wrong, starting with the directive's keyword.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The outcome of running a script: every command counted exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Commands that did what the script expects.
    pub passed: u32,
    /// Commands that did not, or could not be run.
    pub failed: u32,
    /// One entry per failed command, in script order.
    pub failures: Vec<Failure>,
}

impl Summary {
    /// The number of commands run.
    #[must_use]
    pub fn total(&self) -> u32 {
        self.passed + self.failed
    }

    /// Adds another summary's counts and failures to this one (several scripts).
    pub fn merge(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }
}

/// Whether a trap message from the engine matches the message a script expects.
///
/// The spec's messages are short (`uninitialized element`) and the testsuite sometimes
/// adds details (`uninitialized element 7`) or shortens them (`uninitialized`), so the
/// two match when one is a prefix of the other ending at a word boundary (the longer
/// continues with a space or a colon, or ends). An empty engine message matches
/// nothing. No alias table is needed: the `wasm-v1`, `wasm-v2` and `proposals/simd`
/// scripts use only the spec interpreter's messages.
#[must_use]
pub fn trap_message_matches(expected: &str, actual: &str) -> bool {
    let (shorter, longer) = if expected.len() <= actual.len() {
        (expected, actual)
    } else {
        (actual, expected)
    };
    !shorter.is_empty()
        && longer.starts_with(shorter)
        && matches!(
            longer.as_bytes().get(shorter.len()),
            None | Some(b' ' | b':')
        )
}

/// Runs `commands` (one script) in order against `engine`.
///
/// Every command counts once, as passed or failed. A module that fails to instantiate
/// is a failure, and afterwards neither its name nor "the current module" refers to an
/// earlier module, so actions meant for it fail instead of running elsewhere.
pub fn run<E: SpecEngine>(engine: &mut E, commands: &[Command]) -> Summary {
    let mut runner = Runner {
        engine,
        current: None,
        current_pinned: false,
        instances: BTreeMap::new(),
        definitions: BTreeMap::new(),
        last_definition: None,
    };
    let mut summary = Summary::default();
    for command in commands {
        match runner.run(&command.kind) {
            Ok(()) => summary.passed += 1,
            Err(message) => {
                summary.failed += 1;
                summary.failures.push(Failure {
                    line: command.line,
                    message: format!("{}: {message}", command.kind.directive()),
                });
            }
        }
    }
    summary
}

/// The script's state: which names refer to which instances and definitions.
struct Runner<'e, 'c, E: SpecEngine> {
    engine: &'e mut E,
    /// The most recent module, `None` before the first or after one that failed.
    current: Option<E::Instance>,
    /// Whether the current module can still be named once it is replaced (it has a name,
    /// or was registered); if not, replacing it releases it.
    current_pinned: bool,
    instances: BTreeMap<&'c str, E::Instance>,
    definitions: BTreeMap<&'c str, &'c [u8]>,
    /// The most recent definition, `None` before the first or after one that failed.
    last_definition: Option<&'c [u8]>,
}

impl<'c, E: SpecEngine> Runner<'_, 'c, E> {
    /// Runs one command; `Err` says why it failed.
    fn run(&mut self, kind: &'c CommandKind) -> Result<(), String> {
        match kind {
            CommandKind::Module { name, bytes } => {
                let result = self.engine.instantiate(bytes);
                self.bind_instance(name.as_deref(), result.as_ref().ok().cloned());
                result
                    .map(drop)
                    .map_err(|error| format!("module failed to instantiate: {error}"))
            }
            CommandKind::BadModule { name, message } => {
                self.bind_instance(name.as_deref(), None);
                Err(format!("module text could not be encoded: {message}"))
            }
            CommandKind::ModuleDefinition { name, bytes } => {
                let result = self.engine.validate(bytes);
                let definition = result.is_ok().then_some(bytes.as_slice());
                self.last_definition = definition;
                if let Some(name) = name {
                    match definition {
                        Some(bytes) => self.definitions.insert(name, bytes),
                        None => self.definitions.remove(name.as_str()),
                    };
                }
                result.map_err(|error| format!("module definition rejected: {error}"))
            }
            CommandKind::ModuleInstance {
                instance,
                definition,
            } => {
                let bytes = match definition {
                    Some(name) => self.definitions.get(name.as_str()).copied(),
                    None => self.last_definition,
                };
                let result = match bytes {
                    Some(bytes) => self
                        .engine
                        .instantiate(bytes)
                        .map_err(|error| format!("module failed to instantiate: {error}")),
                    None => Err(format!(
                        "no module definition {}",
                        definition
                            .as_deref()
                            .unwrap_or("(none defined, or the last failed)")
                    )),
                };
                self.bind_instance(instance.as_deref(), result.as_ref().ok().cloned());
                result.map(drop)
            }
            CommandKind::Register { as_name, module } => {
                let instance = self.instance(module.as_deref())?.clone();
                if module.is_none() {
                    // Other modules may import from it from now on.
                    self.current_pinned = true;
                }
                self.engine.register(as_name, &instance)
            }
            CommandKind::Action(action) => self
                .act(action)
                .map(drop)
                .map_err(|error| format!("{action}: {error}")),
            CommandKind::AssertReturn { action, expected } => {
                let results = self
                    .act(action)
                    .map_err(|error| format!("{action}: {error}"))?;
                check_results(&results, expected).map_err(|error| format!("{action}: {error}"))
            }
            CommandKind::AssertTrap { action, message } => match self.act(action) {
                Err(CallError::Trap(actual) | CallError::Exhaustion(actual))
                    if trap_message_matches(message, &actual) =>
                {
                    Ok(())
                }
                outcome => Err(format!(
                    "{action}: expected trap {message:?}, got {}",
                    describe_outcome(&outcome)
                )),
            },
            CommandKind::AssertExhaustion { action, message } => match self.act(action) {
                Err(CallError::Exhaustion(_)) => Ok(()),
                Err(CallError::Trap(actual)) if trap_message_matches(message, &actual) => Ok(()),
                outcome => Err(format!(
                    "{action}: expected exhaustion {message:?}, got {}",
                    describe_outcome(&outcome)
                )),
            },
            CommandKind::AssertInvalid { bytes, message } => self.expect_invalid(bytes, message),
            CommandKind::AssertMalformed { bytes, message } => match bytes {
                None => Ok(()),
                Some(bytes) => self.expect_invalid(bytes, message),
            },
            CommandKind::AssertUnlinkable { bytes, message } => {
                match self.engine.instantiate(bytes) {
                    Err(InstantiateError::Unlinkable(_)) => Ok(()),
                    Ok(_) => Err(format!(
                        "expected unlinkable ({message:?}), but the module instantiated"
                    )),
                    Err(error) => Err(format!("expected unlinkable ({message:?}), got {error}")),
                }
            }
            CommandKind::AssertUninstantiable { bytes, message } => {
                match self.engine.instantiate(bytes) {
                    Err(InstantiateError::Trap(actual))
                        if trap_message_matches(message, &actual) =>
                    {
                        Ok(())
                    }
                    Ok(_) => Err(format!(
                        "expected instantiation to trap with {message:?}, but it succeeded"
                    )),
                    Err(error) => Err(format!(
                        "expected instantiation to trap with {message:?}, got {error}"
                    )),
                }
            }
            CommandKind::Unsupported { reason, .. } => {
                Err(format!("not converted from text: {reason}"))
            }
        }
    }

    /// Makes `instance` the current module and, when the module is named, binds the name;
    /// `None` (a module that failed) unbinds both.
    fn bind_instance(&mut self, name: Option<&'c str>, instance: Option<E::Instance>) {
        if let Some(name) = name {
            match &instance {
                Some(instance) => self.instances.insert(name, instance.clone()),
                None => self.instances.remove(name),
            };
        }
        let previous = core::mem::replace(&mut self.current, instance);
        if let Some(previous) = previous
            && !self.current_pinned
        {
            self.engine.release(&previous);
        }
        self.current_pinned = name.is_some();
    }

    /// The instance a command names, or the current one.
    fn instance(&self, name: Option<&str>) -> Result<&E::Instance, String> {
        match name {
            Some(name) => self
                .instances
                .get(name)
                .ok_or_else(|| format!("no module ${name} (never defined, or it failed)")),
            None => self
                .current
                .as_ref()
                .ok_or_else(|| "no current module (none yet, or the last one failed)".to_string()),
        }
    }

    /// Runs an action: a call's results, or a global's value as one result.
    fn act(&mut self, action: &Action) -> Result<Vec<SpecValue>, CallError> {
        match action {
            Action::Invoke {
                module,
                field,
                args,
            } => {
                let instance = self
                    .instance(module.as_deref())
                    .map_err(CallError::Other)?
                    .clone();
                self.engine.invoke(&instance, field, args)
            }
            Action::Get { module, field } => {
                let instance = self
                    .instance(module.as_deref())
                    .map_err(CallError::Other)?
                    .clone();
                self.engine
                    .get_global(&instance, field)
                    .map(|value| alloc::vec![value])
            }
        }
    }

    /// `assert_invalid` and `assert_malformed`: any `Invalid` passes, messages are not
    /// compared (they differ between engines).
    fn expect_invalid(&mut self, bytes: &[u8], message: &str) -> Result<(), String> {
        match self.engine.validate(bytes) {
            Err(InstantiateError::Invalid(_)) => Ok(()),
            Ok(()) => Err(format!("expected {message:?}, but the module is valid")),
            Err(error) => Err(format!("expected {message:?}, got {error}")),
        }
    }
}

/// Checks results against their patterns, count first.
fn check_results(results: &[SpecValue], expected: &[super::Expected]) -> Result<(), String> {
    if results.len() != expected.len() {
        return Err(format!(
            "expected {} results, got {}: [{}]",
            expected.len(),
            results.len(),
            join(results)
        ));
    }
    for (index, (result, pattern)) in results.iter().zip(expected).enumerate() {
        if !pattern.matches(result) {
            return Err(format!("result {index}: expected {pattern}, got {result}"));
        }
    }
    Ok(())
}

/// An action's outcome, for a failure message.
fn describe_outcome(outcome: &Result<Vec<SpecValue>, CallError>) -> String {
    match outcome {
        Ok(results) => format!("results [{}]", join(results)),
        Err(error) => error.to_string(),
    }
}

/// Values separated by commas.
fn join(values: &[SpecValue]) -> String {
    let mut text = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(&value.to_string());
    }
    text
}
