//! Typed indices into the index spaces of a module.
//!
//! `FuncIndex` and friends count imports first, then definitions, as the WebAssembly index
//! spaces do; `Defined*Index` counts only the definitions of a module; `OwnedMemoryIndex`
//! counts the defined memories the instance owns (not shared); `FuncRefIndex` numbers the
//! escaping functions, the entries of the VMContext `func_refs` array.

macro_rules! indices {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u32);

        impl $name {
            /// Makes the index `index`.
            #[must_use]
            pub const fn from_u32(index: u32) -> Self {
                Self(index)
            }

            /// The index as a `u32`.
            #[must_use]
            pub const fn as_u32(self) -> u32 {
                self.0
            }

            /// The index as a `usize`, for indexing slices.
            #[must_use]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

indices! {
    /// A function type in the type section.
    TypeIndex;
    /// A function, imported or defined.
    FuncIndex;
    /// A function defined (with a body) in the module.
    DefinedFuncIndex;
    /// A table, imported or defined.
    TableIndex;
    /// A table defined in the module.
    DefinedTableIndex;
    /// A linear memory, imported or defined.
    MemoryIndex;
    /// A linear memory defined in the module.
    DefinedMemoryIndex;
    /// A defined linear memory owned by the instance (not shared).
    OwnedMemoryIndex;
    /// A global, imported or defined.
    GlobalIndex;
    /// A global defined in the module.
    DefinedGlobalIndex;
    /// An exception tag, imported or defined.
    TagIndex;
    /// A tag defined in the module.
    DefinedTagIndex;
    /// An element segment.
    ElemIndex;
    /// A data segment.
    DataIndex;
    /// An escaping function's slot in the VMContext `func_refs` array.
    FuncRefIndex;
}
