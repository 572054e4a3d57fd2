//! Tests of context switching.
