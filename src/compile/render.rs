//! The graph as text, for `tessera graph`: Graphviz DOT or a Mermaid flowchart.

use std::fmt::Write;

use petgraph::graph::DiGraph;
use petgraph::visit::EdgeRef;
use tessera_provider_api::ResourceSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

pub(super) fn render(graph: &DiGraph<ResourceSpec, ()>, format: GraphFormat) -> String {
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            out.push_str("digraph fleet {\n  rankdir=LR;\n  node [shape=box];\n");
            for n in graph.node_indices() {
                let _ = writeln!(out, "  n{} [label=\"{}\"];", n.index(), graph[n].address);
            }
            for e in graph.edge_references() {
                let _ = writeln!(out, "  n{} -> n{};", e.source().index(), e.target().index());
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for n in graph.node_indices() {
                let _ = writeln!(out, "  n{}[\"{}\"]", n.index(), graph[n].address);
            }
            for e in graph.edge_references() {
                let _ = writeln!(out, "  n{} --> n{}", e.source().index(), e.target().index());
            }
        }
    }
    out
}
