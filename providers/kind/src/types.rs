//! The kind resource type, `kind.cluster`: its schema and its operations, in the one table
//! [`crate::KindProvider`] forwards every call to.

use std::sync::LazyLock;

use async_trait::async_trait;
use tessera_provider_api::{
    Attrs, CloudId, Field, Observed, Operations, ProviderError, Replacement, ResourceSpec, Schema, TAGS_ATTR, Ty, Types,
};

use crate::KindProvider;
use crate::lower::CLUSTER;

/// The table, built once: it is pure (schemas and operation values, no client).
pub(crate) static TYPES: LazyLock<Types<KindProvider>> = LazyLock::new(types);

pub fn types() -> Types<KindProvider> {
    Types::new("kind").register(cluster(), Cluster)
}

/// A kind cluster (see [`crate::lower`]). Its read reports the record of what Tessera asked for
/// ([`crate::record`]) beside what kind says: a cluster without a record reports no `config`,
/// `image`, `version` or `tags`.
pub fn cluster() -> Schema {
    let recorded = |name: &str, ty: Ty| Field::input(name, ty).maybe_read();
    Schema::new(CLUSTER, 1)
        .input("name", Ty::Text)
        // The generated kind config (`crate::config`): compared whole.
        .field(recorded("config", Ty::Any))
        .field(recorded("image", Ty::Text))
        .field(recorded("version", Ty::Text))
        .field(recorded(TAGS_ATTR, Ty::map(Ty::Text)))
        .field(Field::computed("endpoint", Ty::Text))
        .field(Field::computed("certificateAuthority", Ty::Text))
        .outputs(&["endpoint", "certificateAuthority", "name"])
        // kind cannot change a cluster: any of these replaces it.
        .replace_on("name")
        .replace_on("config")
        .replace_on("image")
        .replace_on("version")
        // The name is unique on the host: the old cluster goes first.
        .replaced_by(Replacement::DestroyBeforeCreate)
        // An update only rewrites the record (the tags).
        .takes(90, 1, 15)
}

pub struct Cluster;

#[async_trait]
impl Operations<KindProvider> for Cluster {
    async fn read(&self, p: &KindProvider, id: &CloudId, _: Option<&Attrs>) -> Result<Option<Observed>, ProviderError> {
        p.read_cluster(id).await
    }

    async fn find(&self, p: &KindProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        p.find_cluster(spec).await
    }

    async fn create(&self, p: &KindProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        p.create_cluster(spec).await
    }

    async fn update(
        &self,
        p: &KindProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        p.update_cluster(spec, id, changed).await
    }

    async fn delete(&self, p: &KindProvider, id: &CloudId) -> Result<(), ProviderError> {
        p.delete_cluster(id).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde_json::json;
    use tessera_provider_api::{Arch, ClusterTemplate, CoreServices, Machine, Network, PoolTemplate, ProviderRef};

    use super::*;

    fn template() -> ClusterTemplate {
        let pool = PoolTemplate {
            name: "system".into(),
            machine: Machine { vcpu: 2, memory_gib: 8, arch: Arch::Amd64, spot: false },
            min: 1,
            max: 1,
            labels: BTreeMap::new(),
            taints: Vec::new(),
        };
        ClusterTemplate {
            fleet: "f".into(),
            placement: "local".into(),
            region: String::new(),
            zones: Vec::new(),
            kubernetes_version: crate::images::versions().last().cloned().unwrap(),
            network: Network::Managed { cidr: "10.0.0.0/16".into() },
            api_access: Default::default(),
            pools: vec![pool],
            core_services: CoreServices { monitoring: None, logging: None, audit_logs: true },
        }
    }

    #[test]
    fn the_schema_is_sound() {
        for s in types().schemas() {
            assert!(s.problems().is_empty(), "{:?}", s.problems());
        }
    }

    #[test]
    fn a_stamped_cluster_carries_what_lowering_used_to_set() {
        let mut specs = crate::lower::lower(&template(), &ProviderRef::new("kind", ""), Path::new("/state"));
        assert_eq!(specs.len(), 1);
        let spec = &mut specs[0];
        let schema = cluster();
        schema.stamp(spec);
        assert_eq!(schema.check_spec(spec), Ok(()));
        assert_eq!(spec.replace_on, ["name", "config", "image", "version"]);
        assert_eq!(spec.outputs, ["endpoint", "certificateAuthority", "name"]);
        assert_eq!(spec.replacement, Replacement::DestroyBeforeCreate);
        assert_eq!(spec.version_attr, None);
        assert!(spec.policies.is_empty(), "lowering set no policies: {:?}", spec.policies);
    }

    fn read() -> Attrs {
        serde_json::from_value(json!({
            "name": "f-local",
            "config": {"kind": "Cluster"},
            "image": "kindest/node:v1.35.0",
            "version": "1.35",
            "tags": {"tessera.dev/fleet": "f"},
            "endpoint": "https://127.0.0.1:40123",
            "certificateAuthority": "TFMwdExTMUNSVWRKVGc9PQ==",
        }))
        .unwrap()
    }

    #[test]
    fn a_read_missing_a_value_or_of_the_wrong_type_is_refused_naming_the_path() {
        let schema = cluster();
        schema.check_read("f-local", &read()).unwrap();
        // Without a record: only what kind itself says.
        let mut bare = read();
        for k in ["config", "image", "version", "tags"] {
            bare.remove(k);
        }
        schema.check_read("f-local", &bare).unwrap();
        let mut no_ca = read();
        no_ca.remove("certificateAuthority");
        let err = schema.check_read("f-local", &no_ca).unwrap_err().to_string();
        assert!(err.contains("kind.cluster `f-local`") && err.contains("`/certificateAuthority`"), "{err}");
        let mut wrong = read();
        wrong.insert("tags".into(), json!({"tessera.dev/fleet": 3}));
        let err = schema.check_read("f-local", &wrong).unwrap_err().to_string();
        assert!(err.contains("`/tags/tessera.dev~1fleet`"), "{err}");
    }
}
