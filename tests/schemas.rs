//! Every resource lowering makes is what its type's schema says: each spec of `specs/`, and the
//! variations lowering branches on (an existing network, a private API, fixed and autoscaled
//! pools), compiled on this build's backends.

mod common;

use std::path::Path;

use tessera::backends;
use tessera::spec;

fn compile_all(fleet: &tessera::spec::Fleet) -> Vec<tessera_provider_api::ResourceSpec> {
    let h = common::Harness::new(tessera_sim::Faults::default());
    h.engine.compile(fleet).unwrap_or_else(|e| panic!("{e}")).into_resources()
}

fn check(fleet: &tessera::spec::Fleet) -> usize {
    let resources = compile_all(fleet);
    for r in &resources {
        let schema = backends::schema(r.rtype()).unwrap_or_else(|| panic!("{}: no schema", r.address));
        schema.check_spec(r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.schema_version, schema.version, "{}", r.address);
    }
    resources.len()
}

#[test]
fn every_spec_lowers_to_what_its_types_declare() {
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("specs")).unwrap() {
        let path = entry.unwrap().path();
        let fleet = spec::load(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert!(check(&fleet) > 0, "{}", path.display());
    }
}

/// The three clouds' real backends (not the sim's stand-ins), with `variant` under `spec:`.
fn real_clouds(variant: &str) -> tessera::spec::Fleet {
    let clouds = [("aws", "eks", "eu-west-1"), ("gcp", "gke", "europe-west4"), ("azure", "aks", "westeurope")];
    let mut yaml = common::fleet_yaml("core", &clouds);
    for (kind, scope) in [
        ("eks", ""),
        ("gke", ", scope: { project: acme-platform }"),
        ("aks", ", scope: { subscription: 00000000-0000-0000-0000-000000000000 }"),
    ] {
        yaml = yaml.replace(&format!("provider: sim, sim: {{ profile: {kind} }}"), &format!("provider: {kind}{scope}"));
    }
    common::load(&yaml.replacen("spec:\n", &format!("spec:\n{variant}"), 1))
}

#[test]
fn the_branches_of_lowering_lower_to_what_their_types_declare() {
    let variants = [
        "",
        "  apiAccess: { public: false }\n",
        "  apiAccess: { public: true, allowedCidrs: [203.0.113.0/24], private: true }\n",
    ];
    for variant in variants {
        assert!(check(&real_clouds(variant)) > 0, "{variant}");
    }
    // A fixed-size pool beside an autoscaled one.
    let yaml =
        common::fleet_yaml("core", &[("aws", "eks", "eu-west-1")]).replace("{ min: 1, max: 3 }", "{ min: 2, max: 2 }");
    assert!(check(&common::load(&yaml)) > 0);
}

#[test]
fn a_lowered_value_of_the_wrong_type_is_caught_by_the_check() {
    let mut checked = 0;
    for mut r in compile_all(&real_clouds("")) {
        let Some(schema) = backends::schema(r.rtype()) else { continue };
        let text = schema.fields().iter().find(|f| {
            f.source == tessera_provider_api::Source::Input
                && f.ty == tessera_provider_api::Ty::Text
                && !r.ref_attrs.contains(&f.name)
        });
        let Some(field) = text else { continue };
        r.attrs.insert(field.name.clone(), serde_json::json!(42));
        let err = schema.check_spec(&r).expect_err("a number where text belongs");
        assert!(err.contains(&format!("`/{}`", field.name)), "{err}");
        checked += 1;
    }
    assert!(checked > 10, "only {checked} resources had a text input");
}
