//! Stage 2: [`Fleet`] → [`ResourceGraph`], a petgraph DAG of every resource in every placement.
//!
//! Each placement's provider lowers the (neutral) cluster template into resources; their
//! dependencies become edges from dependency to dependent. A reference to another resource's
//! output (see `tessera_provider_api::reference`) and a provider's connection source are
//! dependencies too, whether or not lowering listed them, and each must name a resource that
//! exists and declares that output. A cycle is an error that names the path, because an executor
//! could never start any resource on it.
//!
//! A provider that makes a cluster says how its inside is reached
//! ([`tessera_provider_api::KubeAccess`]); each placement's core services
//! ([`tessera_kube::lower`]) are lowered through that, after the cluster's node pools.

mod render;

use std::collections::HashMap;

use petgraph::Direction;
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use tessera_provider_api::{Address, ResourceSpec};

use crate::providers::Registry;
use crate::spec::Fleet;

pub use render::GraphFormat;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CompileError {
    #[error("two resources share the address `{0}`")]
    #[diagnostic(code(tessera::compile::duplicate))]
    DuplicateAddress(Address),
    #[error("`{from}` depends on `{to}`, which no placement defines")]
    #[diagnostic(code(tessera::compile::dangling))]
    UnknownDependency { from: String, to: String },
    #[error("`{from}` references `{target}#{output}`, but {target} declares no output `{output}`")]
    #[diagnostic(code(tessera::compile::output), help("a resource type lists its outputs in its schema"))]
    UnknownOutput { from: String, target: String, output: String },
    #[error("dependency cycle: {}", path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → "))]
    #[diagnostic(
        code(tessera::compile::cycle),
        help("a resource on a cycle can never start; break one of these dependencies")
    )]
    Cycle { path: Vec<Address> },
    #[error(transparent)]
    Provider(#[from] crate::providers::UnknownProvider),
    #[error(transparent)]
    #[diagnostic(code(tessera::compile::resource_type))]
    Type(#[from] crate::backends::TypeError),
}

/// Every resource of the fleet, with edges from each dependency to its dependents.
#[derive(Debug, Default)]
pub struct ResourceGraph {
    graph: DiGraph<ResourceSpec, ()>,
    index: HashMap<Address, NodeIndex>,
}

impl ResourceGraph {
    /// Lowers every placement through its provider and links the result.
    pub fn compile(fleet: &Fleet, registry: &Registry) -> Result<Self, CompileError> {
        let mut resources = Vec::new();
        for p in &fleet.placements {
            resources.extend(registry.lower(&p.cluster, &p.provider)?);
            // Core services: the same objects on every cloud, through the cluster's own
            // Kubernetes provider, after its node pools.
            if let Some(access) = registry.kube_access(&p.cluster, &p.provider)? {
                let cloud = p.provider.profile.as_deref().unwrap_or(&p.provider.kind);
                resources.extend(tessera_kube::lower::lower(&p.cluster, &access, cloud));
            }
        }
        // Lowering wrote values and references; policies, replacement rules and outputs come
        // from each type's schema.
        for r in &mut resources {
            registry.stamp(r)?;
        }
        Self::from_resources(resources)
    }

    pub fn from_resources(mut resources: Vec<ResourceSpec>) -> Result<Self, CompileError> {
        for r in &mut resources {
            let implied = r.references().into_iter().map(|x| x.address).chain(r.provider.connection.clone());
            for dep in implied.collect::<Vec<_>>() {
                if !r.deps.contains(&dep) {
                    r.deps.push(dep);
                }
            }
        }
        let mut g = Self::default();
        for r in resources {
            let address = r.address.clone();
            let node = g.graph.add_node(r);
            if g.index.insert(address.clone(), node).is_some() {
                return Err(CompileError::DuplicateAddress(address));
            }
        }
        let mut edges = Vec::new();
        for node in g.graph.node_indices() {
            let r = &g.graph[node];
            for dep in &r.deps {
                let Some(&from) = g.index.get(dep) else {
                    return Err(CompileError::UnknownDependency { from: r.address.to_string(), to: dep.to_string() });
                };
                edges.push((from, node));
            }
            for reference in r.references() {
                let declared =
                    g.index.get(&reference.address).is_some_and(|n| g.graph[*n].has_output(&reference.output));
                if !declared {
                    return Err(CompileError::UnknownOutput {
                        from: r.address.to_string(),
                        target: reference.address.to_string(),
                        output: reference.output,
                    });
                }
            }
        }
        for (from, to) in edges {
            g.graph.add_edge(from, to, ());
        }
        if toposort(&g.graph, None).is_err() {
            return Err(CompileError::Cycle { path: g.find_cycle() });
        }
        Ok(g)
    }

    /// A cycle's path, first node repeated at the end: found inside a strongly connected
    /// component with more than one node (or a self-loop).
    fn find_cycle(&self) -> Vec<Address> {
        for scc in kosaraju_scc(&self.graph) {
            let in_scc = |n: &NodeIndex| scc.contains(n);
            let start = scc[0];
            if scc.len() == 1 && !self.graph.contains_edge(start, start) {
                continue;
            }
            // Walk successors inside the component until a node repeats.
            let mut path = vec![start];
            let mut current = start;
            while let Some(next) = self.graph.neighbors_directed(current, Direction::Outgoing).find(in_scc) {
                if let Some(pos) = path.iter().position(|n| *n == next) {
                    let mut cycle: Vec<Address> = path[pos..].iter().map(|n| self.graph[*n].address.clone()).collect();
                    cycle.push(self.graph[next].address.clone());
                    return cycle;
                }
                path.push(next);
                current = next;
            }
        }
        Vec::new()
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn get(&self, address: &Address) -> Option<&ResourceSpec> {
        self.index.get(address).map(|n| &self.graph[*n])
    }

    /// Resources in dependency order: every resource after all of its dependencies.
    pub fn in_order(&self) -> Vec<&ResourceSpec> {
        toposort(&self.graph, None).map(|order| order.into_iter().map(|n| &self.graph[n]).collect()).unwrap_or_default()
    }

    /// Every resource, to extend the graph (a test adds Kubernetes-side resources) and relink it.
    pub fn into_resources(self) -> Vec<ResourceSpec> {
        self.graph.into_nodes_edges().0.into_iter().map(|n| n.weight).collect()
    }

    pub fn render(&self, format: GraphFormat) -> String {
        render::render(&self.graph, format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_provider_api::{ProviderRef, Reference};

    fn res(addr: &str, deps: &[&str]) -> ResourceSpec {
        let p = ProviderRef::new("sim", "r");
        let mut r = ResourceSpec::new(addr.parse().unwrap(), p);
        r.deps = deps.iter().map(|d| d.parse().unwrap()).collect();
        r
    }

    #[test]
    fn orders_dependencies_first() {
        let g = ResourceGraph::from_resources(vec![
            res("a/sim.nodepool/x", &["a/sim.cluster/main"]),
            res("a/sim.cluster/main", &["a/sim.network/main"]),
            res("a/sim.network/main", &[]),
        ])
        .unwrap();
        let order: Vec<String> = g.in_order().iter().map(|r| r.address.to_string()).collect();
        assert_eq!(order, ["a/sim.network/main", "a/sim.cluster/main", "a/sim.nodepool/x"]);
    }

    #[test]
    fn reports_a_cycle_with_its_path() {
        let err = ResourceGraph::from_resources(vec![
            res("a/t/one", &["a/t/three"]),
            res("a/t/two", &["a/t/one"]),
            res("a/t/three", &["a/t/two"]),
            res("a/t/free", &[]),
        ])
        .unwrap_err();
        let CompileError::Cycle { path } = &err else { panic!("expected a cycle, got {err}") };
        assert_eq!(path.len(), 4, "three nodes and the first repeated: {err}");
        assert_eq!(path.first(), path.last());
        let msg = err.to_string();
        for n in ["a/t/one", "a/t/two", "a/t/three"] {
            assert!(msg.contains(n), "{msg}");
        }
        assert!(!msg.contains("free"));
    }

    #[test]
    fn reports_self_loops_dangling_and_duplicate_addresses() {
        let err = ResourceGraph::from_resources(vec![res("a/t/x", &["a/t/x"])]).unwrap_err();
        assert!(matches!(err, CompileError::Cycle { ref path } if path.len() == 2), "{err}");
        let err = ResourceGraph::from_resources(vec![res("a/t/x", &["a/t/missing"])]).unwrap_err();
        assert!(matches!(err, CompileError::UnknownDependency { .. }), "{err}");
        let err = ResourceGraph::from_resources(vec![res("a/t/x", &[]), res("a/t/x", &[])]).unwrap_err();
        assert!(matches!(err, CompileError::DuplicateAddress(_)), "{err}");
    }

    #[test]
    fn references_are_dependencies_and_must_name_a_declared_output() {
        let vpc: Address = "a/t/vpc".parse().unwrap();
        let mut subnet = res("a/t/subnet", &[]);
        // Written as lowering does, without declaring the dependency: the reference implies it.
        subnet.attrs.insert("vpcId".into(), Reference::new(vpc.clone(), "id").to_value());
        subnet.ref_attrs.insert("vpcId".into());
        let g = ResourceGraph::from_resources(vec![subnet.clone(), res("a/t/vpc", &[])]).unwrap();
        assert_eq!(g.get(&"a/t/subnet".parse().unwrap()).unwrap().deps, vec![vpc.clone()], "implied by the reference");
        let order: Vec<String> = g.in_order().iter().map(|r| r.address.name.clone()).collect();
        assert_eq!(order, ["vpc", "subnet"]);

        subnet.attrs.insert("cidr".into(), Reference::new(vpc.clone(), "cidr").to_value());
        subnet.ref_attrs.insert("cidr".into());
        let err = ResourceGraph::from_resources(vec![subnet.clone(), res("a/t/vpc", &[])]).unwrap_err();
        assert!(matches!(err, CompileError::UnknownOutput { .. }), "{err}");
        assert!(err.to_string().contains("a/t/vpc declares no output `cidr`"), "{err}");
        let declared = res("a/t/vpc", &[]).outputs(&["cidr"]);
        assert!(ResourceGraph::from_resources(vec![subnet.clone(), declared]).is_ok());

        let err = ResourceGraph::from_resources(vec![subnet]).unwrap_err();
        assert!(matches!(err, CompileError::UnknownDependency { .. }), "{err}");
    }
}
