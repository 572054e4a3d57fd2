//! The runtime structures generated code reads and writes.

pub mod vmcontext;
