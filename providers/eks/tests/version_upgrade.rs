//! Version upgrades: moto does not implement UpdateClusterVersion, UpdateNodegroupVersion or
//! DescribeUpdate (it answers them with an HTML 404), so this fixture follows the documented EKS
//! REST API for exactly those calls, plus the describes that the backend reads back:
//!
//! - `POST /clusters/{name}/updates` `{version, clientRequestToken}` → `{update}` (UpdateClusterVersion)
//! - `POST /clusters/{name}/node-groups/{ng}/update-version` `{version, ...}` → `{update}` (UpdateNodegroupVersion)
//! - `GET /clusters/{name}/updates/{id}[?nodegroupName=ng]` → `{update}` (DescribeUpdate)
//! - `GET /clusters/{name}`, `GET /clusters/{name}/node-groups/{ng}` (DescribeCluster/Nodegroup)
//!
//! An update is `InProgress` for the first polls, then `Successful` (or `Failed` with `errors`).
//! Requests with fields the API does not define are answered with a 400, failing the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use tessera_eks::{EksProvider, EksSettings, PollPolicy};
use tessera_provider_api::{Address, ProviderError, ProviderExt, ProviderRef, ResourceSpec};

#[derive(Default)]
struct World {
    cluster_version: String,
    nodegroup_version: String,
    /// update id → (polls so far, target, nodegroup?)
    updates: HashMap<String, (u32, String, Option<String>)>,
    log: Vec<String>,
    fail_with: Option<String>,
}

struct Fixture {
    url: String,
    world: Arc<Mutex<World>>,
}

const POLLS_BEFORE_DONE: u32 = 2;

fn update_body(id: &str, status: &str, version: &str, errors: Value) -> Value {
    json!({ "update": {
        "id": id, "status": status, "type": "VersionUpdate",
        "params": [{ "type": "Version", "value": version }, { "type": "PlatformVersion", "value": "eks.1" }],
        "createdAt": 1_700_000_000.0, "errors": errors
    }})
}

fn cluster_body(w: &World) -> Value {
    json!({ "cluster": {
        "name": "c", "arn": "arn:aws:eks:eu-west-1:123456789012:cluster/c", "version": w.cluster_version,
        "roleArn": "arn:aws:iam::123456789012:role/c-cluster",
        "status": "ACTIVE", "endpoint": "https://c.eks.local", "certificateAuthority": { "data": "Q0E=" },
        "resourcesVpcConfig": { "subnetIds": ["subnet-1"], "endpointPublicAccess": true, "endpointPrivateAccess": true },
        "logging": { "clusterLogging": [{ "types": ["api", "audit", "authenticator"], "enabled": true }] },
        "tags": { "tessera.dev/fleet": "f" }
    }})
}

fn nodegroup_body(w: &World) -> Value {
    json!({ "nodegroup": {
        "nodegroupName": "ng", "clusterName": "c", "version": w.nodegroup_version, "status": "ACTIVE",
        "nodegroupArn": "arn:aws:eks:eu-west-1:123456789012:nodegroup/c/ng/1", "instanceTypes": ["m6i.xlarge"],
        "scalingConfig": { "minSize": 1, "maxSize": 3, "desiredSize": 1 }, "capacityType": "ON_DEMAND",
        "amiType": "AL2023_x86_64_STANDARD", "labels": {}, "taints": [], "subnets": ["subnet-1"], "tags": {},
        "nodeRole": "arn:aws:iam::123456789012:role/c-node"
    }})
}

fn check_fields(body: &Value, allowed: &[&str]) -> Result<(), String> {
    let obj = body.as_object().ok_or("body is not an object")?;
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown field `{k}`")),
        None if !obj.get("version").is_some_and(Value::is_string) => Err("`version` is required".into()),
        None => Ok(()),
    }
}

fn handle(w: &mut World, method: &str, url: &str, body: &str) -> (u16, Value) {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    w.log.push(format!("{method} {path}"));
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    match (method, parts.as_slice()) {
        ("POST", ["clusters", "c", "updates"]) => {
            if let Err(e) = check_fields(&body, &["version", "clientRequestToken"]) {
                return (400, json!({ "message": e }));
            }
            let id = format!("u-{}", w.updates.len() + 1);
            let v = body["version"].as_str().unwrap_or_default().to_string();
            w.updates.insert(id.clone(), (0, v.clone(), None));
            (200, update_body(&id, "InProgress", &v, json!([])))
        }
        ("POST", ["clusters", "c", "node-groups", "ng", "update-version"]) => {
            if let Err(e) =
                check_fields(&body, &["version", "releaseVersion", "launchTemplate", "force", "clientRequestToken"])
            {
                return (400, json!({ "message": e }));
            }
            let id = format!("u-{}", w.updates.len() + 1);
            let v = body["version"].as_str().unwrap_or_default().to_string();
            w.updates.insert(id.clone(), (0, v.clone(), Some("ng".into())));
            (200, update_body(&id, "InProgress", &v, json!([])))
        }
        ("GET", ["clusters", "c", "updates", id]) => {
            let fail = w.fail_with.clone();
            let Some((polls, target, ng)) = w.updates.get_mut(*id) else {
                return (404, json!({ "message": format!("update {id} not found") }));
            };
            if ng.is_some() != query.contains("nodegroupName=ng") {
                return (400, json!({ "message": "nodegroupName does not match the update" }));
            }
            *polls += 1;
            let (target, ng, polls) = (target.clone(), ng.clone(), *polls);
            if polls <= POLLS_BEFORE_DONE {
                return (200, update_body(id, "InProgress", &target, json!([])));
            }
            if let Some(msg) = fail {
                let errors = json!([{ "errorCode": "NodeCreationFailure", "errorMessage": msg, "resourceIds": ["c"] }]);
                return (200, update_body(id, "Failed", &target, errors));
            }
            match ng {
                Some(_) => w.nodegroup_version = target.clone(),
                None => w.cluster_version = target.clone(),
            }
            (200, update_body(id, "Successful", &target, json!([])))
        }
        ("GET", ["clusters", "c"]) => (200, cluster_body(w)),
        ("GET", ["clusters", "c", "node-groups", "ng"]) => (200, nodegroup_body(w)),
        _ => (404, json!({ "message": format!("no route for {method} {path}") })),
    }
}

impl Fixture {
    fn start(fail_with: Option<&str>) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
        let world = Arc::new(Mutex::new(World {
            cluster_version: "1.31".into(),
            nodegroup_version: "1.31".into(),
            fail_with: fail_with.map(str::to_string),
            ..Default::default()
        }));
        let w = world.clone();
        thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let (status, reply) = handle(&mut w.lock().unwrap(), req.method().as_str(), req.url(), &body);
                let mut resp = tiny_http::Response::from_string(reply.to_string()).with_status_code(status);
                resp.add_header(tiny_http::Header::from_bytes("content-type", "application/json").unwrap());
                if status == 404 {
                    resp.add_header(
                        tiny_http::Header::from_bytes("x-amzn-errortype", "ResourceNotFoundException").unwrap(),
                    );
                } else if status == 400 {
                    resp.add_header(
                        tiny_http::Header::from_bytes("x-amzn-errortype", "InvalidParameterException").unwrap(),
                    );
                }
                let _ = req.respond(resp);
            }
        });
        Self { url, world }
    }

    fn provider(&self) -> EksProvider {
        EksProvider::new(
            "eu-west-1",
            EksSettings {
                endpoint_url: Some(self.url.clone()),
                static_credentials: Some(("k".into(), "s".into())),
                profile: None,
                poll: PollPolicy {
                    min_delay: Duration::from_millis(5),
                    max_delay: Duration::from_millis(20),
                    total: Duration::from_secs(20),
                },
            },
        )
    }

    fn log(&self) -> Vec<String> {
        self.world.lock().unwrap().log.clone()
    }
}

fn spec(addr: &str, name: &str) -> ResourceSpec {
    let p = ProviderRef {
        kind: "eks".into(),
        region: "eu-west-1".into(),
        profile: None,
        connection: None,
        scope: Default::default(),
    };
    let address: Address = addr.parse().unwrap();
    ResourceSpec::new(address, p).attr("name", name).attr("version", "1.32")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_is_upgraded_then_the_node_group() {
    let f = Fixture::start(None);
    let eks = f.provider();
    let cluster = eks.update(&spec("p/eks.cluster/main", "c"), &"c".to_string(), &["version".into()]).await.unwrap();
    assert_eq!(cluster.attrs["version"], "1.32");
    let log = f.log();
    assert_eq!(log[0], "POST /clusters/c/updates");
    let polls = log.iter().filter(|l| l.as_str() == "GET /clusters/c/updates/u-1").count();
    assert_eq!(polls, POLLS_BEFORE_DONE as usize + 1, "polled until Successful: {log:?}");

    let ng = eks.update(&spec("p/eks.nodegroup/ng", "ng"), &"c/ng".to_string(), &["version".into()]).await.unwrap();
    assert_eq!(ng.attrs["version"], "1.32");
    let log = f.log();
    assert!(log.contains(&"POST /clusters/c/node-groups/ng/update-version".to_string()), "{log:?}");
    assert!(log.iter().filter(|l| l.as_str() == "GET /clusters/c/updates/u-2").count() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upgrade_is_fatal_with_the_clouds_message() {
    let f = Fixture::start(Some("Instances failed to join the kubernetes cluster"));
    let err =
        f.provider().update(&spec("p/eks.cluster/main", "c"), &"c".to_string(), &["version".into()]).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Fatal(m) if m.contains("Instances failed to join")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_is_not_found() {
    let f = Fixture::start(None);
    let read = f.provider().read("eks.cluster", &"missing".to_string()).await.unwrap();
    assert!(read.is_none(), "a 404 ResourceNotFoundException reads as gone");
}
