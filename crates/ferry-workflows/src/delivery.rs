//! What runs where, and how delivery goes. [`environments`] is each environment's deploys with
//! the release running now (the ledger's latest that put a version in place); [`measure`]
//! computes the four DORA measures per environment from the ledger — deployment frequency,
//! lead time from commit to the environment, change failure rate, time to restore — over a
//! window, in weekly buckets for charts. `measure` is pure: the clock and the commit times
//! come in, so it is tested on ledgers written by hand.

use std::collections::{BTreeMap, HashMap};

use ferry_engine::model::Release;
use ferry_manifest::Manifest;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::project::Project;
use crate::releases::{self, LiveVersion};

/// One environment and what runs in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvironmentStatus {
    pub environment: String,
    /// Its account's name in the manifest.
    pub account: String,
    /// Whether a person approves each release into it.
    pub approval: bool,
    pub deploys: Vec<DeployStatus>,
}

/// One deploy target of an environment, and its current release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeployStatus {
    /// The deploy action's name in the manifest.
    pub action: String,
    /// The target as the ledger names it, e.g. `lambda:orders-fn:live`.
    pub target: String,
    /// The newest release that put a version in place (deployed or restored); `None` before
    /// the first.
    pub current: Option<Release>,
    /// The newest entry of any outcome, when it is not `current` (a failed or rolled-back
    /// attempt since).
    pub latest_attempt: Option<Release>,
    /// What runs in the account now, when it was read ([`environments_live`]).
    pub live: Option<LiveVersion>,
    /// The account runs another version than the ledger's current release: someone changed
    /// it outside ferry.
    pub drift: bool,
}

/// Each environment of the manifest with its deploys' current releases.
pub fn environments(project: &Project) -> Result<Vec<EnvironmentStatus>> {
    environments_of(&project.load()?, project)
}

fn environments_of(manifest: &Manifest, project: &Project) -> Result<Vec<EnvironmentStatus>> {
    let store = project.store()?;
    let mut out = Vec::new();
    for env in &manifest.environments {
        let ledger = store.releases(&manifest.pipeline, Some(&env.name), None, 500)?;
        let deploys = manifest
            .deployments()
            .filter(|(stage, _, _)| stage.environment.as_deref() == Some(env.name.as_str()))
            .filter_map(|(_, _, action)| {
                let target = action.kind.release_target()?.to_string();
                let mine = || ledger.iter().filter(|r| r.record.target == target);
                let current = mine()
                    .find(|r| matches!(r.record.outcome.as_str(), "Deployed" | "Restored"))
                    .cloned();
                let latest_attempt = mine()
                    .next()
                    .filter(|r| Some(*r) != current.as_ref())
                    .cloned();
                Some(DeployStatus {
                    action: action.name.clone(),
                    target,
                    current,
                    latest_attempt,
                    live: None,
                    drift: false,
                })
            })
            .collect();
        out.push(EnvironmentStatus {
            environment: env.name.clone(),
            account: env.account.clone(),
            approval: env.approval.is_some(),
            deploys,
        });
    }
    Ok(out)
}

/// As [`environments`], with what each account runs now and whether it drifted from the
/// ledger: one read per deploy, through the environment's deploy role.
pub async fn environments_live(project: &Project) -> Result<Vec<EnvironmentStatus>> {
    let manifest = project.load()?;
    let mut envs = environments_of(&manifest, project)?;
    for env in &mut envs {
        let live = releases::live_versions(&manifest, &env.environment).await?;
        for d in &mut env.deploys {
            d.live = live.iter().find(|l| l.target == d.target).cloned();
            d.drift = drifted(d.current.as_ref(), d.live.as_ref());
        }
    }
    Ok(envs)
}

/// Whether the account runs a version the ledger's current release is not. Unknown (not
/// read) is no drift.
fn drifted(current: Option<&Release>, live: Option<&LiveVersion>) -> bool {
    match (current, live.and_then(|l| l.version.as_deref())) {
        (Some(c), Some(v)) => c.record.version != v,
        (None, Some(_)) => true,
        (_, None) => false,
    }
}

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;

/// The DORA measures of each environment over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryReport {
    pub from_ms: i64,
    pub to_ms: i64,
    pub environments: Vec<EnvironmentDelivery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvironmentDelivery {
    pub environment: String,
    /// Successful deployments (an execution's deploys into the environment, none failed).
    pub deployments: u32,
    pub deployments_per_week: f64,
    /// Median time from the commit to its successful deployment here.
    pub lead_time_median_secs: Option<f64>,
    /// Attempts that failed or were rolled back, of all attempts.
    pub change_failure_rate: Option<f64>,
    /// Median time from a failed attempt to the next good version in place.
    pub time_to_restore_median_secs: Option<f64>,
    /// Week by week, oldest first.
    pub weeks: Vec<DeliveryWeek>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeliveryWeek {
    pub start_ms: i64,
    pub deployments: u32,
    pub failures: u32,
    pub lead_time_median_secs: Option<f64>,
}

/// One execution's deploys into one environment.
struct Attempt<'a> {
    at_ms: i64,
    revision: &'a str,
    failed: bool,
}

/// The measures over `[now_ms - weeks, now_ms]`. `ledgers` is each environment's ledger (any
/// order); `commit_ms` the commit time of each revision that is known.
pub fn measure(
    ledgers: &[(String, Vec<Release>)],
    commit_ms: &HashMap<String, i64>,
    now_ms: i64,
    weeks: u32,
) -> DeliveryReport {
    let weeks = weeks.max(1);
    let from_ms = now_ms - i64::from(weeks) * WEEK_MS;
    let environments = ledgers
        .iter()
        .map(|(env, ledger)| measure_one(env, ledger, commit_ms, from_ms, now_ms, weeks))
        .collect();
    DeliveryReport {
        from_ms,
        to_ms: now_ms,
        environments,
    }
}

fn measure_one(
    environment: &str,
    ledger: &[Release],
    commit_ms: &HashMap<String, i64>,
    from_ms: i64,
    now_ms: i64,
    weeks: u32,
) -> EnvironmentDelivery {
    // A version a later `ferry rollback` moved away from was a failed change too.
    let restored_from: Vec<&str> = ledger
        .iter()
        .filter(|r| r.record.outcome == "Restored")
        .filter_map(|r| r.record.previous_version.as_deref())
        .collect();
    let mut by_execution: BTreeMap<&str, Attempt<'_>> = BTreeMap::new();
    for r in ledger.iter().filter(|r| r.record.outcome != "Restored") {
        let failed = matches!(r.record.outcome.as_str(), "RolledBack" | "Failed")
            || restored_from.contains(&r.record.version.as_str());
        let a = by_execution.entry(&r.execution_id).or_insert(Attempt {
            at_ms: r.created_ms,
            revision: &r.revision,
            failed: false,
        });
        a.at_ms = a.at_ms.max(r.created_ms);
        a.failed |= failed;
    }
    let mut attempts: Vec<Attempt<'_>> = by_execution.into_values().collect();
    attempts.sort_by_key(|a| a.at_ms);
    // Good versions put in place, for time to restore: successful attempts and restores.
    let mut good: Vec<i64> = attempts
        .iter()
        .filter(|a| !a.failed)
        .map(|a| a.at_ms)
        .chain(
            ledger
                .iter()
                .filter(|r| r.record.outcome == "Restored")
                .map(|r| r.created_ms),
        )
        .collect();
    good.sort_unstable();

    let in_window: Vec<&Attempt<'_>> = attempts
        .iter()
        .filter(|a| a.at_ms >= from_ms && a.at_ms <= now_ms)
        .collect();
    let lead = |a: &Attempt<'_>| {
        commit_ms
            .get(a.revision)
            .map(|c| ((a.at_ms - c).max(0) as f64) / 1000.0)
    };
    let succeeded: Vec<&&Attempt<'_>> = in_window.iter().filter(|a| !a.failed).collect();
    let failures = in_window.iter().filter(|a| a.failed).count();
    let restores: Vec<f64> = in_window
        .iter()
        .filter(|a| a.failed)
        .filter_map(|a| {
            let restored = good.iter().find(|&&g| g > a.at_ms)?;
            Some(((restored - a.at_ms) as f64) / 1000.0)
        })
        .collect();
    let weeks_list = (0..weeks)
        .map(|i| {
            let start_ms = from_ms + i64::from(i) * WEEK_MS;
            let end = start_ms + WEEK_MS;
            let here: Vec<&&Attempt<'_>> = in_window
                .iter()
                .filter(|a| a.at_ms >= start_ms && (a.at_ms < end || (i + 1 == weeks)))
                .collect();
            DeliveryWeek {
                start_ms,
                deployments: count(here.iter().filter(|a| !a.failed).count()),
                failures: count(here.iter().filter(|a| a.failed).count()),
                lead_time_median_secs: median(
                    here.iter()
                        .filter(|a| !a.failed)
                        .filter_map(|a| lead(a))
                        .collect(),
                ),
            }
        })
        .collect();
    EnvironmentDelivery {
        environment: environment.to_owned(),
        deployments: count(succeeded.len()),
        deployments_per_week: succeeded.len() as f64 / f64::from(weeks),
        lead_time_median_secs: median(succeeded.iter().filter_map(|a| lead(a)).collect()),
        change_failure_rate: (!in_window.is_empty())
            .then(|| failures as f64 / in_window.len() as f64),
        time_to_restore_median_secs: median(restores),
        weeks: weeks_list,
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        f64::midpoint(values[mid - 1], values[mid])
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use ferry_engine::model::ReleaseRecord;

    use super::*;

    const H: i64 = 3600 * 1000;

    fn release(
        execution: &str,
        revision: &str,
        at_ms: i64,
        outcome: &str,
        version: &str,
    ) -> Release {
        Release {
            id: 0,
            pipeline: "orders".into(),
            environment: "prod".into(),
            execution_id: execution.into(),
            revision: revision.into(),
            approved_by: Some("alice".into()),
            gate_override: None,
            created_ms: at_ms,
            record: ReleaseRecord {
                target: "lambda:orders-fn:live".into(),
                version: version.into(),
                digest: None,
                previous_version: None,
                details: serde_json::Value::Null,
                outcome: outcome.into(),
                verified: outcome == "Deployed",
            },
            blocked: None,
        }
    }

    #[test]
    fn the_four_measures_come_from_the_ledger_and_the_commit_times() {
        let now = 100 * 24 * H;
        let ledger = vec![
            // Good, committed 2 h before.
            release("orders-1", "a", now - 20 * 24 * H, "Deployed", "1"),
            // Failed and rolled back by itself; restored 3 h later by orders-3.
            release("orders-2", "b", now - 10 * 24 * H, "RolledBack", "2"),
            release("orders-3", "c", now - 10 * 24 * H + 3 * H, "Deployed", "3"),
            // Good at first, then `ferry rollback` moved away from it an hour later.
            release("orders-4", "d", now - 2 * 24 * H, "Deployed", "4"),
            {
                let mut r = release("orders-3", "c", now - 2 * 24 * H + H, "Restored", "3");
                r.record.previous_version = Some("4".into());
                r
            },
            // Outside the window: not counted.
            release("orders-0", "z", now - 60 * 24 * H, "Failed", "0"),
        ];
        let commits: HashMap<String, i64> = [
            ("a".to_owned(), now - 20 * 24 * H - 2 * H),
            ("c".to_owned(), now - 10 * 24 * H - H),
        ]
        .into();
        let report = measure(&[("prod".into(), ledger)], &commits, now, 4);
        let prod = &report.environments[0];
        assert_eq!(prod.deployments, 2, "orders-1 and orders-3");
        assert!((prod.deployments_per_week - 0.5).abs() < 1e-9);
        // Lead times 2 h and 4 h: the median is 3 h.
        assert_eq!(prod.lead_time_median_secs, Some(3.0 * 3600.0));
        assert_eq!(
            prod.change_failure_rate,
            Some(0.5),
            "orders-2 and orders-4 of four"
        );
        // Restored after 3 h (orders-3) and after 1 h (the rollback): median 2 h.
        assert_eq!(prod.time_to_restore_median_secs, Some(2.0 * 3600.0));
        assert_eq!(prod.weeks.len(), 4);
        let per_week: Vec<(u32, u32)> = prod
            .weeks
            .iter()
            .map(|w| (w.deployments, w.failures))
            .collect();
        assert_eq!(per_week, [(0, 0), (1, 0), (1, 1), (0, 1)]);
    }

    #[test]
    fn a_version_the_ledger_did_not_put_there_is_drift() {
        let now = release("orders-1", "a", 0, "Deployed", "3");
        let live = |v: Option<&str>| LiveVersion {
            target: "lambda:orders-fn:live".into(),
            version: v.map(str::to_owned),
            error: None,
        };
        assert!(!drifted(Some(&now), Some(&live(Some("3")))));
        assert!(
            drifted(Some(&now), Some(&live(Some("4")))),
            "changed by hand"
        );
        assert!(
            drifted(None, Some(&live(Some("1")))),
            "deployed outside ferry"
        );
        assert!(
            !drifted(Some(&now), Some(&live(None))),
            "unreadable is not drift"
        );
        assert!(!drifted(Some(&now), None));
    }

    #[test]
    fn an_environment_never_deployed_has_no_measures_but_zero_deployments() {
        let report = measure(&[("qa".into(), vec![])], &HashMap::new(), 10 * WEEK_MS, 2);
        let qa = &report.environments[0];
        assert_eq!(qa.deployments, 0);
        assert_eq!(qa.lead_time_median_secs, None);
        assert_eq!(qa.change_failure_rate, None);
        assert_eq!(qa.time_to_restore_median_secs, None);
        assert!(qa.weeks.iter().all(|w| w.deployments == 0));
    }
}
