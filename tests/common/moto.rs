//! A moto server for one test: started on a free port, stopped when dropped.
//!
//! `scripts/test` installs moto; a missing moto is a failure here, never a skip.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub url: String,
}

pub const KEY: &str = "testing";
pub const SECRET: &str = "testing";

impl Moto {
    pub fn start() -> Self {
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port");
        let port_arg = port.to_string();
        let args = ["-H", "127.0.0.1", "-p", port_arg.as_str()];
        let spawn = |program: &str, prefix: &[&str]| {
            Command::new(program)
                .args(prefix)
                .args(args)
                // The AWS-managed EKS policies the roles attach exist only when moto loads them.
                .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        // `moto_server` where pip put it on PATH; the module otherwise (same server).
        let child = spawn("moto_server", &[])
            .or_else(|_| spawn("python3", &["-m", "moto.server"]))
            .expect("moto must be installed: run scripts/test, which installs it");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Settings for Tessera's EKS backend, pointed at this server.
    pub fn eks_settings(&self) -> tessera_eks::EksSettings {
        tessera_eks::EksSettings {
            endpoint_url: Some(self.url.clone()),
            static_credentials: Some((KEY.into(), SECRET.into())),
            profile: None,
            poll: tessera_eks::PollPolicy {
                min_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(200),
                total: Duration::from_secs(60),
            },
        }
    }

    /// An SDK configuration for checking what moto holds, independently of Tessera.
    pub async fn sdk(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(&self.url)
            .credentials_provider(aws_sdk_eks::config::Credentials::new(KEY, SECRET, None, None, "test"))
            .load()
            .await
    }
}

/// SDK clients for checking what moto holds in one region, independently of Tessera.
pub struct Aws {
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
}

pub async fn aws(moto: &Moto, region: &str) -> Aws {
    let conf = moto.sdk(region).await;
    Aws {
        eks: aws_sdk_eks::Client::new(&conf),
        ec2: aws_sdk_ec2::Client::new(&conf),
        iam: aws_sdk_iam::Client::new(&conf),
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
