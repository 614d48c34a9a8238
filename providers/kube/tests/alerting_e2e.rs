//! Tessera's alerting end to end, with the real programs from Debian's packages on 127.0.0.1
//! (TESTBED.md, "Prometheus and Alertmanager"): Prometheus 2.42 loads the rules Tessera renders and
//! scrapes two real node-exporters (node-a, node-b), a stand-in for kube-state-metrics and for
//! prometheus-operator's target (served by the test), and a custom exporter target on a closed
//! port; it sends to a real Alertmanager 0.25 loaded with the file [`alertmanager_file`] builds
//! from Tessera's `AlertmanagerConfig`; Alertmanager posts to a webhook receiver in the test that
//! records each notification and when it arrived.
//!
//! Each test starts its own stack on ports the kernel picks (bind to port 0), so the tests can run
//! in parallel. A missing program fails the test and names the Debian package to install.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Scratch, tool};
use tessera_kube::alert_routing::{alertmanager_config, alertmanager_file};
use tessera_kube::alert_rules::{self, EXPORTER_DOWN, HEARTBEAT, NODE_EXPORTER_JOB, NODE_NOT_SCRAPED, Site};
use tessera_kube::alerting_status::{critical_of, critical_path, heartbeat_path, judge};
use tessera_kube::charts::MONITORING_RELEASE;
use tessera_kube::contract::parse_object_id;
use tessera_kube::{coverage, values};
use tessera_provider_api::{Alerting, ClusterTemplate, Heartbeat, Receiver, ReceiverKind, Route, UrlSource};

/// Prometheus' scrape and evaluation interval.
const TICK: Duration = Duration::from_secs(1);
/// `coverageAfter`: the `for:` of every coverage alert.
const COVERAGE_AFTER: Duration = Duration::from_secs(10);
/// The heartbeat's interval.
const BEAT: Duration = Duration::from_secs(3);
/// group_wait of the critical and warning routes. Long enough that two nodes whose alerts start
/// firing one evaluation apart land in one notification.
const GROUP_WAIT: Duration = Duration::from_secs(3);
const GROUP_INTERVAL: Duration = Duration::from_secs(2);

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

// ---------------------------------------------------------------------------------------------
// Programs, ports, scratch directories
// ---------------------------------------------------------------------------------------------

/// A child process killed (and reaped) when dropped.
struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    fn start(name: &str, program: PathBuf, args: &[String], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        Self { name: name.into(), child: Some(child), log }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        format!("--- {} log ---\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// Polls `f` every 100 ms until it gives a value or `within` has passed.
fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {within:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// A little HTTP, on std alone
// ---------------------------------------------------------------------------------------------

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

type Handler = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

/// An HTTP/1.1 server on 127.0.0.1 (one request per connection), until the test process ends.
fn serve(handler: Handler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let h = handler.clone();
            std::thread::spawn(move || {
                let _ = answer(stream, &*h);
            });
        }
    });
    addr
}

fn answer(stream: TcpStream, handler: &(dyn Fn(&Request) -> (u16, String) + Send + Sync)) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let (status, text) = handler(&Request { method, path, body });
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    out.flush()
}

/// One HTTP/1.0 request (so that the answer is never chunked): (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, body.to_string()))
}

fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let (status, body) = http(addr, "GET", path, None).ok()?;
    (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
}

// ---------------------------------------------------------------------------------------------
// The cluster, the routing, the stack
// ---------------------------------------------------------------------------------------------

/// One node in each pool of `support::cluster`.
const NODES: [(&str, &str); 2] = [("node-a", "system"), ("node-b", "gpu")];

/// Three webhook receivers (critical, warning, heartbeat) at the test's webhook server.
fn alerting(hook: SocketAddr) -> Alerting {
    let receiver = |name: &str| Receiver {
        name: name.into(),
        kind: ReceiverKind::Webhook { url: UrlSource::Plain(format!("http://{hook}/{name}")) },
    };
    let route = |name: &str| Route {
        receiver: name.into(),
        severity: Some(name.into()),
        labels: Default::default(),
        group_by: vec!["alertname".into(), "placement".into()],
        group_wait: secs(GROUP_WAIT),
        group_interval: secs(GROUP_INTERVAL),
        repeat_interval: "1h".into(),
    };
    Alerting {
        receivers: vec![receiver("critical"), receiver("warning"), receiver("heartbeat")],
        routes: vec![route("critical"), route("warning")],
        heartbeat: Some(Heartbeat { receiver: "heartbeat".into(), interval: secs(BEAT) }),
        coverage_after: secs(COVERAGE_AFTER),
    }
}

/// What kube-state-metrics exports for node-a and node-b: both nodes, their pools, and a ready
/// pod of every DaemonSet coverage expects on each, so that only what a test breaks fires.
fn kube_state_metrics(cluster: &ClusterTemplate) -> String {
    let mut out = String::new();
    for (node, pool) in NODES {
        out += &format!("kube_node_info{{node=\"{node}\",kernel_version=\"6.1.0\"}} 1\n");
        out += &format!("kube_node_labels{{node=\"{node}\",label_tessera_dev_pool=\"{pool}\"}} 1\n");
        for e in coverage::expected(cluster) {
            let id = parse_object_id(&e.id).expect("DaemonSet id");
            let (ns, name) = (id.namespace.unwrap_or_default(), id.name);
            let pod = format!("{name}-{node}");
            out += &format!(
                "kube_pod_info{{namespace=\"{ns}\",pod=\"{pod}\",node=\"{node}\",created_by_kind=\"DaemonSet\",created_by_name=\"{name}\"}} 1\n"
            );
            for (condition, v) in [("true", 1), ("false", 0), ("unknown", 0)] {
                out += &format!(
                    "kube_pod_status_ready{{namespace=\"{ns}\",pod=\"{pod}\",condition=\"{condition}\"}} {v}\n"
                );
            }
            out += &format!(
                "kube_pod_container_status_restarts_total{{namespace=\"{ns}\",pod=\"{pod}\",container=\"main\"}} 0\n"
            );
        }
    }
    out
}

/// A notification the webhook receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    receiver: String,
    at: Instant,
    body: Value,
}

impl Delivery {
    fn alertnames(&self) -> Vec<String> {
        self.alerts().iter().map(|a| a["labels"]["alertname"].as_str().unwrap_or_default().to_string()).collect()
    }

    fn alerts(&self) -> Vec<Value> {
        self.body["alerts"].as_array().cloned().unwrap_or_default()
    }

    fn firing(&self, alertname: &str) -> bool {
        self.body["status"] == "firing"
            && self.alerts().iter().any(|a| a["labels"]["alertname"] == alertname && a["status"] == "firing")
    }
}

#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Delivery>>>);

impl Inbox {
    fn all(&self) -> Vec<Delivery> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn to(&self, receiver: &str) -> Vec<Delivery> {
        self.all().into_iter().filter(|d| d.receiver == receiver).collect()
    }
}

struct Stack {
    started: Instant,
    prometheus_addr: SocketAddr,
    alertmanager_addr: SocketAddr,
    inbox: Inbox,
    node_exporters: Vec<Proc>,
    prometheus: Proc,
    alertmanager: Proc,
    site: Site,
    _scratch: Scratch,
}

impl Stack {
    fn start(tag: &str) -> Self {
        // Fail at once, naming the package, when a program is missing.
        let prometheus_bin = tool("prometheus", "prometheus");
        let alertmanager_bin = tool("prometheus-alertmanager", "prometheus-alertmanager");
        let node_exporter_bin = tool("prometheus-node-exporter", "prometheus-node-exporter");
        let started = Instant::now();
        let scratch = Scratch::new(tag);

        // The webhook receiver: each POST, with its path (the receiver) and arrival time.
        let inbox = Inbox::default();
        let recorded = inbox.clone();
        let hook = serve(Arc::new(move |r: &Request| {
            if r.method == "POST" {
                let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                let receiver = r.path.trim_start_matches('/').to_string();
                if let Ok(mut v) = recorded.0.lock() {
                    v.push(Delivery { receiver, at: Instant::now(), body });
                }
            }
            (200, String::new())
        }));

        // kube-state-metrics and prometheus-operator's target, served by the test.
        let c = support::cluster(support::nullout(), None);
        let ksm_text = kube_state_metrics(&c);
        let ksm = serve(Arc::new(move |r: &Request| match r.path.as_str() {
            "/metrics" => (200, ksm_text.clone()),
            "/operator" => (200, "prometheus_operator_build_info{version=\"0.0.0\"} 1\n".into()),
            _ => (404, String::new()),
        }));

        // Two real node-exporters, one per node.
        let mut node_exporters = Vec::new();
        let mut exporter_addrs = Vec::new();
        for (node, _) in NODES {
            let port = free_port();
            exporter_addrs.push((node, format!("127.0.0.1:{port}")));
            node_exporters.push(Proc::start(
                node,
                node_exporter_bin.clone(),
                &[
                    format!("--web.listen-address=127.0.0.1:{port}"),
                    // Fewer collectors: a faster scrape, and no reading of this host's disks.
                    "--collector.disable-defaults".into(),
                    "--collector.cpu".into(),
                    "--collector.meminfo".into(),
                    "--collector.loadavg".into(),
                ],
                scratch.0.join(format!("{node}.log")),
            ));
        }

        // Alertmanager, with the file built from Tessera's AlertmanagerConfig.
        let routing = alerting(hook);
        let am_file = alertmanager_file(&alertmanager_config(&routing), &|_| None).expect("alertmanager file");
        let am_path = scratch.write("alertmanager.json", &am_file);
        let am_port = free_port();
        let alertmanager_addr: SocketAddr = format!("127.0.0.1:{am_port}").parse().expect("addr");
        let alertmanager = Proc::start(
            "alertmanager",
            alertmanager_bin,
            &[
                format!("--config.file={}", am_path.display()),
                format!("--storage.path={}", scratch.dir("am").display()),
                format!("--web.listen-address={alertmanager_addr}"),
                // No gossip: a single Alertmanager, and no port 9094 shared between tests.
                "--cluster.listen-address=".into(),
            ],
            scratch.0.join("alertmanager.log"),
        );

        // Prometheus, with Tessera's rules and the site's external labels.
        let site = Site::of(&c, "eks");
        let rules = alert_rules::rule_file(&alert_rules::prometheus_rule(&c, &routing, &site));
        let rules_path = scratch.write("rules.json", &rules);
        let external = values::site(&site)["prometheus"]["prometheusSpec"]["externalLabels"].clone();
        let static_job = |job: &str, target: String, path: &str| json!({ "job_name": job, "metrics_path": path, "static_configs": [{ "targets": [target] }] });
        let config = json!({
            "global": {
                "scrape_interval": secs(TICK),
                "scrape_timeout": secs(TICK),
                "evaluation_interval": secs(TICK),
                "external_labels": external,
            },
            "rule_files": [rules_path],
            "alerting": { "alertmanagers": [{ "api_version": "v2", "static_configs": [{ "targets": [alertmanager_addr.to_string()] }] }] },
            "scrape_configs": [
                {
                    "job_name": NODE_EXPORTER_JOB,
                    "static_configs": [{ "targets": exporter_addrs.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>() }],
                    // Each target's node, as the chart's ServiceMonitor sets it from the pod's node.
                    "relabel_configs": exporter_addrs.iter().map(|(node, addr)| json!({
                        "source_labels": ["__address__"],
                        "regex": regex_quote(addr),
                        "target_label": "node",
                        "replacement": node,
                    })).collect::<Vec<_>>(),
                },
                static_job("kube-state-metrics", ksm.to_string(), "/metrics"),
                static_job(&format!("{MONITORING_RELEASE}-operator"), ksm.to_string(), "/operator"),
                // The custom exporter's target, on a port nothing listens on.
                static_job(&alert_rules::exporter_job("smartctl"), format!("127.0.0.1:{}", free_port()), "/metrics"),
            ],
        });
        let prom_path = scratch.write("prometheus.json", &config);
        let prometheus_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let prometheus = Proc::start(
            "prometheus",
            prometheus_bin,
            &[
                format!("--config.file={}", prom_path.display()),
                format!("--storage.tsdb.path={}", scratch.dir("tsdb").display()),
                format!("--web.listen-address={prometheus_addr}"),
                // Send firing alerts again every second (the default is a minute).
                "--rules.alert.resend-delay=1s".into(),
            ],
            scratch.0.join("prometheus.log"),
        );

        let stack = Self {
            started,
            prometheus_addr,
            alertmanager_addr,
            inbox,
            node_exporters,
            prometheus,
            alertmanager,
            site,
            _scratch: scratch,
        };
        let ready = |addr| move || http(addr, "GET", "/-/ready", None).ok().filter(|(s, _)| *s == 200).map(|_| ());
        stack.expect(wait_for(Duration::from_secs(20), "Prometheus ready", ready(stack.prometheus_addr)));
        stack.expect(wait_for(Duration::from_secs(20), "Alertmanager ready", ready(stack.alertmanager_addr)));
        stack
    }

    /// Unwraps `r`, or fails with the programs' logs.
    fn expect<T>(&self, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| {
            let logs: Vec<String> = std::iter::once(&self.prometheus)
                .chain(std::iter::once(&self.alertmanager))
                .chain(&self.node_exporters)
                .map(Proc::log)
                .collect();
            let deliveries: Vec<String> = self
                .inbox
                .all()
                .iter()
                .map(|d| format!("{:?} {} {}", d.at - self.started, d.receiver, d.body))
                .collect();
            panic!("{e}\ndeliveries:\n{}\n{}", deliveries.join("\n"), logs.join("\n"))
        })
    }

    /// The value of `query` per label set, from Prometheus' API.
    fn query(&self, query: &str) -> Vec<(Value, f64)> {
        let q: String = query
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        get_json(self.prometheus_addr, &format!("/api/v1/query?query={q}"))
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r["metric"].clone(), r["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)))
            .collect()
    }

    /// Waits until every scrape target that should answer does: both node-exporters, the
    /// kube-state-metrics stand-in and the operator's.
    fn wait_scraped(&self) {
        self.expect(wait_for(Duration::from_secs(20), "node-exporters, kube-state-metrics and operator up", || {
            let up: BTreeMap<String, f64> = self
                .query("up")
                .into_iter()
                .map(|(m, v)| (format!("{}/{}", m["job"].as_str().unwrap_or(""), m["node"].as_str().unwrap_or("")), v))
                .collect();
            let want = [
                format!("{NODE_EXPORTER_JOB}/node-a"),
                format!("{NODE_EXPORTER_JOB}/node-b"),
                "kube-state-metrics/".into(),
                format!("{MONITORING_RELEASE}-operator/"),
            ];
            want.iter().all(|k| up.get(k) == Some(&1.0)).then_some(())
        }));
    }

    /// No notification other than the heartbeat ever reached the heartbeat receiver, and the
    /// heartbeat never reached another.
    fn assert_heartbeat_kept_apart(&self) {
        for d in self.inbox.all() {
            let names = d.alertnames();
            if d.receiver == "heartbeat" {
                assert!(names.iter().all(|n| n == HEARTBEAT), "heartbeat receiver got {names:?}");
            } else {
                assert!(!names.iter().any(|n| n == HEARTBEAT), "{} got the heartbeat", d.receiver);
            }
        }
    }
}

fn regex_quote(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == ':' { c.to_string() } else { format!("\\{c}") }).collect()
}

fn assert_site_labels(alert: &Value, site: &Site) {
    let l = &alert["labels"];
    for (k, v) in
        [("fleet", &site.fleet), ("placement", &site.placement), ("cloud", &site.cloud), ("region", &site.region)]
    {
        assert_eq!(l[k], json!(v), "{k} on {alert}");
    }
    assert!(l["severity"].is_string(), "severity on {alert}");
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[test]
fn alerting_e2e_stopped_node_exporters_page_the_critical_receiver_in_one_notification() {
    let mut stack = Stack::start("nodes");
    stack.wait_scraped();
    // Nothing critical yet: every DaemonSet's pods are ready and every target answers.
    let killed = Instant::now();
    for p in &mut stack.node_exporters {
        p.kill();
    }
    // The bound, from the kill: the next scrape of each node-exporter fails (≤ 1 scrape interval
    // plus its timeout), the rule sees it at the next evaluation (≤ 1 evaluation interval) and
    // holds it for `for:` (COVERAGE_AFTER), fires at the evaluation after that (≤ 1 evaluation
    // interval: the one the brief allows), then Alertmanager waits group_wait before sending.
    // One more second covers Prometheus' notification queue and the HTTP round trips.
    let bound = COVERAGE_AFTER + TICK /* evaluation */ + TICK * 2 /* scrape + timeout */ + GROUP_WAIT + TICK;
    let delivery = stack.expect(wait_for(bound, "TesseraNodeNotScraped at the critical receiver", || {
        stack.inbox.to("critical").into_iter().find(|d| d.firing(NODE_NOT_SCRAPED))
    }));
    let elapsed = delivery.at - killed;
    eprintln!("kill -> critical notification: {elapsed:?} (bound {bound:?})");
    // Not before `for:` either.
    assert!(elapsed >= COVERAGE_AFTER, "fired after {elapsed:?}, before its for: {COVERAGE_AFTER:?}");
    // Both nodes in one notification (grouped by alertname and placement).
    let alerts: Vec<Value> =
        delivery.alerts().into_iter().filter(|a| a["labels"]["alertname"] == NODE_NOT_SCRAPED).collect();
    let mut nodes: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            assert_site_labels(a, &stack.site);
            assert_eq!(a["labels"]["severity"], "critical", "{a}");
            (a["labels"]["node"].as_str().unwrap_or("").into(), a["labels"]["pool"].as_str().unwrap_or("").into())
        })
        .collect();
    nodes.sort();
    assert_eq!(nodes, vec![("node-a".into(), "system".into()), ("node-b".into(), "gpu".into())], "{}", delivery.body);
    assert_eq!(
        delivery.body["groupLabels"],
        json!({ "alertname": NODE_NOT_SCRAPED, "placement": stack.site.placement })
    );
    // Only the node alert reached the critical receiver; the warning receiver saw no node alert.
    for d in stack.inbox.to("critical") {
        assert!(d.alertnames().iter().all(|n| n == NODE_NOT_SCRAPED), "critical got {:?}", d.alertnames());
    }
    assert!(stack.inbox.to("warning").iter().all(|d| !d.alertnames().iter().any(|n| n == NODE_NOT_SCRAPED)));
    stack.assert_heartbeat_kept_apart();
    // What a rollout's gate reads of a cluster's Alertmanager, asked of this real one at the same
    // path: the node alert it just sent is among the critical ones firing; the heartbeat, firing
    // all along, is not.
    let alerts = get_json(stack.alertmanager_addr, &without_proxy(&critical_path())).expect("Alertmanager's alerts");
    assert_eq!(critical_of(&alerts), [NODE_NOT_SCRAPED], "{alerts}");
    let severities: Vec<&Value> = alerts.as_array().into_iter().flatten().map(|a| &a["labels"]["severity"]).collect();
    assert!(!severities.is_empty() && severities.iter().all(|s| *s == "critical"), "Alertmanager filtered: {alerts}");
}

#[test]
fn alerting_e2e_the_heartbeat_arrives_every_interval_and_only_at_its_receiver() {
    let stack = Stack::start("heartbeat");
    // Prometheus sends its first alerts once it has discovered Alertmanager (about 5 s after
    // start), then a beat every BEAT.
    let beats = stack.expect(wait_for(Duration::from_secs(10) + BEAT * 3, "three heartbeats", || {
        let b = stack.inbox.to("heartbeat");
        (b.len() >= 3).then_some(b)
    }));
    let gaps: Vec<Duration> = beats.windows(2).map(|w| w[1].at - w[0].at).collect();
    eprintln!("heartbeat gaps: {gaps:?} (interval {BEAT:?})");
    for (d, gap) in beats.iter().zip(std::iter::once(Duration::ZERO).chain(gaps.iter().copied())) {
        assert!(d.firing(HEARTBEAT), "{}", d.body);
        assert_site_labels(&d.alerts()[0], &stack.site);
        // Spaced the interval: Alertmanager flushes the heartbeat's group every BEAT and resends
        // at each flush (less a little timer jitter either way).
        if gap > Duration::ZERO {
            let jitter = Duration::from_millis(500);
            assert!(gap >= BEAT - jitter && gap <= BEAT + jitter, "gap {gap:?}, interval {BEAT:?}");
        }
    }
    stack.assert_heartbeat_kept_apart();
    assert!(
        stack.inbox.to("critical").is_empty(),
        "critical got {:?}",
        stack.inbox.to("critical").iter().map(Delivery::alertnames).collect::<Vec<_>>()
    );
    // What `tessera verify` reads of a cluster's Alertmanager (through its API server's proxy),
    // asked of this real one at the same paths: the routing is Tessera's and the heartbeat fires.
    let status = get_json(stack.alertmanager_addr, "/api/v2/status").expect("Alertmanager's status");
    let alerts = get_json(stack.alertmanager_addr, &without_proxy(&heartbeat_path())).expect("Alertmanager's alerts");
    let judged = judge(&status, &alerts);
    assert!(judged.ok(), "{judged:?}\nstatus: {status}\nalerts: {alerts}");
    // The heartbeat fires with severity `none`: Alertmanager's own filter leaves it out of the
    // critical alerts, so a healthy cluster has none.
    assert!(alerts.as_array().is_some_and(|a| a.iter().all(|a| a["labels"]["severity"] == "none")), "{alerts}");
    let critical = get_json(stack.alertmanager_addr, &without_proxy(&critical_path())).expect("Alertmanager's alerts");
    assert_eq!(critical, json!([]), "nothing critical fires");
}

/// The part of an API server service-proxy path that reaches the service itself.
fn without_proxy(path: &str) -> String {
    path.split_once("/proxy").map(|(_, p)| p.to_string()).expect("a proxy path")
}

#[test]
fn alerting_e2e_a_down_exporter_warns_the_warning_receiver_and_not_the_critical_one() {
    let stack = Stack::start("exporter");
    let delivery = stack.expect(wait_for(
        COVERAGE_AFTER + Duration::from_secs(15),
        "TesseraExporterDown at the warning receiver",
        || stack.inbox.to("warning").into_iter().find(|d| d.firing(EXPORTER_DOWN)),
    ));
    eprintln!("start -> warning notification: {:?}", delivery.at - stack.started);
    for a in delivery.alerts() {
        assert_site_labels(&a, &stack.site);
        assert_eq!(a["labels"]["severity"], "warning");
        assert_eq!(a["labels"]["exporter"], "smartctl");
        assert_eq!(a["labels"]["job"], alert_rules::exporter_job("smartctl"));
    }
    // Give a critical delivery of it the same chance (group_wait) before checking there is none.
    std::thread::sleep(GROUP_WAIT);
    for d in stack.inbox.to("critical") {
        assert!(!d.alertnames().iter().any(|n| n == EXPORTER_DOWN), "critical got {}", d.body);
    }
    // Nothing else broke, so nothing else was sent.
    for d in stack.inbox.to("warning") {
        assert!(d.alertnames().iter().all(|n| n == EXPORTER_DOWN), "warning got {:?}", d.alertnames());
    }
    stack.assert_heartbeat_kept_apart();
}

#[test]
fn alerting_e2e_a_silence_holds_the_warning_back_until_it_is_deleted() {
    let stack = Stack::start("silence");
    let now = get_json(stack.alertmanager_addr, "/api/v2/status").map(|_| ());
    stack.expect(now.ok_or_else(|| "Alertmanager status".to_string()));
    // Silence the exporter alert for this placement, from now for an hour (Alertmanager reads
    // RFC 3339 times; it takes a start in the past, so use the epoch's start of this hour).
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let rfc3339 = |t: u64| {
        let (days, rest) = (t / 86400, t % 86400);
        let (y, m, d) = civil(days as i64);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60)
    };
    let silence = json!({
        "matchers": [
            { "name": "alertname", "value": EXPORTER_DOWN, "isRegex": false, "isEqual": true },
            { "name": "placement", "value": stack.site.placement, "isRegex": false, "isEqual": true },
        ],
        "startsAt": rfc3339(epoch - 60),
        "endsAt": rfc3339(epoch + 3600),
        "createdBy": "tessera-e2e",
        "comment": "maintenance",
    });
    let (status, body) = stack
        .expect(http(stack.alertmanager_addr, "POST", "/api/v2/silences", Some(&silence)).map_err(|e| e.to_string()));
    assert_eq!(status, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["silenceID"].as_str().map(String::from));
    let id = stack.expect(id.ok_or_else(|| format!("no silenceID in {body}")));

    // The alert reaches Alertmanager, which holds it as silenced by this silence.
    let silenced = stack.expect(wait_for(
        COVERAGE_AFTER + Duration::from_secs(15),
        "the exporter alert silenced in Alertmanager",
        || {
            get_json(stack.alertmanager_addr, "/api/v2/alerts")?.as_array()?.iter().find_map(|a| {
                (a["labels"]["alertname"] == EXPORTER_DOWN && a["status"]["silencedBy"] == json!([id]))
                    .then(Instant::now)
            })
        },
    ));
    // While the silence is active, nothing reaches the warning receiver: wait past group_wait and
    // a group_interval, when it would have been sent.
    std::thread::sleep(GROUP_WAIT + GROUP_INTERVAL);
    assert!(
        stack.inbox.to("warning").iter().all(|d| !d.alertnames().iter().any(|n| n == EXPORTER_DOWN)),
        "a silenced alert was sent"
    );
    // Delete the silence: the next flush sends it.
    let (status, body) = stack.expect(
        http(stack.alertmanager_addr, "DELETE", &format!("/api/v2/silence/{id}"), None).map_err(|e| e.to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let deleted = Instant::now();
    let delivery = stack.expect(wait_for(
        GROUP_INTERVAL * 2 + Duration::from_secs(5),
        "TesseraExporterDown after the silence",
        || stack.inbox.to("warning").into_iter().find(|d| d.firing(EXPORTER_DOWN)),
    ));
    eprintln!(
        "silenced for {:?} without a delivery; delete -> warning notification: {:?}",
        deleted - silenced,
        delivery.at - deleted
    );
    stack.assert_heartbeat_kept_apart();
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
