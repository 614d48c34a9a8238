//! Every validation error, each located at file:line:col.

use std::path::Path;

use tessera::spec::{self, SpecError};

const VALID: &str = r#"apiVersion: tessera.dev/v1alpha1
kind: Fleet
metadata: { name: core }
spec:
  kubernetes: { version: "1.31" }
  network: { cidr: 10.0.0.0/16 }
  nodePools:
    - name: system
      machine: { vcpu: 4, memoryGiB: 16, arch: amd64 }
      scale: { min: 3, max: 6 }
      labels: { tier: system }
      taints: [{ key: dedicated, value: system, effect: NoSchedule }]
  coreServices:
    monitoring: { nodeExporter: true }
    logging: { journald: { units: [kubelet] }, auditLogs: true }
  placements:
    - { name: aws, provider: sim, sim: { profile: eks }, region: eu-west-1 }
    - { name: local, provider: kind }
"#;

fn problems(src: &str) -> Vec<String> {
    match spec::load_str(Path::new("f.yaml"), src) {
        Ok(_) => Vec::new(),
        Err(e) => e.lines(),
    }
}

/// `line:col` (1-based) of the first `token` at or after byte `from` in `src`.
fn locate(src: &str, from: usize, token: &str) -> String {
    let offset = from + src[from..].find(token).unwrap_or_else(|| panic!("token `{token}` not in the edited spec"));
    let line = src[..offset].matches('\n').count() + 1;
    let col = src[..offset].rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

/// Replaces `from` (which must occur once) in the valid spec with `to`, and expects a problem
/// that mentions `needle`, located at the first `token` of the edit (or at a literal `line:col`).
#[track_caller]
fn expect(from: &str, to: &str, token: &str, needle: &str) {
    assert_eq!(VALID.matches(from).count(), 1, "`{from}` must occur once in the base spec");
    let start = VALID.find(from).unwrap_or_default();
    let src = VALID.replace(from, to);
    let at = if token.contains(':') && token.chars().all(|c| c.is_ascii_digit() || c == ':') {
        token.to_string()
    } else {
        locate(&src, start, token)
    };
    let got = problems(&src);
    let want = format!("f.yaml:{at}: ");
    assert!(
        got.iter().any(|p| p.starts_with(&want) && p.contains(needle)),
        "expected a problem at {at} mentioning `{needle}`, got {got:#?}"
    );
}

#[test]
fn the_base_spec_is_valid() {
    assert_eq!(problems(VALID), Vec::<String>::new());
}

#[test]
fn header_errors() {
    expect(
        "apiVersion: tessera.dev/v1alpha1",
        "apiVersion: tessera.dev/v2",
        "tessera.dev/v2",
        "unsupported apiVersion",
    );
    expect("kind: Fleet", "kind: Fleets", "Fleets", "kind `Fleets`");
    expect("metadata: { name: core }", "metadata: { name: Core_1 }", "Core_1", "not a DNS-1123 label");
}

#[test]
fn syntax_and_shape_errors() {
    expect("  network:", "  netwrk:", "netwrk", "unknown field `netwrk`");
    expect(
        "      scale: { min: 3, max: 6 }",
        "      scale: { min: 3, max: lots }",
        "max: lots",
        "expected an unquoted whole number",
    );
    expect("metadata: { name: core }\n", "metadata: { name: core }\n  bad: [\n", "bad", "");
    expect("  kubernetes: { version: \"1.31\" }\n", "", "15:3", "missing field `kubernetes`");
}

#[test]
fn version_errors() {
    expect("version: \"1.31\"", "version: \"one.31\"", "\"one", "invalid Kubernetes version");
    expect("version: \"1.31\"", "version: \"1.25\"", "\"1.25", "does not offer Kubernetes 1.25");
}

#[test]
fn network_errors() {
    expect("cidr: 10.0.0.0/16", "cidr: 10.0.0.0/30", "10.0", "invalid network CIDR");
    expect("cidr: 10.0.0.0/16", "cidr: 300.0.0.0/16", "300", "invalid network CIDR");
}

#[test]
fn existing_network_errors() {
    expect(
        "cidr: 10.0.0.0/16",
        "cidr: 10.0.0.0/16, existing: { id: vpc-1, subnets: [subnet-1] }",
        "10.0",
        "exclude each other",
    );
    expect(
        "network: { cidr: 10.0.0.0/16 }",
        "network: { existing: { id: vpc-1, subnets: [] } }",
        "[]",
        "at least one subnet",
    );
    expect(
        "network: { cidr: 10.0.0.0/16 }",
        "network: { existing: { id: vpc-1 } }",
        "id: vpc",
        "missing field `subnets`",
    );
    let ok = VALID.replace(
        "network: { cidr: 10.0.0.0/16 }",
        "network: { existing: { id: vpc-1, subnets: [subnet-1, subnet-2] } }",
    );
    assert_eq!(problems(&ok), Vec::<String>::new());
}

#[test]
fn pool_errors() {
    expect("    - name: system\n", "    - name: System\n", "System", "node pool name `System`");
    expect("min: 3, max: 6", "min: 7, max: 6", "10:14", "scale.min (7) is greater than scale.max (6)");
    expect("min: 3, max: 6", "min: 0, max: 0", "10:14", "scale.max must be at least 1");
    expect("arch: amd64", "arch: sparc", "sparc", "unknown arch `sparc`");
    expect("vcpu: 4, memoryGiB: 16", "vcpu: 0, memoryGiB: 16", "0", "`vcpu` must be at least 1");
    expect("vcpu: 4, memoryGiB: 16", "vcpu: 5, memoryGiB: 16", "5", "no amd64 machine with 5 vCPU and 16 GiB");
    expect("labels: { tier: system }", "labels: { \"bad key\": system }", "{", "invalid label key");
    expect("labels: { tier: system }", "labels: { tier: \"-x-\" }", "{", "invalid value");
    expect("effect: NoSchedule", "effect: NoSchedul", "NoSchedul", "invalid taint effect");
    expect("key: dedicated, value: system", "key: \"bad key\", value: system", "\"bad key", "invalid taint key");
}

#[test]
fn duplicate_names() {
    expect(
        "  coreServices:",
        "    - name: system\n      machine: { vcpu: 4, memoryGiB: 16 }\n      scale: { min: 1, max: 1 }\n  coreServices:",
        "system",
        "duplicate node pool name `system`",
    );
    expect(
        "- { name: local, provider: kind }",
        "- { name: aws, provider: kind }",
        "aws",
        "duplicate placement name `aws`",
    );
}

#[test]
fn placement_errors() {
    expect("provider: kind", "provider: kindd", "kindd", "unknown provider `kindd`");
    expect("region: eu-west-1", "region: eu-west1", "eu-west1", "unknown eks region `eu-west1`");
    expect("region: eu-west-1", "zones: [eu-west-1a]", "17:15", "needs a region");
    expect("{ profile: eks }", "{ profile: ibm }", "ibm", "unknown sim profile `ibm`");
    expect(
        "- { name: local, provider: kind }",
        "- { name: local, provider: kind, region: x }",
        "x }",
        "kind has no regions",
    );
    expect(
        "region: eu-west-1 }",
        "region: eu-west-1, zones: [eu-west-1z] }",
        "[eu-west-1z]",
        "zone `eu-west-1z` is not in region `eu-west-1`",
    );
    expect(
        "- { name: local, provider: kind }",
        "- { name: local, provider: kind, sim: { profile: eks } }",
        "eks",
        "apply only to `provider: sim`",
    );
    expect(
        "metadata: { name: core }",
        "metadata: { name: a-very-long-fleet-name-that-goes-on-and-on-and-on-and-on-and-on }",
        "17:15",
        "longer than 63 characters",
    );
}

#[test]
fn override_errors() {
    expect(
        "- { name: local, provider: kind }",
        "- { name: local, provider: kind, overrides: { nodePools: [{ name: sytem, scale: { min: 1, max: 1 } }] } }",
        "sytem",
        "override names pool `sytem`",
    );
    expect(
        "- { name: local, provider: kind }",
        "- { name: local, provider: kind, overrides: { nodePools: [{ name: system, scale: { min: 4, max: 1 } }] } }",
        "{ min: 4",
        "scale.min (4) is greater than scale.max (1)",
    );
    expect(
        "- { name: local, provider: kind }",
        "- { name: local, provider: kind, overrides: { nodePools: [{ name: system, labels: { a: b } }] } }",
        "labels",
        "unknown field `labels`",
    );
}

#[test]
fn core_service_errors() {
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { nodeExporter: true, tolerations: [{ key: other, operator: Exists }] }",
        "12:23",
        "taint `dedicated` of pool `system` is not tolerated by coreServices.monitoring",
    );
    expect(
        "logging: { journald: { units: [kubelet] }, auditLogs: true }",
        "logging: { journald: { units: [kubelet] }, tolerations: [{ key: dedicated, value: gpu }] }",
        "12:23",
        "not tolerated by coreServices.logging",
    );
    expect(
        "units: [kubelet]",
        "units: [kubelet], path: /var/log/journals",
        "/var/log/journals",
        "unsupported journal path",
    );
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: smartctl-exporter:latest, port: 9633 }] }",
        "smartctl",
        "is not pinned",
    );
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: smart, image: x:1, hostMounts: [dev], port: 9633 }] }",
        "dev",
        "not an absolute path",
    );
}

#[test]
fn application_workloads_are_refused_with_the_reason() {
    let deployment = format!("{VALID}---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{ name: web }}\n");
    let got = problems(&deployment);
    assert!(got.iter().any(|p| p.starts_with("f.yaml:21:7: ") && p.contains("application workload")), "{got:#?}");

    expect(
        "  placements:",
        "  workloads: []\n  placements:",
        "workloads",
        "would put applications into an infrastructure spec",
    );

    let two = format!("{VALID}---\n{VALID}");
    let got = problems(&two);
    assert!(got.iter().any(|p| p.contains("exactly one Fleet")), "{got:#?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let src = VALID.replace("min: 3, max: 6", "min: 7, max: 6").replace("region: eu-west-1", "region: mars-1");
    assert_eq!(problems(&src).len(), 2, "{:#?}", problems(&src));
}

#[test]
fn hints_suggest_the_nearest_valid_choice() {
    let src = VALID.replace("region: eu-west-1", "region: eu-wset-1");
    let Err(SpecError::Invalid { problems, .. }) = spec::load_str(Path::new("f.yaml"), &src) else {
        panic!("expected invalid")
    };
    assert!(problems[0].hint.as_deref().is_some_and(|h| h.contains("eu-west-1")), "{:?}", problems[0].hint);

    let src = VALID.replace("vcpu: 4, memoryGiB: 16", "vcpu: 4, memoryGiB: 15");
    let Err(SpecError::Invalid { problems, .. }) = spec::load_str(Path::new("f.yaml"), &src) else {
        panic!("expected invalid")
    };
    assert!(problems[0].hint.as_deref().is_some_and(|h| h.contains("m6i.xlarge")), "{:?}", problems[0].hint);
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let err = spec::load(Path::new("no/such/spec.yaml")).unwrap_err();
    assert!(matches!(err, SpecError::Io { .. }));
    assert!(err.to_string().contains("no/such/spec.yaml"));
}

/// `VALID` with one more placement, and some text replaced.
fn with_placement(placement: &str, edits: &[(&str, &str)]) -> String {
    let mut src = VALID.replace(
        "    - { name: local, provider: kind }\n",
        &format!("    - {{ name: local, provider: kind }}\n    - {placement}\n"),
    );
    for (from, to) in edits {
        assert_eq!(src.matches(from).count(), 1, "`{from}` must occur once");
        src = src.replace(from, to);
    }
    src
}

#[track_caller]
fn expect_at(src: &str, token: &str, needle: &str) {
    let at = locate(src, 0, token);
    let got = problems(src);
    let want = format!("f.yaml:{at}: ");
    assert!(
        got.iter().any(|p| p.starts_with(&want) && p.contains(needle)),
        "expected a problem at {at} mentioning `{needle}`, got {got:#?}"
    );
}

const AKS: &str =
    "{ name: az, provider: aks, region: westeurope, scope: { subscription: 6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab } }";
const GKE: &str = "{ name: gcp, provider: gke, region: europe-west4, scope: { project: acme-platform } }";

#[test]
fn cloud_placements_validate_with_their_scopes() {
    for p in [AKS, GKE, "{ name: eks, provider: eks, region: eu-west-1, scope: { account: \"123456789012\" } }"] {
        assert!(problems(&with_placement(p, &[])).is_empty(), "{p}: {:#?}", problems(&with_placement(p, &[])));
    }
    let fleet = spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/multi-cloud.yaml")).unwrap();
    let gke = fleet.placement("gcp-eu").unwrap();
    assert_eq!(gke.provider.scope["project"], "acme-platform");
    assert_eq!(gke.provider.to_string(), "gke{project=acme-platform}/europe-west4", "scope is shown in plans");
}

#[test]
fn scope_errors() {
    let missing = with_placement("{ name: az, provider: aks, region: westeurope }", &[]);
    expect_at(&missing, "az, provider", "needs `scope.subscription` for aks");
    let missing = with_placement("{ name: gcp, provider: gke, region: europe-west4 }", &[]);
    expect_at(&missing, "gcp, provider", "needs `scope.project` for gke");
    let bad = with_placement(&AKS.replace("6f1c2a3b-0d4e-4f5a-8b9c-0123456789ab", "my-sub"), &[]);
    expect_at(&bad, "my-sub", "invalid subscription `my-sub`: a subscription id is a GUID");
    let unknown = with_placement(&GKE.replace("project: acme-platform", "project: acme-platform, projekt: x"), &[]);
    expect_at(&unknown, "x }", "unknown scope key `projekt` for gke");
    let none = with_placement("{ name: k, provider: kind, scope: { project: acme-platform } }", &[]);
    expect_at(&none, "acme-platform", "unknown scope key `project` for kind");
    let account = with_placement("{ name: e, provider: eks, region: eu-west-1, scope: { account: \"12\" } }", &[]);
    expect_at(&account, "\"12\"", "an AWS account id is 12 digits");
}

#[test]
fn each_clouds_limits_are_refused_at_their_field() {
    // AKS: any pool name will do (AKS's names are derived from it), and a spec whose pools cannot
    // be AKS's system pool is valid, with a warning at the first pool saying what Tessera adds.
    let src = with_placement(AKS, &[("    - name: system\n", "    - name: system-pool\n")]);
    let fleet = spec::load_str(Path::new("f.yaml"), &src).expect("valid");
    let warned: Vec<&str> = fleet.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        warned.iter().any(|w| w.contains("no pool can be AKS's system pool")
            && w.contains("`system-pool`: it has a NoSchedule or NoExecute taint")),
        "{warned:?}"
    );

    // GKE: cluster names (`{fleet}-{placement}`) are at most 40 characters.
    let long = "a-placement-name-that-is-long";
    let src = with_placement(
        &GKE.replace("name: gcp", &format!("name: {long}")),
        &[("metadata: { name: core }", "metadata: { name: core-services }")],
    );
    expect_at(
        &src,
        long,
        "GKE cluster name `core-services-a-placement-name-that-is-long` is 43 characters; GKE allows 40",
    );

    // EKS: a VPC is /16 to /28, and the zones' subnets must fit.
    let src = with_placement(
        "{ name: e, provider: eks, region: eu-west-1 }",
        &[("network: { cidr: 10.0.0.0/16 }", "network: { cidr: 10.0.0.0/8 }")],
    );
    expect_at(&src, "10.0.0.0/8", "EKS cannot use the network 10.0.0.0/8");
    // The same template on the sim is fine: the limit is EKS's own.
    let sim_only = VALID.replace("network: { cidr: 10.0.0.0/16 }", "network: { cidr: 10.0.0.0/8 }");
    assert!(problems(&sim_only).is_empty(), "{:#?}", problems(&sim_only));
}

#[test]
fn core_services_are_on_by_default_and_turning_one_off_is_reported() {
    let absent = VALID.replace(
        "  coreServices:\n    monitoring: { nodeExporter: true }\n    logging: { journald: { units: [kubelet] }, auditLogs: true }\n",
        "",
    );
    assert!(!absent.contains("coreServices"));
    let fleet = spec::load_str(Path::new("f.yaml"), &absent).unwrap();
    let cs = &fleet.placements[0].cluster.core_services;
    let m = cs.monitoring.as_ref().expect("monitoring is on by default");
    assert!(m.node_exporter);
    assert_eq!(m.chart.version, "88.5.3");
    let l = cs.logging.as_ref().expect("logging is on by default");
    assert!(cs.audit_logs, "control-plane audit logs follow the same default");
    let _ = l;
    assert_eq!(l.output.plugin, "nullout");
    assert!(fleet.warnings.iter().any(|w| w.message.contains("no output")), "{:?}", fleet.warnings);

    let off = VALID.replace("monitoring: { nodeExporter: true }", "monitoring: { enabled: false }");
    let fleet = spec::load_str(Path::new("f.yaml"), &off).unwrap();
    assert!(fleet.placements[0].cluster.core_services.monitoring.is_none());
    let w = fleet.warnings.iter().find(|w| w.message.contains("coreServices.monitoring is turned off")).unwrap();
    assert_eq!(format!("{}:{}", w.line, w.column), locate(&off, 0, "false"));
}

#[test]
fn core_service_settings_are_checked_where_they_are_written() {
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { values: { prometheus-node-exporter: { tolerations: [] } } }",
        "tolerations: []",
        "`prometheus-node-exporter.tolerations` is computed by Tessera",
    );
    expect(
        "auditLogs: true }",
        "auditLogs: true, output: { lokii: { url: http://loki:3100 } } }",
        "{ lokii",
        "unsupported log output `lokii`",
    );
    expect("units: [kubelet]", "units: [kubelet, ../../etc/passwd]", "../../etc/passwd", "is not a systemd unit name");
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: a, image: x:1, port: 1 }, { name: a, image: y:1, port: 2 }] }",
        "a, image: y",
        "two exporters are named `a`",
    );
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { exporters: [{ name: a, image: x:1, port: 70000 }] }",
        "70000",
        "is not a TCP port",
    );
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { chart: { version: \"^88\" } }",
        "\"^88\"",
        "is not one exact version",
    );
    expect(
        "monitoring: { nodeExporter: true }",
        "monitoring: { remoteWrite: prom:9090 }",
        "prom:9090",
        "is not an http(s) URL",
    );
}

#[test]
fn yaml_scalars_are_typed_strictly() {
    for (from, to, token) in [
        ("arch: amd64 }", "arch: amd64, spot: yes }", "yes"),
        ("arch: amd64 }", "arch: amd64, spot: \"yes\" }", "\"yes\""),
        ("vcpu: 4,", "vcpu: \"4\",", "\"4\""),
        ("vcpu: 4,", "vcpu: 1_0,", "1_0"),
        ("name: core", "name: !Ref core", "!Ref"),
    ] {
        let src = VALID.replacen(from, to, 1);
        assert_ne!(src, VALID, "{from}");
        let got = problems(&src);
        assert!(!got.is_empty(), "`{to}` must be refused");
        let line = locate(&src, 0, token).split(':').next().unwrap().to_string();
        assert!(got.iter().any(|p| p.starts_with(&format!("f.yaml:{line}:"))), "`{to}`: {got:?}");
    }
}

#[test]
fn versions_cidrs_and_zones_are_strict() {
    expect("version: \"1.31\"", "version: \"1.31.99\"", "\"1.31.99\"", "invalid Kubernetes version");
    expect("cidr: 10.0.0.0/16", "cidr: 10.40.1.7/16", "10.40.1.7/16", "has host bits set");
    expect(
        "region: eu-west-1 }",
        "region: eu-west-1, zones: [eu-west-1a, eu-west-1a] }",
        "[eu-west-1a",
        "zone `eu-west-1a` is listed twice",
    );
    expect(
        "network: { cidr: 10.0.0.0/16 }",
        "network: { existing: { id: vpc-1, subnets: [subnet-a, subnet-b, subnet-a] } }",
        "[subnet-a",
        "subnet `subnet-a` is listed twice",
    );
}

#[test]
fn huge_values_and_terminal_escapes_are_never_echoed_raw() {
    let huge = VALID.replace("region: eu-west-1 }", &format!("region: \"{}\" }}", "x".repeat(5_000_000)));
    let got = problems(&huge);
    assert!(!got.is_empty());
    assert!(got.iter().all(|p| p.len() < 1_000), "each problem is a line, not the value: {}", got[0].len());
    let rendered = format!("{:?}", miette::Report::new(spec::load_str(Path::new("f.yaml"), &huge).unwrap_err()));
    assert!(rendered.len() < 20_000, "the rendered error is a screenful: {} bytes", rendered.len());

    let escape = VALID.replace("region: eu-west-1 }", "region: \"\\e[2J\\e]0;pwned\\a\" }");
    let got = problems(&escape);
    assert!(!got.is_empty());
    assert!(got.iter().all(|p| !p.contains('\u{1b}') && !p.contains('\u{7}')), "{got:?}");
    let rendered = format!("{:?}", miette::Report::new(spec::load_str(Path::new("f.yaml"), &escape).unwrap_err()));
    assert!(!rendered.contains('\u{1b}') || !rendered.contains("]0;pwned\u{7}"), "no raw OSC sequence: {rendered:?}");
}

/// Pool sizes against each cloud's documented node limits, refused at the `scale` that breaks them.
#[test]
fn pools_beyond_a_clouds_node_limits_are_refused_at_their_scale() {
    // The sim imitates EKS here: 450 nodes per managed node group. Three million was accepted
    // before, and the sim's apply ran out of memory.
    expect("scale: { min: 3, max: 6 }", "scale: { min: 3, max: 3000000 }", "{ min", "EKS allows 450 per pool");
    expect("scale: { min: 3, max: 6 }", "scale: { min: 3, max: 451 }", "{ min", "scales to 451 nodes");
    assert!(problems(&VALID.replace("max: 6 }", "max: 450 }")).is_empty(), "450 is allowed");

    // AKS: 1,000 per pool; GKE: 1,000 per pool and zone (3 zones: 3,000 in all is fine).
    let aks = VALID.replace("sim: { profile: eks }, region: eu-west-1", "sim: { profile: aks }, region: westeurope");
    assert!(problems(&aks.replace("max: 6 }", "max: 1000 }")).is_empty());
    let got = problems(&aks.replace("max: 6 }", "max: 1001 }"));
    assert!(got.iter().any(|p| p.contains("AKS allows 1000 per pool")), "{got:#?}");
    let gke = VALID.replace("sim: { profile: eks }, region: eu-west-1", "sim: { profile: gke }, region: europe-west4");
    assert!(problems(&gke.replace("max: 6 }", "max: 3000 }")).is_empty(), "1,000 in each of 3 zones");
    let got = problems(&gke.replace("max: 6 }", "max: 3003 }"));
    assert!(got.iter().any(|p| p.contains("GKE allows 1000 per pool and zone")), "{got:#?}");
}

#[test]
fn a_cluster_beyond_its_clouds_node_limit_is_refused_at_the_pool_that_crosses_it() {
    let pool = |name: &str| {
        format!(
            "    - name: {name}\n      machine: {{ vcpu: 4, memoryGiB: 16, arch: amd64 }}\n      scale: {{ min: 1, max: 1000 }}\n"
        )
    };
    let pools: String = ["a", "b", "c", "d", "e", "f"].iter().map(|n| pool(n)).collect();
    let src = VALID
        .replace("sim: { profile: eks }, region: eu-west-1", "sim: { profile: aks }, region: westeurope")
        .replace("  coreServices:", &format!("{pools}  coreServices:"));
    let got = problems(&src);
    // 6 + 5 × 1,000 is over AKS's 5,000 with the pool `e`; `f` is not reported again.
    let at = locate(&src, src.find("name: e").unwrap_or_default(), "{ min");
    assert!(got.iter().any(|p| p.starts_with(&format!("f.yaml:{at}: ")) && p.contains("5000 per cluster")), "{got:#?}");
    assert_eq!(got.iter().filter(|p| p.contains("per cluster")).count(), 1, "{got:#?}");
}
