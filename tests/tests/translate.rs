//! Module translation: what kernel-core records about real modules, and that no input makes
//! it panic.

use kernel_core::wasm::env::{
    DESCRIBE_FEATURES, DataKind, ElementItems, ElementKind, EntityIndex, ModuleErrorKind, RefType,
    VMCounts, VMShape, ValType, WASM1_FEATURES, WASM2_FEATURES, translate,
};
use kernel_core::wasm::indices::{FuncIndex, MemoryIndex, TableIndex};
use proptest::prelude::*;

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test module text is valid")
}

const MIXED: &str = r#"
(module $mixed
  (import "env" "f" (func $imported (param i32) (result i32)))
  (import "env" "mem" (memory 1))
  (import "env" "table" (table 2 funcref))
  (import "env" "g" (global $g i32))
  (import "env" "h" (global (mut i64)))
  (memory 1 2)
  (memory 0)
  (table 4 funcref)
  (table 1 externref)
  (global $r (mut funcref) (ref.func $in_global))
  (global f32 (f32.const 1.5))
  (func $in_global)
  (func $exported (result i32) (i32.const 1))
  (func $declared)
  (func $in_active)
  (func $in_passive)
  (func $private (call $in_passive))
  (export "reexported" (func $imported))
  (export "exported" (func $exported))
  (export "mem" (memory 0))
  (export "g" (global $g))
  (elem declare func $declared)
  (elem (table 1) (i32.const 0) func $in_active)
  (elem funcref (ref.func $in_passive) (ref.null func))
  (data (memory 1) (i32.const 0) "hi")
  (data "passive")
  (start $private)
)"#;

#[test]
fn mixed_module_is_described() {
    let bytes = wasm(MIXED);
    let module = translate(&bytes, DESCRIBE_FEATURES).unwrap();
    assert_eq!(module.name.as_deref(), Some("mixed"));
    assert_eq!(module.num_imported_functions, 1);
    assert_eq!(module.num_defined_functions(), 6);
    assert_eq!(
        (module.num_imported_memories, module.num_defined_memories()),
        (1, 2)
    );
    assert_eq!(module.num_owned_memories(), 2);
    assert_eq!(
        (module.num_imported_tables, module.num_defined_tables()),
        (1, 2)
    );
    assert_eq!(
        (module.num_imported_globals, module.num_defined_globals()),
        (2, 2)
    );
    assert_eq!(module.tables[2].element, RefType::Extern);
    assert_eq!(module.globals[2].content, ValType::Ref(RefType::Func));
    assert_eq!(module.memories[1].maximum, Some(2));
    assert_eq!(module.start, Some(FuncIndex::from_u32(6)));
    assert_eq!(
        module.function_name(FuncIndex::from_u32(2)),
        Some("exported")
    );
    assert_eq!(
        module.imports[1].entity,
        EntityIndex::Memory(MemoryIndex::from_u32(0))
    );

    // Escaping: the re-exported import (0), the ref.func in a global (1), the export (2),
    // the declared (3), active (4) and passive (5) segment functions; not $private (6).
    let escaped: Vec<u32> = module
        .escaped_functions
        .iter()
        .map(|f| f.as_u32())
        .collect();
    assert_eq!(escaped, [0, 1, 2, 3, 4, 5]);
    assert_eq!(module.func_ref_index(FuncIndex::from_u32(6)), None);
    assert_eq!(
        module
            .func_ref_index(FuncIndex::from_u32(5))
            .map(|i| i.as_u32()),
        Some(5)
    );

    assert!(matches!(module.elements[0].kind, ElementKind::Declared));
    match &module.elements[1].kind {
        ElementKind::Active { table, .. } => assert_eq!(*table, TableIndex::from_u32(1)),
        other => panic!("expected an active segment, got {other:?}"),
    }
    assert!(matches!(module.elements[2].kind, ElementKind::Passive));
    assert!(
        matches!(&module.elements[2].items, ElementItems::Expressions(items) if items.len() == 2)
    );

    assert_eq!(&bytes[module.data[0].bytes.clone()], b"hi");
    assert!(matches!(module.data[0].kind, DataKind::Active { memory, .. } if memory.as_u32() == 1));
    assert_eq!(&bytes[module.data[1].bytes.clone()], b"passive");
    assert_eq!(module.function_bodies.len(), 6);

    let counts = VMCounts::for_module(&module);
    assert_eq!(counts.escaped_functions, 6);
    let shape = VMShape::for_module(&module).unwrap();
    assert!(shape.size() > VMShape::DYNAMIC_DATA_START);
}

#[test]
fn shared_memories_are_defined_but_not_owned() {
    let bytes = wasm("(module (memory 1 1 shared) (memory 1))");
    let module = translate(&bytes, DESCRIBE_FEATURES).unwrap();
    assert_eq!(
        (module.num_defined_memories(), module.num_owned_memories()),
        (2, 1)
    );
}

#[test]
fn tags_are_counted() {
    let bytes = wasm(r#"(module (import "m" "t" (tag (param i32))) (tag) (tag (param i64)))"#);
    let module = translate(&bytes, DESCRIBE_FEATURES).unwrap();
    assert_eq!(
        (module.num_imported_tags, module.num_defined_tags()),
        (1, 2)
    );
}

#[test]
fn features_follow_the_version() {
    let two_memories = wasm("(module (memory 1) (memory 1))");
    let error = translate(&two_memories, WASM2_FEATURES).unwrap_err();
    assert_eq!(error.kind, ModuleErrorKind::Invalid);
    assert!(translate(&two_memories, DESCRIBE_FEATURES).is_ok());

    let sign_extension = wasm("(module (func (param i32) (result i32) local.get 0 i32.extend8_s))");
    assert!(translate(&sign_extension, WASM1_FEATURES).is_err());
    assert!(translate(&sign_extension, WASM2_FEATURES).is_ok());
}

#[test]
fn gc_types_are_unsupported_not_a_panic() {
    let bytes = wasm("(module (type (struct (field i32))))");
    let features = DESCRIBE_FEATURES | kernel_core::wasm::env::WasmFeatures::GC;
    let error = translate(&bytes, features).unwrap_err();
    assert_eq!(error.kind, ModuleErrorKind::Unsupported, "{error}");
}

#[test]
fn malformed_and_hostile_binaries_are_errors() {
    let cases: &[&[u8]] = &[
        b"",
        b"\0asm",
        b"\0asm\x02\0\0\0",
        // A type section claiming 2^32-1 entries in 5 bytes.
        b"\0asm\x01\0\0\0\x01\x05\xff\xff\xff\xff\x0f",
        // A function section claiming 2^32-1 functions.
        b"\0asm\x01\0\0\0\x03\x05\xff\xff\xff\xff\x0f",
        // A data count far beyond the data section.
        b"\0asm\x01\0\0\0\x0c\x05\xff\xff\xff\xff\x0f",
        // A section length past the end of the input.
        b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0f",
    ];
    for bytes in cases {
        let error = translate(bytes, DESCRIBE_FEATURES).unwrap_err();
        assert_eq!(error.kind, ModuleErrorKind::Invalid, "{bytes:?}: {error}");
        assert!(!error.message.is_empty());
    }
}

#[test]
fn thousands_of_functions_translate() {
    let mut text = String::from("(module\n");
    for index in 0..5000 {
        text.push_str(&format!(
            "(func (export \"f{index}\") (result i32) i32.const {index})\n"
        ));
    }
    text.push(')');
    let module = translate(&wasm(&text), WASM1_FEATURES).unwrap();
    assert_eq!(module.num_defined_functions(), 5000);
    assert_eq!(module.escaped_functions.len(), 5000);
    let shape = VMShape::for_module(&module).unwrap();
    assert_eq!(shape.counts().escaped_functions, 5000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Corrupting bytes of a valid module never panics, and translation rejects as invalid
    /// exactly what wasmparser's validator rejects (a valid module may still be refused as
    /// unsupported, never as invalid).
    #[test]
    fn corrupted_modules_agree_with_the_validator(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = wasm(MIXED);
        for (position, value) in edits {
            let at = position.index(bytes.len());
            bytes[at] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let valid = wasmparser::Validator::new_with_features(DESCRIBE_FEATURES)
            .validate_all(&bytes)
            .is_ok();
        let translated = translate(&bytes, DESCRIBE_FEATURES);
        let invalid = matches!(&translated, Err(error) if error.kind == ModuleErrorKind::Invalid);
        prop_assert_eq!(invalid, !valid, "{:?}", translated.err());
    }
}
