//! Criterion benches of collab. Run them with `cargo bench -p collab-benches`; each bench prints
//! its own figures and, where it has one, the raw baseline measured in the same run.
