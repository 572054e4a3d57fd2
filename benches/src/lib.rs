//! Shared workloads of the benchmarks: the criterion benchmarks in `benches/benches/` and
//! the side-by-side `compare` binary (`benches/compare/`, its own cargo project so that
//! the peers it builds stay out of the workspace) both use them.

pub mod kernel;
