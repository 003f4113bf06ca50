//! The scheduler's throughput and per-action overhead: 200 no-op actions (20 executions of
//! two run orders of five parallel actions) on 1, 2 and 4 workers. Each worker, as a `ferry
//! serve` does, races the others for the executions to drive and leases the queued actions
//! of any execution, running at most [`SLOTS`] at once; on SQLite and — when
//! `FERRY_BENCH_POSTGRES` names a PostgreSQL admin URL — on PostgreSQL, over plain TCP
//! (`sslmode=disable`) and over TLS (`pg+tls`: the test cluster serves it).
//! Each figure is the median of the runs, measured in this run; ratios compare against one
//! worker on SQLite. Then the cost of a hand-off — an action run by another process's worker
//! and its end seen by the driver — with polls of a few milliseconds and with `ferry serve`'s
//! (500 ms): what keeps the second close to the first is the store telling the worker and the
//! driver of each queued and ended action (`Store::action_changes`). `scripts/bench-scheduler` starts a cluster and runs it.
//!
//!     cargo bench -p ferry-engine --bench scheduler -- [RUNS]

// A benchmark prints its figures.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_engine::action::{
    Action, ActionContext, ActionError, ActionKind, ActionOutput, Clock, Settings, Silent,
};
use ferry_engine::artifact::LocalArtifacts;
use ferry_engine::model::{ActionDef, Mode, PipelineDef, StageDef};
use ferry_engine::secrets::NoSecrets;
use ferry_engine::store::{PostgresStore, SqliteStore, Store};
use ferry_engine::{Engine, EngineError, Registry};

const EXECUTIONS: usize = 20;
const ACTIONS: usize = 10;
/// Actions one worker runs at once.
const SLOTS: usize = 2;

struct Noop;

#[async_trait]
impl Action for Noop {
    async fn run(&self, _: &ActionContext) -> Result<ActionOutput, ActionError> {
        Ok(ActionOutput::default())
    }
}

struct NoopKind;

impl ActionKind for NoopKind {
    type Config = serde_json::Value;
    fn name(&self) -> &'static str {
        "noop"
    }
    fn build(&self, _: serde_json::Value, _: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(Noop))
    }
}

fn definition() -> PipelineDef {
    PipelineDef {
        name: "bench".into(),
        mode: Mode::Parallel,
        stages: vec![StageDef {
            name: "work".into(),
            environment: None,
            actions: (0..ACTIONS)
                .map(|n| ActionDef {
                    name: format!("a{n}"),
                    kind: "noop".into(),
                    run_order: u32::try_from(n % 2 + 1).unwrap(),
                    config: serde_json::Value::Null,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    timeout_secs: None,
                })
                .collect(),
        }],
    }
}

/// How often a worker looks for an action to lease, and a driver at its actions, when the
/// store tells them nothing.
#[derive(Clone, Copy)]
struct Polls {
    name: &'static str,
    pool: Duration,
    driver: Duration,
}

const FAST: Polls = Polls {
    name: "5/20 ms",
    pool: Duration::from_millis(5),
    driver: Duration::from_millis(20),
};

/// `ferry serve`'s: its lease poll and its pipelines' poll.
const SERVE: Polls = Polls {
    name: "serve",
    pool: Duration::from_millis(500),
    driver: Duration::from_millis(500),
};

fn worker(store: &Arc<dyn Store>, state: &std::path::Path, name: &str, polls: Polls) -> Engine {
    let mut registry = Registry::with_builtins();
    registry.register(NoopKind);
    Engine::new(
        store.clone(),
        registry,
        Arc::new(
            LocalArtifacts::open(&state.join("artifacts"))
                .unwrap()
                .shared_by_workers(),
        ),
        Arc::new(NoSecrets),
        Arc::new(Silent),
        Settings {
            auto_approve: true,
            identity: name.into(),
            poll: polls.driver,
            state_dir: state.to_owned(),
            clock: Clock::system(),
        },
    )
    .with_driver_id(&format!("{name}@bench"))
    .with_slots(Arc::new(tokio::sync::Semaphore::new(SLOTS)))
}

/// One run: the wall time for `workers` workers to drive all 200 actions.
fn run(
    rt: &tokio::runtime::Runtime,
    store: &Arc<dyn Store>,
    workers: usize,
    polls: Polls,
) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let engines: Vec<Engine> = (0..workers)
        .map(|w| worker(store, dir.path(), &format!("w{w}"), polls))
        .collect();
    let ids: Vec<String> = (0..EXECUTIONS)
        .map(|_| engines[0].start(&definition(), "r1", "bench").unwrap().id)
        .collect();
    let started = Instant::now();
    rt.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        let pools: Vec<_> = engines
            .iter()
            .enumerate()
            .map(|(n, engine)| {
                let (engine, store, stop) = (engine.clone(), store.clone(), stop.clone());
                tokio::spawn(async move {
                    // The worker's slots are its drives' and its leases' together.
                    let slots = engine.slots().clone();
                    let run = move |lease, slot| {
                        let engine = engine.clone();
                        async move {
                            let token = tokio_util::sync::CancellationToken::new();
                            engine.run_leased(lease, slot, token).await.unwrap();
                        }
                    };
                    let worker = format!("w{n}.pool@bench");
                    Engine::work(store, &worker, slots, polls.pool, stop, run).await;
                })
            })
            .collect();
        let tasks: Vec<_> = engines
            .into_iter()
            .enumerate()
            .map(|(n, engine)| {
                let mut order = ids.clone();
                order.rotate_left(n * EXECUTIONS / workers);
                tokio::spawn(async move {
                    for id in order {
                        match engine.drive(&id, None).await {
                            Ok(e) => assert!(e.status.is_final()),
                            Err(EngineError::Busy { .. }) => {}
                            Err(e) => panic!("{id}: {e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        stop.cancel();
        for p in pools {
            p.await.unwrap();
        }
    });
    started.elapsed()
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

/// Stores on one fresh database of `backend` (SQLite's in `dir`): `count` of them, each as
/// another process would open it (on SQLite, which one process opens, the same store).
fn stores(
    backend: &str,
    postgres: Option<&str>,
    dir: &std::path::Path,
    tag: &str,
    count: usize,
) -> Vec<Arc<dyn Store>> {
    if backend == "sqlite" {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap());
        return vec![store; count];
    }
    let admin = postgres.unwrap();
    let name = format!("ferry_bench_{}_{tag}", std::process::id());
    ferry_engine::store::create_database(admin, &name).unwrap();
    let (server, _) = admin.rsplit_once('/').unwrap();
    // Plain TCP, or TLS (the test cluster serves it; `prefer`, the default, takes it).
    let tls = if backend == "pg+tls" {
        ""
    } else {
        "?sslmode=disable"
    };
    (0..count)
        .map(|_| {
            let store: Arc<dyn Store> =
                Arc::new(PostgresStore::open(&format!("{server}/{name}{tls}")).unwrap());
            store
        })
        .collect()
}

/// Hand-offs: [`HANDOFFS`] executions one after another, each of two actions in turn, driven
/// by an engine with no slots, so that every action goes to a worker of another process and
/// its end back to the driver. The time per action is what a hand-off costs.
fn handoff(rt: &tokio::runtime::Runtime, stores: &[Arc<dyn Store>], polls: Polls) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let driver = worker(&stores[0], dir.path(), "driver", polls)
        .with_slots(Arc::new(tokio::sync::Semaphore::new(0)));
    let other = worker(&stores[1], dir.path(), "other", polls);
    let def = PipelineDef {
        name: "handoff".into(),
        mode: Mode::Parallel,
        stages: vec![StageDef {
            name: "work".into(),
            environment: None,
            actions: (1..=2)
                .map(|n| ActionDef {
                    name: format!("a{n}"),
                    kind: "noop".into(),
                    run_order: n,
                    config: serde_json::Value::Null,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    timeout_secs: None,
                })
                .collect(),
        }],
    };
    rt.block_on(async {
        let stop = tokio_util::sync::CancellationToken::new();
        let pool = {
            let (store, slots, stop) = (stores[1].clone(), other.slots().clone(), stop.clone());
            let run = move |lease, slot| {
                let engine = other.clone();
                async move {
                    let token = tokio_util::sync::CancellationToken::new();
                    engine.run_leased(lease, slot, token).await.unwrap();
                }
            };
            tokio::spawn(async move {
                Engine::work(store, "other.pool@bench", slots, polls.pool, stop, run).await;
            })
        };
        let started = Instant::now();
        for _ in 0..HANDOFFS {
            let id = driver.start(&def, "r1", "bench").unwrap().id;
            assert!(driver.drive(&id, None).await.unwrap().status.is_final());
        }
        let took = started.elapsed();
        stop.cancel();
        pool.await.unwrap();
        took
    })
}

/// Executions of [`handoff`].
const HANDOFFS: u32 = 10;

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let postgres = std::env::var("FERRY_BENCH_POSTGRES").ok();
    let mut backends: Vec<&str> = vec!["sqlite"];
    if postgres.is_some() {
        backends.extend(["postgres", "pg+tls"]);
    }
    let total = EXECUTIONS * ACTIONS;
    println!("{total} no-op actions ({EXECUTIONS} executions of {ACTIONS}), median of {runs} runs");
    println!(
        "{:<10} {:>7} {:>12} {:>14} {:>10}",
        "store", "workers", "actions/s", "ms per action", "vs 1/sqlite"
    );
    let mut baseline: Option<f64> = None;
    for &backend in &backends {
        for workers in [1, 2, 4] {
            let times: Vec<Duration> = (0..runs)
                .map(|r| {
                    let (dir, tag) = (tempfile::tempdir().unwrap(), format!("{workers}_{r}"));
                    let store = stores(backend, postgres.as_deref(), dir.path(), &tag, 1);
                    run(&rt, &store[0], workers, FAST)
                })
                .collect();
            let t = median(times).as_secs_f64();
            let per_action = t * 1000.0 / total as f64;
            let rate = total as f64 / t;
            let base = *baseline.get_or_insert(rate);
            println!(
                "{backend:<10} {workers:>7} {rate:>12.0} {per_action:>14.2} {:>9.2}x",
                rate / base
            );
        }
    }
    let actions = f64::from(HANDOFFS * 2);
    println!();
    println!(
        "hand-offs: {HANDOFFS} executions of 2 actions in turn, each run by another process's worker"
    );
    println!(
        "{:<10} {:>8} {:>14} {:>16}",
        "store", "polls", "ms per action", "vs its 5/20 ms"
    );
    for &backend in &backends {
        let mut fast: Option<f64> = None;
        for polls in [FAST, SERVE] {
            let times: Vec<Duration> = (0..runs)
                .map(|r| {
                    let dir = tempfile::tempdir().unwrap();
                    let tag = format!("handoff_{}_{r}", polls.pool.as_millis());
                    let stores = stores(backend, postgres.as_deref(), dir.path(), &tag, 2);
                    handoff(&rt, &stores, polls)
                })
                .collect();
            let per_action = median(times).as_secs_f64() * 1000.0 / actions;
            let base = *fast.get_or_insert(per_action);
            println!(
                "{backend:<10} {:>8} {per_action:>14.2} {:>15.2}x",
                polls.name,
                per_action / base
            );
        }
    }
}
