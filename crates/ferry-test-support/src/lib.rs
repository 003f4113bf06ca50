//! The harness every integration test uses to talk to a real AWS API emulator.
//!
//! - [`emulator`] returns the moto server of this test process: the one named by
//!   `FERRY_TEST_AWS_ENDPOINT` (the test script starts one for the whole suite), or else one
//!   started here on a free loopback port, which dies with the process.
//! - [`fresh_account`] / [`Accounts::fresh`] hand each test account ids nobody else uses, so
//!   tests sharing one server never see each other's resources.
//! - [`base_config`] and [`admin_config`] build hermetic SDK configurations: static test
//!   credentials, a fixed region, the emulator's endpoint, nothing read from the environment.
//! - [`fixtures`] makes what deploy tests deploy to: functions, services, alarms.
//!
//! moto models several accounts through STS: credentials returned by `AssumeRole` of a role in
//! account B act in account B (the role need not exist). `../shared/reference/moto-matrix.md`
//! lists what moto does and does not emulate.

use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod faults;
pub mod fixtures;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// moto starts every new ECS service with this many running tasks (moto-matrix.md §3f): a
/// service of desired count 1 is steady at once, one of 2 stays at 1/2 until a test moves it.
/// `scripts/lib.sh` starts its server with the same value.
pub const MOTO_ECS_SERVICE_RUNNING: &str = "1";

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    endpoint: String,
    /// Kept so the server lives as long as the process (it also dies with it: see `spawn`).
    _child: Option<Child>,
}

impl Emulator {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// The emulator for this process, started on first use.
///
/// # Panics
/// When no emulator is configured and none can be started: the message says how to install one.
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| match std::env::var("FERRY_TEST_AWS_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            assert_loopback(&endpoint);
            Emulator {
                endpoint,
                _child: None,
            }
        }
        _ => start().unwrap_or_else(|e| panic!("{e}")),
    })
}

fn assert_loopback(endpoint: &str) {
    let host = endpoint
        .trim_start_matches("http://")
        .split([':', '/'])
        .next()
        .unwrap_or("");
    assert!(
        host == "127.0.0.1" || host == "localhost",
        "FERRY_TEST_AWS_ENDPOINT={endpoint}: tests talk to loopback only"
    );
}

/// Where the moto server program is: `FERRY_MOTO_SERVER`, the project's virtualenv
/// (`.tools/venv`, made by `scripts/test`), or `moto_server` on the PATH.
fn moto_program() -> PathBuf {
    if let Ok(p) = std::env::var("FERRY_MOTO_SERVER") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/moto_server");
    if venv.exists() {
        venv
    } else {
        "moto_server".into()
    }
}

fn start() -> Result<Emulator, String> {
    let program = moto_program();
    let mut last_error = String::new();
    // A free port can be taken between probing and binding it: try a few.
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let mut command = Command::new(&program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ECS_SERVICE_RUNNING", MOTO_ECS_SERVICE_RUNNING)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| {
            format!(
                "cannot start the moto AWS emulator ({}): {e}. Run `scripts/test` (it installs moto into .tools/venv), \
                 or set FERRY_TEST_AWS_ENDPOINT to a running one",
                program.display()
            )
        })?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        match wait_ready(addr, &mut child) {
            Ok(()) => {
                return Ok(Emulator {
                    endpoint: format!("http://{addr}"),
                    _child: Some(child),
                });
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                last_error = e;
            }
        }
    }
    Err(format!("the moto AWS emulator did not start: {last_error}"))
}

/// The server gets SIGTERM when the test process ends, however it ends.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only the async-signal-safe prctl(2) runs.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

fn wait_ready(addr: SocketAddr, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("it exited with {status}"));
        }
        if let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!("GET /moto-api/reset-auth HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            let mut reply = [0u8; 12];
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && reply.starts_with(b"HTTP/1.")
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no answer on {addr} within 30 s"))
}

/// A 12-digit account id no other test (in any process) will get.
pub fn fresh_account() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let n = hasher.finish() % 900_000_000_000 + 100_000_000_000;
    // moto puts requests it cannot attribute into 123456789012: never hand that one out.
    if n == 123_456_789_012 {
        fresh_account()
    } else {
        n.to_string()
    }
}

/// The four accounts of ferry's system, fresh for one test.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub shared: String,
    pub dev: String,
    pub qa: String,
    pub prod: String,
}

impl Accounts {
    pub fn fresh() -> Self {
        Accounts {
            shared: fresh_account(),
            dev: fresh_account(),
            qa: fresh_account(),
            prod: fresh_account(),
        }
    }
}

/// The emulator's credentials before any role is assumed: static test keys in moto's
/// default account, region [`REGION`], nothing read from the environment or profiles.
pub fn base_config() -> SdkConfig {
    base_config_at(emulator().endpoint())
}

/// [`base_config`] for another emulator, such as the demo's own sandbox.
pub fn base_config_at(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        // What `aws_config::load` would add: a clock (credential expiry) and a sleep (retries).
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "ferry-test",
        )))
        .build()
}

/// A configuration acting as an administrator of `account`, through `AssumeRole` of
/// `arn:aws:iam::<account>:role/ferry-test-admin` (moto does not need the role to exist).
///
/// # Panics
/// When the emulator does not answer `AssumeRole`.
pub async fn admin_config(account: &str) -> SdkConfig {
    admin_config_at(emulator().endpoint(), account).await
}

/// [`admin_config`] on another emulator: credentials are only good on the server that issued
/// them.
///
/// # Panics
/// When the emulator does not answer `AssumeRole`.
pub async fn admin_config_at(endpoint: &str, account: &str) -> SdkConfig {
    let base = base_config_at(endpoint);
    let sts = aws_sdk_sts::Client::new(&base);
    let out = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/ferry-test-admin"))
        .role_session_name("ferry-test")
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "AssumeRole into {account}: {}",
                aws_sdk_sts::error::DisplayErrorContext(e)
            )
        });
    let c = out.credentials().expect("AssumeRole returns credentials");
    let credentials = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_owned()),
        None,
        "ferry-test-assumed",
    );
    base.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_accounts_are_twelve_digits_and_distinct() {
        let ids: Vec<String> = (0..1000).map(|_| fresh_account()).collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()))
        );
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
