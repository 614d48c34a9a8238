//! The resource types inside a cluster, each with its schema (declared once in
//! [`tessera_kube::schemas`]) and this provider's operations, in the one table
//! [`crate::KubeProvider`] forwards every call to.

use std::sync::LazyLock;

use async_trait::async_trait;
use tessera_kube::alerting_status::ALERTING;
use tessera_kube::coverage::NODES;
use tessera_provider_api::{Attrs, CloudId, Observed, Operations, ProviderError, ResourceSpec, Types};

use crate::{KubeProvider, alerting, nodes, object, release};

/// The table, built once: it is pure (schemas and operation values, no client).
pub(crate) static TYPES: LazyLock<Types<KubeProvider>> = LazyLock::new(types);

pub fn types() -> Types<KubeProvider> {
    Types::new("kube")
        .register(tessera_kube::schemas::object(), Object)
        .register(tessera_kube::schemas::release(), Release)
        .register(tessera_kube::schemas::nodes(), View::Nodes)
        .register(tessera_kube::schemas::alerting(), View::Alerting)
}

pub struct Object;

#[async_trait]
impl Operations<KubeProvider> for Object {
    async fn read(&self, p: &KubeProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        object::read(p.cluster().await?, id).await
    }

    async fn find(&self, p: &KubeProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        object::find(p.cluster().await?, spec).await
    }

    async fn create(&self, p: &KubeProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        object::apply(p.cluster().await?, spec, true).await
    }

    async fn update(
        &self,
        p: &KubeProvider,
        spec: &ResourceSpec,
        _id: &CloudId,
        _changed: &[String],
    ) -> Result<Observed, ProviderError> {
        object::apply(p.cluster().await?, spec, false).await
    }

    async fn delete(&self, p: &KubeProvider, id: &CloudId) -> Result<(), ProviderError> {
        object::delete(p.cluster().await?, id).await
    }
}

pub struct Release;

#[async_trait]
impl Operations<KubeProvider> for Release {
    async fn read(
        &self,
        p: &KubeProvider,
        id: &CloudId,
        recorded: Option<&Attrs>,
    ) -> Result<Option<Observed>, ProviderError> {
        // Without a record (a plain read), the release's inventory comes from the cluster.
        let none = Attrs::new();
        release::read(p.cluster().await?, id, recorded.unwrap_or(&none)).await
    }

    async fn find(&self, p: &KubeProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        release::find(p.cluster().await?, spec).await
    }

    async fn create(&self, p: &KubeProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        release::apply(p.cluster().await?, spec, true).await
    }

    async fn update(
        &self,
        p: &KubeProvider,
        spec: &ResourceSpec,
        _id: &CloudId,
        _changed: &[String],
    ) -> Result<Observed, ProviderError> {
        release::apply(p.cluster().await?, spec, false).await
    }

    async fn delete(&self, p: &KubeProvider, id: &CloudId) -> Result<(), ProviderError> {
        release::delete(p.cluster().await?, id).await
    }
}

/// Read only: what the cluster reports of itself (its nodes, which are the cloud's; whether its
/// alerting works).
pub enum View {
    Nodes,
    Alerting,
}

fn read_only() -> ProviderError {
    ProviderError::Fatal(format!(
        "`{NODES}` and `{ALERTING}` are read-only: they report the cluster's state, which is not Tessera's to change"
    ))
}

#[async_trait]
impl Operations<KubeProvider> for View {
    async fn read(&self, p: &KubeProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        match self {
            View::Nodes => nodes::read(p.cluster().await?, id).await,
            View::Alerting => alerting::read(p.cluster().await?, id).await,
        }
    }

    async fn find(&self, _: &KubeProvider, _: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Err(read_only())
    }

    async fn create(&self, _: &KubeProvider, _: &ResourceSpec) -> Result<Observed, ProviderError> {
        Err(read_only())
    }

    async fn update(
        &self,
        _: &KubeProvider,
        _: &ResourceSpec,
        _: &CloudId,
        _: &[String],
    ) -> Result<Observed, ProviderError> {
        Err(read_only())
    }

    async fn delete(&self, _: &KubeProvider, _: &CloudId) -> Result<(), ProviderError> {
        Err(read_only())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tessera_kube::contract::{OBJECT, RELEASE};
    use tessera_kube::schemas::{IN_SYNC, INVENTORY, OBJECTS};

    use super::*;

    fn attrs(v: serde_json::Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_schemas_are_sound_and_the_kube_crates() {
        let table = types();
        let names: Vec<&str> = table.schemas().map(|s| s.rtype.as_str()).collect();
        assert_eq!(names, [RELEASE, ALERTING, NODES, OBJECT], "each once, by name");
        for s in table.schemas() {
            assert!(s.problems().is_empty(), "{:?}", s.problems());
        }
    }

    #[test]
    fn what_the_reads_report_passes_the_schemas() {
        let table = types();
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}});
        let o = object::observed("v1/ConfigMap/n/c".into(), &live);
        table.schema(OBJECT).unwrap().check_read(&o.id, &o.attrs).unwrap();
        let node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
        let listed = nodes::with_pods(&[node], &[]).unwrap();
        let read = attrs(json!({"nodes": listed}));
        table.schema(NODES).unwrap().check_read("", &read).unwrap();
        let status = tessera_kube::alerting_status::judge(&json!({}), &json!([]));
        let read = attrs(serde_json::to_value(status).unwrap());
        table.schema(ALERTING).unwrap().check_read("", &read).unwrap();
        // A plain read of a release knows only what the cluster has: its inventory and objects.
        let release = attrs(json!({INVENTORY: ["v1/ConfigMap/n/c"], OBJECTS: {"v1/ConfigMap/n/c": {}}, IN_SYNC: true}));
        table.schema(RELEASE).unwrap().check_read("n/r", &release).unwrap();
    }

    #[test]
    fn a_read_missing_a_value_or_of_the_wrong_type_is_refused_naming_the_path() {
        let table = types();
        let err = table.schema(OBJECT).unwrap().check_read("v1/ConfigMap/n/c", &Attrs::new()).unwrap_err();
        assert!(err.to_string().contains("`/manifest`"), "{err}");
        let release = table.schema(RELEASE).unwrap();
        let no_sync = attrs(json!({INVENTORY: [], OBJECTS: {}}));
        let err = release.check_read("n/r", &no_sync).unwrap_err().to_string();
        assert!(err.contains("n/r") && err.contains("`/inSync`"), "{err}");
        let wrong = attrs(json!({INVENTORY: ["a", 7], OBJECTS: {}, IN_SYNC: true}));
        let err = release.check_read("n/r", &wrong).unwrap_err().to_string();
        assert!(err.contains("`/inventory/1`"), "{err}");
        let err = table.schema(NODES).unwrap().check_read("", &attrs(json!({"nodes": {}}))).unwrap_err();
        assert!(err.to_string().contains("`/nodes`"), "{err}");
    }

    #[test]
    fn a_node_without_a_name_is_an_error_not_left_out() {
        let nameless = serde_json::from_value(json!({"metadata": {"labels": {"a": "b"}}})).unwrap();
        let err = nodes::with_pods(&[nameless], &[]).unwrap_err().to_string();
        assert!(err.contains("`/metadata/name`"), "{err}");
    }

    #[tokio::test]
    async fn nodes_and_alerting_are_read_only() {
        let p = KubeProvider::new(Default::default(), None, Default::default());
        for (view, rtype) in [(View::Nodes, NODES), (View::Alerting, ALERTING)] {
            let spec = ResourceSpec::new(tessera_provider_api::Address::new("p", rtype, "all"), Default::default());
            for err in [view.create(&p, &spec).await.unwrap_err(), view.find(&p, &spec).await.unwrap_err()] {
                assert!(err.to_string().contains("are read-only"), "{err}");
            }
            assert!(view.delete(&p, &String::new()).await.is_err());
        }
    }
}
