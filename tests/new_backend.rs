//! A backend written from the public API alone, as ARCHITECTURE.md's "Adding a backend" says:
//! a `Backend` (its kind, catalog and lowering) and a `Types` table (each resource type's schema
//! and operations). The build's own backends are added by one line in `src/backends.rs` behind a
//! Cargo feature; this test adds its backend to one registry instead (`Registry::with_backend`),
//! and nothing else in the engine changes: the fleet plans, applies, re-plans clean, sees drift
//! on an owned field and none on a delegated one, replaces on a replacement rule, refuses a
//! malformed read naming the path, will not delete an object whose ownership tags name another
//! address, and is destroyed.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use tessera::plan::{ActionKind, Mode};
use tessera_provider_api::{
    Address, Attrs, Backend, BuildContext, BuildError, Catalog, CloudId, ClusterTemplate, Extensions, Field,
    FieldPolicy, MachineCatalog, Observed, Operation, Operations, Outcome, Provider, ProviderError, ProviderExt,
    ProviderRef, Replacement, Request, ResourceSpec, Schema, TAG_ADDRESS, TAG_FLEET, Ty, Types,
};

const KIND: &str = "teapot";
const CLUSTER: &str = "teapot.cluster";
const POOL: &str = "teapot.pool";

/// The teapot cloud: objects by id, and a switch that makes its reads drop an attribute.
#[derive(Default)]
struct Cloud {
    objects: Mutex<BTreeMap<CloudId, Observed>>,
    next: AtomicU64,
    malformed_reads: AtomicBool,
}

impl Cloud {
    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<CloudId, Observed>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An out-of-band change to the object made for `address`, as a console would make it.
    fn edit(&self, address: &str, field: &str, value: Value) {
        let mut objects = self.objects();
        let ours = |o: &&mut Observed| o.attrs["tags"][TAG_ADDRESS] == json!(address);
        let o = objects.values_mut().find(ours).expect("the object of that address");
        o.attrs.insert(field.into(), value);
    }
}

// ---- what a backend crate holds: its schemas, its operations, its provider, its backend ----

fn tags() -> Field {
    Field::input("tags", Ty::map(Ty::Text))
}

fn cluster_schema() -> Schema {
    Schema::new(CLUSTER, 1)
        .input("name", Ty::Text)
        .input("version", Ty::Text)
        .field(tags())
        .field(Field::computed("endpoint", Ty::Text))
        .outputs(&["name", "endpoint"])
        .versioned("version")
        .replace_on("name")
        .replaced_by(Replacement::DestroyBeforeCreate)
        .takes(60, 30, 30)
}

fn pool_schema() -> Schema {
    Schema::new(POOL, 1)
        .input("cluster", Ty::Text)
        .input("flavour", Ty::Text)
        .input("size", Ty::Integer)
        .input("autoscale", Ty::Bool)
        .field(tags())
        .policy_when("size", FieldPolicy::Delegated, |a| a.get("autoscale") == Some(&json!(true)))
        .replace_on("flavour")
        .replace_on("cluster")
        .takes(30, 10, 20)
}

/// One set of operations for both types: the teapot cloud keeps any attributes.
struct Store(&'static str);

#[async_trait]
impl Operations<TeapotProvider> for Store {
    async fn read(
        &self,
        cx: &TeapotProvider,
        id: &CloudId,
        _: Option<&Attrs>,
    ) -> Result<Option<Observed>, ProviderError> {
        let mut found = cx.cloud.objects().get(id).cloned();
        if cx.cloud.malformed_reads.load(Ordering::SeqCst)
            && let Some(o) = found.as_mut()
        {
            o.attrs.remove("endpoint");
        }
        Ok(found)
    }

    async fn find(&self, cx: &TeapotProvider, spec: &ResourceSpec) -> Result<Option<Observed>, ProviderError> {
        Ok(cx.cloud.objects().values().find(|o| spec.is_ours(&o.attrs)).cloned())
    }

    async fn create(&self, cx: &TeapotProvider, spec: &ResourceSpec) -> Result<Observed, ProviderError> {
        let id = format!("{}-{}", self.0, cx.cloud.next.fetch_add(1, Ordering::SeqCst));
        let mut attrs = spec.attrs.clone();
        if self.0 == CLUSTER {
            attrs.insert("endpoint".into(), json!(format!("https://{id}.teapot.test")));
        }
        let o = Observed { id: id.clone(), status: "READY".into(), attrs };
        cx.cloud.objects().insert(id, o.clone());
        Ok(o)
    }

    async fn update(
        &self,
        cx: &TeapotProvider,
        spec: &ResourceSpec,
        id: &CloudId,
        changed: &[String],
    ) -> Result<Observed, ProviderError> {
        let mut objects = cx.cloud.objects();
        let o = objects.get_mut(id).ok_or_else(|| ProviderError::NotFound(id.clone()))?;
        for field in changed {
            if let Some(v) = spec.attrs.get(field) {
                o.attrs.insert(field.clone(), v.clone());
            }
        }
        Ok(o.clone())
    }

    async fn delete(&self, cx: &TeapotProvider, id: &CloudId) -> Result<(), ProviderError> {
        cx.cloud.objects().remove(id).map(|_| ()).ok_or_else(|| ProviderError::NotFound(id.clone()))
    }
}

struct TeapotProvider {
    cloud: Arc<Cloud>,
    catalog: Catalog,
    types: Types<TeapotProvider>,
}

fn types() -> Types<TeapotProvider> {
    Types::new(KIND).register(cluster_schema(), Store(CLUSTER)).register(pool_schema(), Store(POOL))
}

fn catalog() -> Catalog {
    Catalog {
        provider: KIND.into(),
        regions: Vec::new(),
        machines: MachineCatalog::Any { name: "any".into() },
        versions: vec!["1.31".into()],
        supports_spot: false,
    }
}

#[async_trait]
impl Provider for TeapotProvider {
    fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    fn estimate(&self, rtype: &str, op: Operation) -> std::time::Duration {
        self.types.estimate(rtype, op)
    }

    async fn call(&self, request: Request<'_>) -> Result<Outcome, ProviderError> {
        self.types.call(self, request).await
    }
}

struct Teapot;

impl Backend for Teapot {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn catalog(&self, _: &ProviderRef) -> Option<Catalog> {
        Some(catalog())
    }

    fn schemas(&self) -> Vec<Schema> {
        types().schemas().cloned().collect()
    }

    fn lower(&self, cluster: &ClusterTemplate, provider: &ProviderRef, _: &Extensions) -> Vec<ResourceSpec> {
        let placement = cluster.placement.as_str();
        let tags = |a: &Address| json!({ TAG_FLEET: cluster.fleet, TAG_ADDRESS: a.to_string() });
        let cp = Address::new(placement, CLUSTER, "main");
        let mut out = vec![
            ResourceSpec::new(cp.clone(), provider.clone())
                .attr("name", format!("{}-{placement}", cluster.fleet))
                .attr("version", cluster.kubernetes_version.clone())
                .attr("tags", tags(&cp)),
        ];
        for pool in &cluster.pools {
            let a = Address::new(placement, POOL, pool.name.clone());
            out.push(
                ResourceSpec::new(a.clone(), provider.clone())
                    .attr_ref("cluster", &cp, "name")
                    .attr("flavour", format!("{}c", pool.machine.vcpu))
                    .attr("size", pool.min)
                    .attr("autoscale", pool.min != pool.max)
                    .attr("tags", tags(&a)),
            );
        }
        out
    }

    fn build(&self, ctx: &BuildContext<'_>) -> Result<Arc<dyn Provider>, BuildError> {
        let cloud =
            ctx.extensions.get::<Arc<Cloud>>().cloned().ok_or_else(|| BuildError::Invalid("no teapot".into()))?;
        Ok(Arc::new(TeapotProvider { cloud, catalog: catalog(), types: types() }))
    }
}

// ---- the engine, unchanged, on it ----

/// The common fleet (two pools: `system` autoscales 3–6, `infra` 1–3) after `yaml_edit`, placed
/// on the teapot cloud.
fn fleet(yaml_edit: &dyn Fn(String) -> String) -> tessera::spec::Fleet {
    let yaml = yaml_edit(common::fleet_yaml("brew", &[("lab", "eks", "eu-west-1")]));
    let mut fleet = common::load(&yaml);
    for p in &mut fleet.placements {
        p.provider = ProviderRef::new(KIND, "lab-1");
    }
    fleet
}

#[tokio::test(start_paused = true)]
async fn a_backend_made_of_a_backend_and_a_type_table_runs_the_whole_lifecycle() {
    let cloud = Arc::new(Cloud::default());
    let store = Arc::new(tessera::state::SqliteStore::in_memory().unwrap());
    let h = common::Harness::with_registry(tessera_sim::Faults::default(), store, |r| {
        r.with_backend(Arc::new(Teapot)).with_setting(cloud.clone())
    });
    let fixed = |y: String| y.replace("{ min: 1, max: 3 }", "{ min: 2, max: 2 }");
    let spec = fleet(&fixed);

    let plan = h.plan(&spec).await;
    assert_eq!(plan.actions.len(), 3, "a cluster and two pools: {:?}", plan.actions);
    assert!(plan.actions.iter().all(|a| a.kind == ActionKind::Create));
    let report = h.apply_plan(&plan, &spec).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(cloud.objects().len(), 3);
    assert!(h.plan(&spec).await.actions.is_empty(), "a clean re-plan");

    // The autoscaler moves the autoscaled pool: delegated, so nothing to do. A console moves the
    // fixed one: owned, so drift, and an update puts it back.
    cloud.edit("lab/teapot.pool/system", "size", json!(5));
    assert!(h.plan(&spec).await.actions.is_empty(), "the autoscaled pool's size is the autoscaler's");
    cloud.edit("lab/teapot.pool/infra", "size", json!(7));
    let plan = h.plan(&spec).await;
    assert_eq!(plan.drift.len(), 1, "{:?}", plan.drift);
    assert_eq!(plan.drift[0].field, "size");
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.actions[0].kind, ActionKind::Update);
    h.apply_plan(&plan, &spec).await;
    assert!(h.plan(&spec).await.actions.is_empty());

    // A change the schema says cannot be made in place replaces the pool.
    let bigger = fleet(&|y: String| {
        fixed(y).replace("machine: { vcpu: 8, memoryGiB: 32 }", "machine: { vcpu: 16, memoryGiB: 64 }")
    });
    let plan = h.plan(&bigger).await;
    let infra = plan.actions.iter().find(|a| a.address.name == "infra").expect("infra changes");
    assert_eq!(infra.kind, ActionKind::Replace, "{infra:?}");
    h.apply_plan(&plan, &bigger).await;
    assert!(h.plan(&bigger).await.actions.is_empty());

    // A read missing what the schema says every read has is an error naming the path.
    cloud.malformed_reads.store(true, Ordering::SeqCst);
    let refused = match h.engine.plan(&bigger, Mode::Apply).await {
        Err(e) => format!("{e:?}"),
        Ok(plan) => format!("{:?}", plan.unknown),
    };
    assert!(refused.contains("teapot.cluster") && refused.contains("/endpoint"), "{refused}");
    cloud.malformed_reads.store(false, Ordering::SeqCst);

    // A record pointed at another object (state can be edited) does not get that object deleted:
    // its ownership tags name another address.
    let foreign = Observed {
        id: "teapot.pool-foreign".into(),
        status: "READY".into(),
        attrs: [("tags".to_string(), json!({ TAG_ADDRESS: "elsewhere/teapot.pool/x" }))].into_iter().collect(),
    };
    cloud.objects().insert(foreign.id.clone(), foreign.clone());
    let teapot = h.engine.registry.get(&ProviderRef::new(KIND, "lab-1")).unwrap();
    let infra: Address = "lab/teapot.pool/infra".parse().unwrap();
    let err = teapot.delete(&infra, &foreign.id).await.unwrap_err().to_string();
    assert!(err.contains("refusing to delete") && err.contains("elsewhere/teapot.pool/x"), "{err}");
    assert!(cloud.objects().contains_key(&foreign.id), "the foreign object stays");
    cloud.objects().remove(&foreign.id);

    h.destroy(&bigger).await;
    assert!(cloud.objects().is_empty(), "{:?}", cloud.objects().keys().collect::<Vec<_>>());
}
