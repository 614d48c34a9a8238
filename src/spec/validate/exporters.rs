//! Custom exporters: a name of their own, a pinned image, and host mounts by the exporter mount
//! policy ([`tessera_kube::floor`]: hardware paths only, read-only, each once after normalising).

use std::collections::HashSet;

use tessera_kube::floor;
use tessera_provider_api::Exporter;

use super::super::diagnostic::Problem;
use super::super::raw::RawExporter;
use super::Validator;

impl Validator<'_> {
    /// The exporter, or `None` when any of its settings is refused (each at its own line).
    pub(super) fn exporter(&mut self, e: &RawExporter, seen: &mut HashSet<String>) -> Option<Exporter> {
        let before = self.problems.len();
        self.dns_label(&e.name, "exporter name");
        if !seen.insert(e.name.get().clone()) {
            self.push(
                Problem::at(e.name.loc(), format!("two exporters are named `{}`", e.name.get()))
                    .help("exporter names name their DaemonSets and must be unique"),
            );
        }
        if tessera_kube::charts::monitoring_chart_may_render(e.name.get()) {
            self.push(
                Problem::at(e.name.loc(), format!("exporter name `{}` is a name the monitoring chart gives its own objects", e.name.get()))
                    .help(format!(
                        "kube-prometheus-stack names its objects `{0}…`, `prometheus-{0}…` and `alertmanager-{0}…`; name the exporter after what it exports (e.g. `smartctl`)",
                        tessera_kube::charts::MONITORING_RELEASE
                    )),
            );
        }
        let image = e.image.get();
        if let Err(why) = floor::image_pinned(image) {
            self.push(
                Problem::at(e.image.loc(), format!("exporter {why}")).help(
                    "pin a version tag or a digest (e.g. `repo/exporter:1.2.3`, `repo/exporter@sha256:<64 hex>`)",
                ),
            );
        }
        let mut mounts = Vec::new();
        for m in &e.host_mounts {
            match floor::exporter_mount(m.get()) {
                Ok(path) if mounts.contains(&path) => self.push(
                    Problem::at(m.loc(), format!("host mount `{path}` is listed twice (as `{}`)", m.get()))
                        .help("list each host path once"),
                ),
                Ok(path) => mounts.push(path),
                Err(why) => self.push(
                    Problem::at(m.loc(), format!("exporter `{}` may not mount this: {why}", e.name.get()))
                        .help(floor::hardware_hint()),
                ),
            }
        }
        let port = match u16::try_from(e.port.get().0) {
            Ok(p) if p > 0 => p,
            _ => {
                self.push(
                    Problem::at(e.port.loc(), format!("port {} is not a TCP port", e.port.get()))
                        .help("use 1 to 65535"),
                );
                return None;
            }
        };
        let path = e.path.as_ref().map_or_else(|| "/metrics".to_string(), |p| p.get().clone());
        if !path.starts_with('/') {
            self.push(Problem::at(
                e.path.as_ref().map_or(e.name.loc(), |p| p.loc()),
                format!("scrape path `{path}` does not start with `/`"),
            ));
        }
        let interval = self.duration(e.interval.as_ref(), "30s", "scrape interval");
        if self.problems.len() > before {
            return None;
        }
        Some(Exporter {
            name: e.name.get().clone(),
            image: image.clone(),
            privileged: e.privileged,
            host_mounts: mounts,
            port,
            path,
            interval,
        })
    }
}
