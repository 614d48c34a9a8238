//! Placements: each one's provider, scope, region and zones, and its overrides of the template,
//! checked against its backend's catalog and limits.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_saphyr::Location;
use tessera_provider_api::{Backend, Catalog, ClusterTemplate, ProviderRef, SpecField, nearest_names};

use super::super::diagnostic::{Problem, did_you_mean};
use super::super::model::Placement;
use super::super::raw::RawPlacement;
use super::{DEFAULT_SIM_PROFILE, MAX_CLUSTER_NAME, Template, Validator, network_loc};
use crate::backends;

impl Validator<'_> {
    pub(super) fn placements(
        &mut self,
        fleet: &str,
        raw: &[RawPlacement],
        list_loc: Location,
        template: &Template,
    ) -> Vec<Placement> {
        if raw.is_empty() {
            self.push(
                Problem::at(list_loc, "a fleet needs at least one placement")
                    .help("add e.g. `- { name: local, provider: kind }`"),
            );
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for p in raw {
            if self.dns_label(&p.name, "placement name") {
                let cluster_name = format!("{fleet}-{}", p.name.get());
                if cluster_name.len() > MAX_CLUSTER_NAME {
                    self.push(
                        Problem::at(
                            p.name.loc(),
                            format!("cluster name `{cluster_name}` is longer than {MAX_CLUSTER_NAME} characters"),
                        )
                        .help("shorten the fleet or placement name"),
                    );
                }
            }
            if !seen.insert(p.name.get().clone()) {
                self.push(
                    Problem::at(p.name.loc(), format!("duplicate placement name `{}`", p.name.get()))
                        .help("each placement is one cluster and needs its own name"),
                );
            }
            if let Some(placement) = self.placement(fleet, p, template) {
                out.push(placement);
            }
        }
        out
    }

    fn provider_ref(&mut self, p: &RawPlacement) -> Option<(ProviderRef, Arc<dyn Backend>)> {
        let kind = p.provider.get().as_str();
        let kinds = backends::placement_kinds(self.backends);
        let Some(backend) = backends::find(self.backends, kind).filter(|_| kinds.contains(&kind)) else {
            let hint = did_you_mean(&nearest_names(kinds.iter().copied(), kind, 2))
                .unwrap_or_else(|| format!("use one of: {}", kinds.join(", ")));
            self.push(Problem::at(p.provider.loc(), format!("unknown provider `{kind}`")).help(hint));
            return None;
        };
        let profile = match (&p.sim, kind) {
            (Some(sim), "sim") => {
                let name = sim.profile.get().as_str();
                if tessera_sim::Profile::named(name).is_none() {
                    self.push(
                        Problem::at(sim.profile.loc(), format!("unknown sim profile `{name}`"))
                            .help(format!("use one of: {}", tessera_sim::Profile::NAMES.join(", "))),
                    );
                    return None;
                }
                Some(name.to_string())
            }
            (None, "sim") => Some(DEFAULT_SIM_PROFILE.to_string()),
            (Some(sim), _) => {
                self.push(
                    Problem::at(
                        sim.profile.loc(),
                        format!("`sim` options apply only to `provider: sim`, not `{kind}`"),
                    )
                    .help("remove the `sim` block"),
                );
                None
            }
            (None, _) => None,
        };
        let profile = match (&p.kind, kind) {
            (None, _) => profile,
            (Some(k), "kind") => match k.control_planes.get().0 {
                1 => None,
                // The kind backend's HA topology (three control-plane nodes).
                3 => Some("ha".to_string()),
                n => {
                    self.push(
                        Problem::at(k.control_planes.loc(), format!("{n} control-plane nodes: kind supports 1 or 3"))
                            .help("use 1 (default) or 3 (a highly available topology)"),
                    );
                    return None;
                }
            },
            (Some(k), _) => {
                self.push(
                    Problem::at(
                        k.control_planes.loc(),
                        format!("`kind` options apply only to `provider: kind`, not `{kind}`"),
                    )
                    .help("remove the `kind` block"),
                );
                return None;
            }
        };
        let region = p.region.as_ref().map(|r| r.get().clone()).unwrap_or_default();
        let scope = self.scope(p, backend.as_ref())?;
        Some((ProviderRef { kind: kind.to_string(), region, profile, connection: None, scope }, backend))
    }

    /// The placement's `scope`, checked against the keys its backend takes.
    fn scope(&mut self, p: &RawPlacement, backend: &dyn Backend) -> Option<BTreeMap<String, String>> {
        let keys = backend.scope_keys();
        let given = p.scope.clone().unwrap_or_default();
        let mut ok = true;
        for (key, value) in &given {
            let Some(spec) = keys.iter().find(|k| k.name == key) else {
                ok = false;
                let names: Vec<&str> = keys.iter().map(|k| k.name).collect();
                let hint = did_you_mean(&nearest_names(names.iter().copied(), key, 2)).unwrap_or_else(|| {
                    if names.is_empty() {
                        format!("{} takes no scope: remove it", backend.kind())
                    } else {
                        format!("{} takes: {}", backend.kind(), names.join(", "))
                    }
                });
                self.push(
                    Problem::at(value.loc(), format!("unknown scope key `{key}` for {}", backend.kind())).help(hint),
                );
                continue;
            };
            if let Err(why) = (spec.check)(value.get()) {
                ok = false;
                self.push(
                    Problem::at(value.loc(), format!("invalid {} `{}`: {why}", key, value.get()))
                        .help(format!("e.g. `{}`", spec.example)),
                );
            }
        }
        for missing in keys.iter().filter(|k| k.required && !given.contains_key(k.name)) {
            ok = false;
            self.push(
                Problem::at(
                    p.name.loc(),
                    format!("placement `{}` needs `scope.{}` for {}", p.name.get(), missing.name, backend.kind()),
                )
                .help(format!("add `scope: {{ {} }}` to the placement", missing.example)),
            );
        }
        ok.then(|| given.into_iter().map(|(k, v)| (k, v.get().clone())).collect())
    }

    fn region(&mut self, p: &RawPlacement, catalog: &Catalog) -> Option<Vec<String>> {
        if !catalog.needs_region() {
            if let Some(r) = &p.region {
                self.push(
                    Problem::at(r.loc(), format!("{} has no regions", catalog.provider))
                        .help("remove `region` from this placement"),
                );
            }
            return Some(vec![]);
        }
        let Some(region) = &p.region else {
            self.push(
                Problem::at(p.name.loc(), format!("placement `{}` needs a region", p.name.get()))
                    .help(format!("e.g. `region: {}`", catalog.regions[0].name)),
            );
            return None;
        };
        let Some(found) = catalog.region(region.get()) else {
            let hint = did_you_mean(&catalog.nearest_regions(region.get(), 3))
                .unwrap_or_else(|| "run `tessera validate` on a spec with a known region".into());
            self.push(
                Problem::at(region.loc(), format!("unknown {} region `{}`", catalog.provider, region.get())).help(hint),
            );
            return None;
        };
        match &p.zones {
            None => Some(found.zones.iter().take(3).cloned().collect()),
            Some(zones) => {
                let mut ok = true;
                let mut seen = HashSet::new();
                for z in zones.get() {
                    if !seen.insert(z) {
                        ok = false;
                        self.push(
                            Problem::at(zones.loc(), format!("zone `{z}` is listed twice"))
                                .help("each zone gets one subnet; list it once"),
                        );
                    }
                    if !found.zones.contains(z) {
                        ok = false;
                        let hint = did_you_mean(&nearest_names(found.zones.iter().map(String::as_str), z, 3))
                            .unwrap_or_else(|| format!("zones of {}: {}", found.name, found.zones.join(", ")));
                        self.push(
                            Problem::at(zones.loc(), format!("zone `{z}` is not in region `{}`", found.name))
                                .help(hint),
                        );
                    }
                }
                if zones.get().is_empty() {
                    ok = false;
                    self.push(
                        Problem::at(zones.loc(), "`zones` is empty")
                            .help("list at least one zone, or drop `zones` for the default"),
                    );
                }
                ok.then(|| zones.get().clone())
            }
        }
    }

    fn placement(&mut self, fleet: &str, p: &RawPlacement, template: &Template) -> Option<Placement> {
        let (provider, backend) = self.provider_ref(p)?;
        let catalog = backend.catalog(&provider)?;
        let zones = self.region(p, &catalog);

        let mut version = (template.version.clone(), template.version_loc);
        let mut network = template.network.clone();
        let mut network_at = template.network_loc;
        let mut api_access = template.api_access.clone();
        let mut pools = template.pools.clone();
        if let Some(o) = &p.overrides {
            if let Some(k) = &o.kubernetes {
                version = (self.version_format(&k.version), k.version.loc());
            }
            if let Some(n) = &o.network {
                network = self.network(n);
                network_at = network_loc(n);
            }
            if let Some(a) = &o.api_access {
                api_access = self.api_access(a);
            }
            for po in &o.node_pools {
                let Some(target) = pools.iter_mut().find(|lp| lp.pool.name == *po.name.get()) else {
                    let names: Vec<&str> = template.pools.iter().map(|lp| lp.pool.name.as_str()).collect();
                    let hint = did_you_mean(&nearest_names(names.iter().copied(), po.name.get(), 2))
                        .unwrap_or_else(|| "overrides change existing pools; add new pools to spec.nodePools".into());
                    self.push(
                        Problem::at(
                            po.name.loc(),
                            format!("override names pool `{}`, which the template does not have", po.name.get()),
                        )
                        .help(hint),
                    );
                    continue;
                };
                if let Some(m) = &po.machine {
                    target.pool.machine = self.machine(m);
                    target.machine_loc = m.vcpu.loc();
                }
                if let Some(s) = &po.scale {
                    target.scale_loc = s.loc();
                    (target.pool.min, target.pool.max) = self.scale(s);
                }
            }
        }

        if !catalog.supports_version(&version.0) {
            let hint = did_you_mean(&catalog.nearest_versions(&version.0, 2))
                .unwrap_or_else(|| format!("supported: {}", catalog.versions.join(", ")));
            self.push(
                Problem::at(version.1, format!("{} does not offer Kubernetes {}", catalog.provider, version.0))
                    .help(hint),
            );
        }
        for lp in &pools {
            let m = &lp.pool.machine;
            if catalog.machine_type(m).is_none() {
                let near: Vec<String> = catalog
                    .nearest_machines(m, 3)
                    .iter()
                    .map(|t| format!("{{vcpu: {}, memoryGiB: {}}} ({})", t.vcpu, t.memory_gib, t.name))
                    .collect();
                let hint = if near.is_empty() {
                    format!("{} has no {} machines", catalog.provider, m.arch)
                } else {
                    format!("nearest sizes on {}: {}", catalog.provider, near.join(", "))
                };
                self.push(
                    Problem::at(
                        lp.machine_loc,
                        format!(
                            "{} has no {} machine with {} vCPU and {} GiB for pool `{}` (placement `{}`)",
                            catalog.provider,
                            m.arch,
                            m.vcpu,
                            m.memory_gib,
                            lp.pool.name,
                            p.name.get()
                        ),
                    )
                    .help(hint),
                );
            }
        }

        let cluster = ClusterTemplate {
            fleet: fleet.to_string(),
            placement: p.name.get().clone(),
            region: p.region.as_ref().map(|r| r.get().clone()).unwrap_or_default(),
            zones: zones?,
            kubernetes_version: version.0.clone(),
            network,
            api_access: api_access.access,
            pools: pools.iter().map(|lp| lp.pool.clone()).collect(),
            core_services: template.core_services.clone(),
        };
        // The cloud's own limits, each at the field it concerns.
        for v in backend.validate(&cluster, &provider) {
            let at = match &v.field {
                SpecField::FleetName => self.fleet_loc,
                SpecField::PlacementName => p.name.loc(),
                SpecField::Network => network_at.unwrap_or(p.name.loc()),
                SpecField::Pool(name) => {
                    pools.iter().find(|lp| lp.pool.name == *name).map_or(p.name.loc(), |lp| lp.name_loc)
                }
                SpecField::PoolScale(name) => {
                    pools.iter().find(|lp| lp.pool.name == *name).map_or(p.name.loc(), |lp| lp.scale_loc)
                }
                SpecField::ApiAccess => api_access.loc.unwrap_or(p.name.loc()),
                SpecField::Scope(key) => p.scope.as_ref().and_then(|s| s.get(key)).map_or(p.name.loc(), |v| v.loc()),
            };
            let where_ = format!(" (placement `{}`, {})", p.name.get(), backend.kind());
            let problem = Problem::at(at, format!("{}{where_}", v.message)).help(v.help);
            if v.warning {
                self.warnings.push(problem);
            } else {
                self.push(problem);
            }
        }
        Some(Placement { name: p.name.get().clone(), provider, cluster, version_site: version.1.into() })
    }
}
