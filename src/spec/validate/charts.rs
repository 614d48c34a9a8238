//! Which objects of each chart the outcome check judges: helm's rendering, else Tessera's model.
//!
//! ## Model
//!
//! Coverage is checked on what will run ([`super::outcome`]). For a chart, that is what
//! `helm template` renders from the release's values, so each release ([`render::releases`]:
//! the chart, values and Kubernetes version the install uses) is offered to the renderer the
//! caller passed. The renderer answers only from this machine (a command must never need the
//! network); where it cannot, the chart's workloads come from Tessera's model. Either way the
//! fleet records, per chart, which was used, and `tessera validate` says so. A render that helm
//! refuses is refused here, at the service's values: the install would fail the same way.

use tessera_kube::coverage::Service;
use tessera_kube::render::{self, ChartRenderer, Rendering};
use tessera_kube::workloads::Rendered;
use tessera_provider_api::CoreServices;

use super::super::diagnostic::Problem;
use super::outcome::ServiceSites;
use super::{ChartCheck, Validator};

impl Validator<'_> {
    /// Each chart's objects as helm renders them, where `charts` can; `kube_version` is `None`
    /// when the spec's version is invalid (refused already), and then the model is used.
    pub(super) fn render_charts(
        &mut self,
        cs: &CoreServices,
        kube_version: Option<&str>,
        charts: &dyn ChartRenderer,
        sites: &ServiceSites,
    ) -> Rendered {
        let mut rendered = Rendered::default();
        let Some(version) = kube_version else { return rendered };
        for release in render::releases(cs, version) {
            let chart = release.chart;
            let mut check = ChartCheck {
                chart: chart.reference.clone(),
                version: chart.version.clone(),
                rendered: false,
                reason: None,
            };
            match charts.render(&release) {
                Rendering::Objects(objects) => {
                    check.rendered = true;
                    match release.service {
                        Service::Monitoring => rendered.monitoring = Some(objects),
                        Service::Logging => rendered.logging = Some(objects),
                    }
                }
                Rendering::Unavailable(why) => check.reason = Some(why),
                Rendering::Failed(why) => {
                    let values = match release.service {
                        Service::Monitoring => sites.monitoring_values,
                        Service::Logging => sites.logging_values,
                    };
                    let at = values.map_or(self.fleet_loc, |v| v.loc());
                    self.push(
                        Problem::at(at, format!("helm cannot render chart `{}` {} from these values: {why}", chart.reference, chart.version))
                            .help("the install would fail the same way; fix the values (or the chart) until `helm template` renders it"),
                    );
                    check.reason = Some("helm refused the values".into());
                }
            }
            self.chart_checks.push(check);
        }
        rendered
    }
}
