//! What a provider offers: regions and zones, machine types, Kubernetes versions.
//!
//! The catalog is what turns the neutral `{vcpu, memoryGiB, arch}` into `m6i.xlarge` or
//! `Standard_D4s_v5`, and what lets validation suggest the nearest valid choice.

use serde::{Deserialize, Serialize};

use crate::{Arch, Machine};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub name: String,
    pub zones: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineType {
    pub name: String,
    pub vcpu: u32,
    pub memory_gib: u32,
    pub arch: Arch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MachineCatalog {
    /// A fixed list of instance types; a machine must match one exactly.
    Types(Vec<MachineType>),
    /// Any size is accepted and maps to one node image (kind runs nodes as containers).
    Any { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub provider: String,
    /// Empty when the provider has no notion of regions (kind).
    pub regions: Vec<Region>,
    pub machines: MachineCatalog,
    /// Supported `major.minor` Kubernetes versions, oldest first.
    pub versions: Vec<String>,
    pub supports_spot: bool,
}

impl Catalog {
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    pub fn needs_region(&self) -> bool {
        !self.regions.is_empty()
    }

    /// Region names closest to `name`, best first, for "did you mean" hints.
    pub fn nearest_regions(&self, name: &str, n: usize) -> Vec<&str> {
        nearest_names(self.regions.iter().map(|r| r.name.as_str()), name, n)
    }

    pub fn nearest_versions(&self, version: &str, n: usize) -> Vec<&str> {
        nearest_names(self.versions.iter().map(String::as_str), version, n)
    }

    pub fn supports_version(&self, version: &str) -> bool {
        let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
        self.versions.contains(&minor)
    }

    /// The instance type for a neutral machine: an exact match of vCPU, memory and arch.
    /// The first match wins, so catalogs list general-purpose families first.
    pub fn machine_type(&self, m: &Machine) -> Option<String> {
        match &self.machines {
            MachineCatalog::Any { name } => Some(name.clone()),
            MachineCatalog::Types(types) => types
                .iter()
                .find(|t| t.vcpu == m.vcpu && t.memory_gib == m.memory_gib && t.arch == m.arch)
                .map(|t| t.name.clone()),
        }
    }

    /// Machines of the same arch closest in size, best first (distance in log-space so that
    /// 4→8 vCPU counts the same as 8→16).
    pub fn nearest_machines(&self, m: &Machine, n: usize) -> Vec<&MachineType> {
        let MachineCatalog::Types(types) = &self.machines else { return Vec::new() };
        let dist = |t: &MachineType| {
            let d = |a: u32, b: u32| (f64::from(a.max(1)).ln() - f64::from(b.max(1)).ln()).abs();
            d(t.vcpu, m.vcpu) + d(t.memory_gib, m.memory_gib)
        };
        let mut same_arch: Vec<&MachineType> = types.iter().filter(|t| t.arch == m.arch).collect();
        same_arch.sort_by(|a, b| dist(a).total_cmp(&dist(b)));
        same_arch.truncate(n);
        same_arch
    }
}

/// Up to `n` names closest to `target` by Jaro-Winkler similarity (which weighs a shared prefix
/// heavily, as region and type names need), best first; names too unlike it are left out.
pub fn nearest_names<'a>(names: impl IntoIterator<Item = &'a str>, target: &str, n: usize) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = names.into_iter().map(|c| (strsim::jaro_winkler(c, target), c)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().filter(|(s, _)| *s > 0.6).take(n).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog {
            provider: "test".into(),
            regions: vec![
                Region { name: "eu-west-1".into(), zones: vec!["eu-west-1a".into()] },
                Region { name: "us-east-1".into(), zones: vec!["us-east-1a".into()] },
            ],
            machines: MachineCatalog::Types(vec![
                MachineType { name: "small".into(), vcpu: 2, memory_gib: 8, arch: Arch::Amd64 },
                MachineType { name: "large".into(), vcpu: 8, memory_gib: 32, arch: Arch::Amd64 },
                MachineType { name: "arm".into(), vcpu: 4, memory_gib: 16, arch: Arch::Arm64 },
            ]),
            versions: vec!["1.30".into(), "1.31".into()],
            supports_spot: true,
        }
    }

    #[test]
    fn maps_exact_machines_and_suggests_near_ones() {
        let c = catalog();
        let m = Machine { vcpu: 8, memory_gib: 32, arch: Arch::Amd64, spot: false };
        assert_eq!(c.machine_type(&m).as_deref(), Some("large"));
        let odd = Machine { vcpu: 7, memory_gib: 30, arch: Arch::Amd64, spot: false };
        assert_eq!(c.machine_type(&odd), None);
        assert_eq!(c.nearest_machines(&odd, 1)[0].name, "large");
    }

    #[test]
    fn suggests_regions_and_checks_versions() {
        let c = catalog();
        assert_eq!(c.nearest_regions("eu-west1", 1), vec!["eu-west-1"]);
        assert!(c.supports_version("1.31"));
        assert!(c.supports_version("1.31.4"));
        assert!(!c.supports_version("1.29"));
    }
}
