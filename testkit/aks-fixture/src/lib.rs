//! Test-only: an Azure Resource Manager fixture for AKS (being built).
