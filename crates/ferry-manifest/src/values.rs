//! Formats of the values a manifest holds: durations, traffic shifting, AWS names.
//!
//! These are public because the command line accepts the same notations
//! (`ferry deploy lambda --traffic "canary 10% 5m" --timeout 10m`).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Parses `30s`, `10m`, `1h30m`, `7d`: one or more `<number><unit>` with units s, m, h, d.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration; write it like `30s`, `10m`, `1h30m` or `7d`");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{text}` has no unit after {digits}; add s, m, h or d (e.g. `{digits}m`)"
        ));
    }
    Ok(Duration::from_secs(total))
}

/// Writes a duration the way [`parse_duration`] reads it: `90s` → `1m30s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    if secs.is_multiple_of(86_400) {
        return format!("{}d", secs / 86_400);
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// How a Lambda alias moves from the old version to the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// The alias points at the new version at once.
    AllAtOnce,
    /// `percent` of requests go to the new version for `bake`, then all of them.
    Canary { percent: u8, bake: Duration },
    /// The share of the new version grows by `percent` every `interval` until it is 100%.
    Linear { percent: u8, interval: Duration },
}

impl Traffic {
    /// Longest bake or step interval accepted.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(2 * 86_400);

    /// Parses `all-at-once`, `canary 10% 5m` or `linear 10% every 1m`.
    pub fn parse(text: &str) -> Result<Traffic, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let usage = "write `all-at-once`, `canary <percent>% <bake>` (e.g. `canary 10% 5m`) or `linear <percent>% every <interval>` (e.g. `linear 20% every 1m`)";
        let traffic = match words.as_slice() {
            ["all-at-once"] => Traffic::AllAtOnce,
            ["canary", pct, bake] => Traffic::Canary {
                percent: parse_percent(pct)?,
                bake: parse_duration(bake)?,
            },
            ["linear", pct, "every", interval] => Traffic::Linear {
                percent: parse_percent(pct)?,
                interval: parse_duration(interval)?,
            },
            _ => return Err(format!("`{text}` is not a traffic shift; {usage}")),
        };
        match traffic {
            Traffic::Canary { bake: d, .. } | Traffic::Linear { interval: d, .. }
                if d.is_zero() || d > Self::MAX_INTERVAL =>
            {
                Err(format!(
                    "the wait in `{text}` must be between 1s and {}",
                    format_duration(Self::MAX_INTERVAL)
                ))
            }
            t => Ok(t),
        }
    }

    /// The routing weights of the new version over time: `(weight, wait after it)`.
    /// The last step is always `(1.0, 0)`.
    pub fn steps(&self) -> Vec<(f64, Duration)> {
        match *self {
            Traffic::AllAtOnce => vec![(1.0, Duration::ZERO)],
            Traffic::Canary { percent, bake } => {
                vec![(f64::from(percent) / 100.0, bake), (1.0, Duration::ZERO)]
            }
            Traffic::Linear { percent, interval } => {
                let mut steps = Vec::new();
                let mut pct = u32::from(percent);
                while pct < 100 {
                    steps.push((f64::from(pct) / 100.0, interval));
                    pct += u32::from(percent);
                }
                steps.push((1.0, Duration::ZERO));
                steps
            }
        }
    }
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Traffic::AllAtOnce => f.write_str("all-at-once"),
            Traffic::Canary { percent, bake } => {
                write!(f, "canary {percent}% {}", format_duration(*bake))
            }
            Traffic::Linear { percent, interval } => {
                write!(f, "linear {percent}% every {}", format_duration(*interval))
            }
        }
    }
}

impl Serialize for Traffic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn parse_percent(text: &str) -> Result<u8, String> {
    let number = text
        .strip_suffix('%')
        .ok_or_else(|| format!("`{text}` is not a percentage; write it like `10%`"))?;
    match number.parse::<u8>() {
        Ok(n) if (1..=99).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{text}` is out of range: the share of traffic must be between 1% and 99%"
        )),
    }
}

/// Checks of AWS and ferry names. Each returns what is wrong, or `None` when the name is fine.
pub mod names {
    fn only(s: &str, extra: &str) -> bool {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    }

    fn length(s: &str, min: usize, max: usize) -> Option<String> {
        let n = s.chars().count();
        (n < min || n > max).then(|| format!("it has {n} characters; it must have {min} to {max}"))
    }

    pub fn account_id(s: &str) -> Option<String> {
        (s.len() != 12 || !s.chars().all(|c| c.is_ascii_digit()))
            .then(|| "an AWS account id is exactly 12 digits".to_owned())
    }

    pub fn region(s: &str) -> Option<String> {
        let parts: Vec<&str> = s.split('-').collect();
        let ok = parts.len() >= 3
            && parts[0].len() == 2
            && parts.iter().all(|p| !p.is_empty() && only(p, ""))
            && parts[..parts.len() - 1]
                .iter()
                .all(|p| p.chars().all(|c| c.is_ascii_lowercase()))
            && parts[parts.len() - 1].chars().all(|c| c.is_ascii_digit());
        (!ok).then(|| "a region looks like `eu-west-1` or `us-gov-west-1`".to_owned())
    }

    pub fn pipeline(s: &str) -> Option<String> {
        let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.ends_with('-');
        length(s, 1, 32).or_else(|| {
            (!ok)
                .then(|| "use lowercase letters, digits and `-`, starting with a letter".to_owned())
        })
    }

    /// Stage, action, environment, account and artifact names.
    pub fn label(s: &str) -> Option<String> {
        length(s, 1, 64)
            .or_else(|| (!only(s, "-_")).then(|| "use letters, digits, `-` and `_`".to_owned()))
    }

    pub fn iam_role(s: &str) -> Option<String> {
        length(s, 1, 64).or_else(|| {
            (!only(s, "_+=,.@-"))
                .then(|| "an IAM role name uses letters, digits and `_+=,.@-`".to_owned())
        })
    }

    pub fn external_id(s: &str) -> Option<String> {
        length(s, 2, 1224).or_else(|| {
            (!only(s, "_+=,.@:/-"))
                .then(|| "an ExternalId uses letters, digits and `_+=,.@:/-`".to_owned())
        })
    }

    pub fn bucket(s: &str) -> Option<String> {
        length(s, 3, 63).or_else(|| {
            let ok = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.ends_with(|c: char| c.is_ascii_alphanumeric())
                && !s.contains("..");
            (!ok).then(|| "a bucket name uses lowercase letters, digits, `-` and `.`, and starts and ends with a letter or digit".to_owned())
        })
    }

    pub fn kms_alias(s: &str) -> Option<String> {
        let Some(rest) = s.strip_prefix("alias/") else {
            return Some("a KMS alias starts with `alias/`".to_owned());
        };
        if rest.starts_with("aws/") {
            return Some("`alias/aws/` is reserved for AWS managed keys, which cannot be shared across accounts".to_owned());
        }
        length(rest, 1, 250).or_else(|| {
            (!only(rest, "/_-")).then(|| "a KMS alias uses letters, digits and `/_-`".to_owned())
        })
    }

    /// A container image by tag or digest: `registry/name:tag` or `registry/name@sha256:…`.
    pub fn image(s: &str) -> Option<String> {
        let name = s.rsplit('/').next().unwrap_or(s);
        let pinned = name.contains(':') || s.contains("@sha256:");
        let ok = !s.is_empty()
            && !s.chars().any(char::is_whitespace)
            && pinned
            && !s.ends_with(":latest");
        (!ok).then(|| {
            "name the image with its tag or digest (not `latest`): `111111111111.dkr.ecr.eu-west-1.amazonaws.com/ferry:0.1.0`".to_owned()
        })
    }

    /// A CodeConnections (or CodeStar Connections) connection ARN.
    pub fn connection_arn(s: &str) -> Option<String> {
        let parts: Vec<&str> = s.split(':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && matches!(parts[2], "codeconnections" | "codestar-connections")
            && parts[5].starts_with("connection/")
            && parts[5].len() > "connection/".len();
        (!ok).then(|| "a connection ARN looks like `arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-…`".to_owned())
    }

    /// A GitHub repository as `OWNER/NAME` (what GitHub's OIDC token names in `sub`).
    pub fn github_repository(s: &str) -> Option<String> {
        let ok = s.split_once('/').is_some_and(|(owner, name)| {
            !owner.is_empty()
                && !name.is_empty()
                && only(owner, "-")
                && only(name, "-_.")
                && !owner.starts_with('-')
        });
        (!ok).then(|| "name it as `OWNER/NAME`, e.g. `acme/orders` (not its URL)".to_owned())
    }

    /// A branch name as the trust policy matches it exactly: a git ref name without
    /// wildcards, spaces or `refs/heads/`.
    pub fn git_branch(s: &str) -> Option<String> {
        let ok = !s.is_empty()
            && !s.starts_with("refs/")
            && !s.starts_with('/')
            && !s.ends_with('/')
            && !s.contains("..")
            && only(s, "-_./");
        (!ok).then(|| "name one branch as git does, e.g. `main` or `release/2026` (no `refs/heads/`, no wildcards: the trust matches it exactly)".to_owned())
    }

    /// A CodeBuild compute type, such as `BUILD_GENERAL1_SMALL` or `BUILD_LAMBDA_2GB`.
    pub fn compute_type(s: &str) -> Option<String> {
        let ok = s.strip_prefix("BUILD_").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        });
        (!ok).then(|| "a CodeBuild compute type looks like `BUILD_GENERAL1_SMALL`, `BUILD_GENERAL1_MEDIUM` or `BUILD_LAMBDA_2GB`".to_owned())
    }

    pub fn vpc(s: &str) -> Option<String> {
        aws_id(s, "vpc").then(|| "a VPC id looks like `vpc-0abc1234`".to_owned())
    }

    pub fn subnet(s: &str) -> Option<String> {
        aws_id(s, "subnet").then(|| "a subnet id looks like `subnet-0abc1234`".to_owned())
    }

    pub fn security_group(s: &str) -> Option<String> {
        aws_id(s, "sg").then(|| "a security group id looks like `sg-0abc1234`".to_owned())
    }

    /// True when `s` is not `<prefix>-` and 8 or 17 hex digits.
    fn aws_id(s: &str, prefix: &str) -> bool {
        let hex = s.strip_prefix(prefix).and_then(|r| r.strip_prefix('-'));
        !hex.is_some_and(|h| {
            (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_hexdigit())
        })
    }

    pub fn ipv4_cidr(s: &str) -> Option<String> {
        let ok = s.split_once('/').is_some_and(|(ip, bits)| {
            ip.parse::<std::net::Ipv4Addr>().is_ok()
                && bits.parse::<u8>().is_ok_and(|b| b <= 32)
                && !bits.starts_with('+')
        });
        (!ok).then(|| "a CIDR block looks like `10.0.0.0/16`".to_owned())
    }

    pub fn ecr_repository(s: &str) -> Option<String> {
        let segment_ok = |seg: &str| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && seg.starts_with(|c: char| c.is_ascii_alphanumeric())
                && seg.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        length(s, 2, 256).or_else(|| {
            (!s.split('/').all(segment_ok)).then(|| {
                "an ECR repository name uses lowercase letters, digits and `._-`, in segments separated by `/`".to_owned()
            })
        })
    }

    pub fn lambda_function(s: &str) -> Option<String> {
        length(s, 1, 64).or_else(|| {
            (!only(s, "-_")).then(|| "a function name uses letters, digits, `-` and `_`".to_owned())
        })
    }

    pub fn lambda_alias(s: &str) -> Option<String> {
        length(s, 1, 128)
            .or_else(|| {
                (!only(s, "-_")).then(|| "an alias uses letters, digits, `-` and `_`".to_owned())
            })
            .or_else(|| {
                s.chars()
                    .all(|c| c.is_ascii_digit())
                    .then(|| "an alias cannot be only digits (that is a version)".to_owned())
            })
    }

    pub fn ecs_name(s: &str) -> Option<String> {
        length(s, 1, 255).or_else(|| {
            (!only(s, "-_")).then(|| {
                "ECS cluster and service names use letters, digits, `-` and `_`".to_owned()
            })
        })
    }

    pub fn alarm(s: &str) -> Option<String> {
        length(s, 1, 255).or_else(|| {
            s.chars()
                .any(char::is_control)
                .then(|| "an alarm name cannot hold control characters".to_owned())
        })
    }

    pub fn env_var(s: &str) -> Option<String> {
        let ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && only(s, "_");
        (!ok).then(|| "an environment variable name uses letters, digits and `_`, and does not start with a digit".to_owned())
    }

    pub fn secret_id(s: &str) -> Option<String> {
        // CodeBuild's form: `secret-id[:json-key[:version-stage[:version-id]]]`.
        let (id, rest): (String, Vec<&str>) = if let Some(arn) = s.strip_prefix("arn:") {
            let parts: Vec<&str> = arn.split(':').collect();
            (
                format!("arn:{}", parts[..parts.len().min(6)].join(":")),
                parts.get(6..).map(<[&str]>::to_vec).unwrap_or_default(),
            )
        } else {
            let mut parts = s.split(':');
            (parts.next().unwrap_or_default().to_owned(), parts.collect())
        };
        let usage = "write `<name or ARN>[:<json-key>[:<version-stage>[:<version-id>]]]`";
        if rest.len() > 3 || (rest.len() == 1 && rest[0].is_empty()) {
            return Some(format!("`{s}` has too many parts; {usage}"));
        }
        if let Some(arn) = id.strip_prefix("arn:") {
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            let ok = parts.len() == 6
                && parts[0].starts_with("aws")
                && parts[1] == "secretsmanager"
                && region(parts[2]).is_none()
                && account_id(parts[3]).is_none()
                && parts[4] == "secret"
                && !parts[5].is_empty();
            return (!ok).then(|| "a secret ARN looks like `arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders/db-AbCdEf`".to_owned());
        }
        length(&id, 1, 512).or_else(|| {
            (!only(&id, "/_+=.@-"))
                .then(|| format!("a secret name uses letters, digits and `/_+=.@-`; {usage}"))
        })
    }

    /// A path inside an artifact: relative, without `..`.
    pub fn artifact_path(s: &str) -> Option<String> {
        (s.starts_with('/') || s.split('/').any(|seg| seg == ".."))
            .then(|| "a path inside an artifact is relative and has no `..`".to_owned())
    }
}

/// A build's use of a variable an earlier build exported: `#{stage.action.NAME}` in an
/// `env` value, as CodePipeline writes `#{namespace.NAME}`. The engine replaces `text` with
/// the value the named build left in `NAME` (its buildspec's `env.exported-variables`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ExportedRef {
    pub stage: String,
    pub action: String,
    pub variable: String,
}

impl ExportedRef {
    /// How the reference is written.
    pub fn text(&self) -> String {
        format!("#{{{}.{}.{}}}", self.stage, self.action, self.variable)
    }
}

/// Every `#{stage.action.NAME}` in `text`, with its byte range; the error says what is wrong
/// with the first malformed one. `#` not followed by `{` is text.
pub fn exported_refs(text: &str) -> Result<Vec<(std::ops::Range<usize>, ExportedRef)>, String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("#{").map(|i| i + from) {
        let Some(len) = text[at..].find('}') else {
            return Err(format!(
                "`{}` is not closed; write `#{{stage.action.NAME}}`",
                &text[at..]
            ));
        };
        let inner = &text[at + 2..at + len];
        let parts: Vec<&str> = inner.split('.').collect();
        let word = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if parts.len() != 3 || !parts.iter().all(|p| word(p)) {
            let hint = if parts.len() == 2 {
                " (ferry names the build by its stage and action: `#{build.app.VERSION}`)"
            } else {
                ""
            };
            return Err(format!(
                "`#{{{inner}}}` is not `#{{stage.action.NAME}}`{hint}"
            ));
        }
        out.push((
            at..at + len + 1,
            ExportedRef {
                stage: parts[0].to_owned(),
                action: parts[1].to_owned(),
                variable: parts[2].to_owned(),
            },
        ));
        from = at + len + 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [("30s", 30), ("10m", 600), ("1h30m", 5400), ("7d", 604_800)] {
            assert_eq!(parse_duration(text).unwrap(), Duration::from_secs(secs));
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
        assert!(parse_duration("10").unwrap_err().contains("no unit"));
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn traffic_parses_the_three_forms_and_their_steps() {
        assert_eq!(Traffic::parse("all-at-once").unwrap(), Traffic::AllAtOnce);
        let canary = Traffic::parse("canary 10% 5m").unwrap();
        assert_eq!(canary.to_string(), "canary 10% 5m");
        assert_eq!(
            canary.steps(),
            vec![(0.1, Duration::from_secs(300)), (1.0, Duration::ZERO)]
        );
        let linear = Traffic::parse("linear 40% every 1m").unwrap();
        let weights: Vec<f64> = linear.steps().iter().map(|s| s.0).collect();
        assert_eq!(weights, vec![0.4, 0.8, 1.0]);
        assert!(
            Traffic::parse("canary 0% 5m")
                .unwrap_err()
                .contains("between 1% and 99%")
        );
        assert!(
            Traffic::parse("canary 10% 3d")
                .unwrap_err()
                .contains("between 1s and 2d")
        );
        assert!(Traffic::parse("blue-green").is_err());
    }

    #[test]
    fn names_accept_the_real_thing_and_refuse_near_misses() {
        use names::*;
        assert!(account_id("012345678901").is_none());
        assert!(account_id("12345").is_some());
        assert!(region("eu-west-1").is_none());
        assert!(region("us-gov-west-1").is_none());
        assert!(region("EU-west-1").is_some());
        assert!(region("euwest1").is_some());
        assert!(bucket("ferry-orders-artifacts").is_none());
        assert!(bucket("Ferry_Orders").is_some());
        assert!(kms_alias("alias/ferry-orders").is_none());
        assert!(kms_alias("alias/aws/s3").is_some());
        assert!(ecr_repository("team/orders-api").is_none());
        assert!(ecr_repository("Team/Orders").is_some());
        assert!(lambda_alias("live").is_none());
        assert!(lambda_alias("42").is_some());
        assert!(github_repository("acme/orders.api").is_none());
        assert!(github_repository("github.com/acme/orders").is_some());
        assert!(github_repository("acme").is_some());
        assert!(git_branch("release/2026.1").is_none());
        assert!(git_branch("feature/*").is_some());
        assert!(git_branch("a..b").is_some());
        assert!(secret_id("orders/npm-token").is_none());
        assert!(
            secret_id("arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders/db-AbCdEf")
                .is_none()
        );
        assert!(secret_id("arn:aws:s3:::bucket").is_some());
        assert!(secret_id("orders/db:password").is_none());
        assert!(secret_id("orders/db:password:AWSPREVIOUS").is_none());
        assert!(
            secret_id(
                "arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders/db-AbCdEf:password"
            )
            .is_none()
        );
        assert!(secret_id("orders/db:a:b:c:d").is_some());
        assert!(secret_id("orders/db:").is_some());
        assert!(artifact_path("dist/function.zip").is_none());
        assert!(artifact_path("../x").is_some());
    }

    #[test]
    fn exported_refs_are_found_with_their_ranges() {
        let text = "v#{build.app.VERSION}-#{test.unit.REPORT} and # alone";
        let refs = exported_refs(text).unwrap();
        assert_eq!(refs.len(), 2);
        assert_eq!(&text[refs[0].0.clone()], "#{build.app.VERSION}");
        assert_eq!(refs[1].1.text(), "#{test.unit.REPORT}");
        assert!(
            exported_refs("#{BuildVariables.VERSION}")
                .unwrap_err()
                .contains("stage and action")
        );
        assert!(
            exported_refs("#{build.app")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(exported_refs("#{a.b.c d}").is_err());
    }
}
