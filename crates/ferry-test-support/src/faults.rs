//! A fault-injecting proxy on loopback, in front of the emulator: AWS as it behaves under load.
//!
//! Every N-th request (the [`Plan`]) gets a fault, in turn from the plan's list: a throttling
//! answer in the protocol's own shape (JSON for awsJson and restJson services, XML for the
//! query protocol and S3), an HTTP 503 whose body is not an AWS error document (a load
//! balancer's page), the connection dropped before the request reaches the emulator, or
//! dropped after the emulator applied it (the answer is lost: a retry repeats a call that took
//! effect). Latency delays every request. What was injected is recorded, so a test can say
//! how many of its calls failed.
//!
//! The proxy runs on a thread and runtime of its own, so a test may block on a `ferry`
//! process that talks through it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's throttling error, in its protocol's shape.
    Throttle,
    /// HTTP 503 with a plain-text body.
    Unavailable,
    /// The connection closes before the request is forwarded.
    DropBefore,
    /// The request is forwarded and applied; the connection closes before the answer.
    DropAfter,
}

/// Which requests get a fault.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every `every`-th request gets one (0: none). 5 is 20 % of requests.
    pub every: u64,
    /// The faults, used in turn.
    pub faults: Vec<Fault>,
    /// Added to every request.
    pub latency: Duration,
    /// Only requests to these signing services (`kms`, `lambda`, …) get faults; empty: all.
    pub services: Vec<String>,
}

impl Plan {
    /// One request in `every` fails, each fault kind in turn.
    pub fn every(every: u64) -> Plan {
        Plan {
            every,
            faults: vec![
                Fault::Throttle,
                Fault::Unavailable,
                Fault::DropBefore,
                Fault::DropAfter,
            ],
            latency: Duration::ZERO,
            services: Vec::new(),
        }
    }

    /// Every request to `service` answers HTTP 503.
    pub fn unavailable(service: &str) -> Plan {
        Plan {
            every: 1,
            faults: vec![Fault::Unavailable],
            latency: Duration::ZERO,
            services: vec![service.to_owned()],
        }
    }
}

/// A fault the proxy injected: which, and into which service's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub fault: Fault,
    pub service: String,
}

struct State {
    upstream: String,
    client: reqwest::Client,
    plan: Mutex<Plan>,
    seen: AtomicU64,
    injected: Mutex<Vec<Injected>>,
}

/// A running proxy.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port, injecting
    /// nothing until [`FaultProxy::set`].
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("non-blocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("an HTTP client"),
            plan: Mutex::new(Plan::default()),
            seen: AtomicU64::new(0),
            injected: Mutex::new(Vec::new()),
        });
        let serving = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            rt.block_on(serve(listener, serving));
        });
        FaultProxy { endpoint, state }
    }

    /// `http://127.0.0.1:PORT`: give this to the SDK (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Injects faults as `plan` says from the next request on.
    pub fn set(&self, plan: Plan) {
        *self
            .state
            .plan
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = plan;
    }

    /// The requests seen so far.
    pub fn requests(&self) -> u64 {
        self.state.seen.load(Ordering::SeqCst)
    }

    /// The faults injected so far.
    pub fn injected(&self) -> Vec<Injected> {
        self.state
            .injected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn serve(listener: std::net::TcpListener, state: Arc<State>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            // A fault ends the connection: an error from the service closes it unanswered.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Why a connection was dropped: hyper closes it without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

/// The signing service of a request, from its SigV4 credential scope
/// (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`).
fn service_of(req: &Request<Incoming>) -> String {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|cred| cred.split('/').nth(3))
        .unwrap_or("unknown")
        .to_owned()
}

/// The service's throttling answer, as its protocol writes it.
fn throttle(service: &str) -> Response<Full<Bytes>> {
    let (status, content_type, body, error_type) = match service {
        "s3" => (
            503,
            "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>".to_owned(),
            None,
        ),
        "sts" | "iam" | "monitoring" | "sns" | "cloudformation" => (
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>FAULT</RequestId></ErrorResponse>".to_owned(),
            None,
        ),
        // restJson1.
        "lambda" => (
            429,
            "application/json",
            r#"{"Type":"User","message":"Rate exceeded"}"#.to_owned(),
            Some("TooManyRequestsException"),
        ),
        // awsJson1.0 / 1.1: ECS, KMS, ECR, Secrets Manager, CodeBuild, Logs, …
        _ => (
            400,
            "application/x-amz-json-1.1",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
            Some("ThrottlingException"),
        ),
    };
    let mut b = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-requestid", "FAULT");
    if let Some(t) = error_type {
        b = b.header("x-amzn-errortype", t);
    }
    b.body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let n = state.seen.fetch_add(1, Ordering::SeqCst) + 1;
    let service = service_of(&req);
    let (fault, latency) = {
        let plan = state
            .plan
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let chosen = plan.services.is_empty() || plan.services.contains(&service);
        let fault =
            (chosen && plan.every > 0 && n.is_multiple_of(plan.every) && !plan.faults.is_empty())
                .then(|| {
                    let turn = usize::try_from(n / plan.every).unwrap_or(0);
                    plan.faults[turn % plan.faults.len()]
                });
        (fault, plan.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(fault) = fault {
        state
            .injected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Injected {
                fault,
                service: service.clone(),
            });
        match fault {
            Fault::Throttle => return Ok(throttle(&service)),
            Fault::Unavailable => {
                return Ok(Response::builder()
                    .status(StatusCode::SERVICE_UNAVAILABLE)
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from_static(b"Service Unavailable")))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))));
            }
            Fault::DropBefore => return Err(Dropped),
            Fault::DropAfter => {}
        }
    }
    let answer = forward(&state, req).await;
    if fault == Some(Fault::DropAfter) {
        return Err(Dropped);
    }
    Ok(answer)
}

/// The request as the emulator answers it.
async fn forward(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", hyper::http::uri::PathAndQuery::as_str);
    let mut upstream = state
        .client
        .request(parts.method.clone(), format!("{}{path}", state.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        // The signed Host header goes as it was signed.
        upstream = upstream.header(name, value);
    }
    match upstream.send().await {
        Ok(r) => {
            let mut b = Response::builder().status(r.status());
            for (name, value) in r.headers() {
                if name != "transfer-encoding" && name != "connection" && name != "content-length" {
                    b = b.header(name, value);
                }
            }
            let bytes = r.bytes().await.unwrap_or_default();
            b.body(Full::new(bytes))
                .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
        }
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Full::new(Bytes::from(format!("the emulator: {e}"))))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
    }
}
