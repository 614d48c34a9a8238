//! Test-only: a GKE fixture (being built).
