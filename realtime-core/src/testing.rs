//! Conformance suites (todo)
