//! Data from the spec is data. Lowering alone makes references between resources; a spec author
//! who writes a reference-shaped value (`{"$ref": "other/sim.cluster/main#certificateAuthority"}`)
//! into every field that takes free-form data (both services' chart values, the log output's
//! settings) gets exactly that value on the cluster: no other cluster's CA substituted, no
//! dependency between placements, no "(known after apply)", and a reconcile loop that does not
//! mistake such a field for one that matches anything.

mod common;

use common::{Harness, load};
use serde_json::{Value, json};
use tessera::state::StateStore;
use tessera_sim::Faults;

const FORGED: &str = "other/sim.cluster/main#certificateAuthority";

fn spec() -> String {
    common::one_pool_fleet(
        "data",
        &format!(
            r#"  coreServices:
    monitoring:
      values: {{ grafana: {{ enabled: false, adminUser: {{ "$ref": "{FORGED}" }} }}, forged: {{ "$ref": "{FORGED}" }} }}
    logging:
      values: {{ forged: {{ "$ref": "{FORGED}" }} }}
      output:
        loki: {{ url: "http://loki.logging.svc:3100", labels: {{ "$ref": "{FORGED}" }} }}
  placements:
    - {{ name: this, provider: sim, region: eu-west-1 }}
    - {{ name: other, provider: sim, region: us-east-2 }}
"#
        ),
    )
}

/// Every place in `v` that holds the forged reference, as JSON pointers.
fn forged_at(v: &Value, at: String, out: &mut Vec<String>) {
    if v == &json!({ "$ref": FORGED }) {
        out.push(at);
        return;
    }
    match v {
        Value::Object(m) => m.iter().for_each(|(k, i)| forged_at(i, format!("{at}/{k}"), out)),
        Value::Array(items) => items.iter().enumerate().for_each(|(n, i)| forged_at(i, format!("{at}/{n}"), out)),
        _ => {}
    }
}

fn forged_in(attrs: &tessera_provider_api::Attrs) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in attrs {
        forged_at(v, format!("/{k}"), &mut out);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn reference_shaped_data_from_the_spec_stays_data_from_plan_to_cluster() {
    let h = Harness::new(Faults::default());
    let fleet = load(&spec());

    // Compiled: the forged values are in this placement's releases and objects, and no resource
    // of `this` references or depends on anything of `other`.
    let graph = h.engine.compile(&fleet).expect("compile");
    let mut carriers = 0;
    for r in graph.in_order().into_iter().filter(|r| r.address.placement == "this") {
        let forged = forged_in(&r.attrs);
        carriers += usize::from(!forged.is_empty());
        for f in &forged {
            assert!(!r.ref_attrs.iter().any(|k| f.starts_with(&format!("/{k}"))), "{} {f} is a reference", r.address);
        }
        assert!(
            r.references().iter().all(|x| x.address.placement == "this"),
            "{} references another placement: {:?}",
            r.address,
            r.references()
        );
        assert!(r.deps.iter().all(|d| d.placement == "this"), "{} depends on {:?}", r.address, r.deps);
    }
    assert!(carriers >= 3, "both releases and the log output carry the forged data ({carriers})");

    // Planned: shown as the value written, never "(known after apply)".
    let plan = h.plan(&fleet).await;
    let human = tessera::plan::render_human(&plan);
    assert!(human.contains(FORGED), "the plan shows the data as written");
    for a in &plan.actions {
        for c in &a.changes {
            let mut forged = Vec::new();
            forged_at(c.new.as_ref().unwrap_or(&Value::Null), String::new(), &mut forged);
            assert!(forged.is_empty() || !c.known_after_apply, "{} {}", a.address, c.field);
        }
    }

    // Applied: the sim's clusters hold the data as written, and state records it so.
    let report = h.apply_plan(&plan, &fleet).await;
    assert!(report.is_success(), "{report:#?}");
    let records = h.store.resources().await.expect("state");
    let recorded: usize =
        records.iter().filter(|r| r.address.placement == "this").map(|r| forged_in(&r.attrs).len()).sum();
    assert!(recorded >= 4, "every forged value reached the cluster as written ({recorded})");
    let other_ca = records
        .iter()
        .find(|r| r.address.to_string() == "other/sim.cluster/main")
        .and_then(|r| r.attrs.get("certificateAuthority").cloned())
        .expect("the other cluster's CA");
    for r in &records {
        let text = serde_json::to_string(&r.attrs).unwrap_or_default();
        let ca = other_ca.as_str().unwrap_or_default();
        assert!(
            r.address.placement == "other" || ca.is_empty() || !text.contains(ca),
            "{} holds the other cluster's CA",
            r.address
        );
    }

    // Nothing left to do: the forged fields compare as the data they are.
    let again = h.plan(&fleet).await;
    assert!(!again.has_changes(), "{}", tessera::plan::render_human(&again));
}
