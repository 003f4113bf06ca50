//! The catalogue of AWS actions, resource types and condition keys (`data/README.md`):
//! which actions exist, what they act on, which are wildcard-only.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use serde::Deserialize;

static DATA: &[u8] = include_bytes!("../data/iam-catalog.json.gz");

#[derive(Debug, Deserialize)]
struct Raw {
    source: String,
    updated_at: String,
    services: HashMap<String, RawService>,
}

#[derive(Debug, Deserialize)]
struct RawService {
    actions: HashMap<String, ActionInfo>,
    resources: HashMap<String, ResourceType>,
    conditions: HashMap<String, String>,
}

/// One action of a service.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionInfo {
    /// `Read`, `List`, `Write`, `Tagging` or `Permissions management`.
    pub access: String,
    /// Resource types it acts on; empty for wildcard-only actions.
    pub resources: Vec<ActionResource>,
    pub conditions: Vec<String>,
    pub dependent: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ActionResource {
    pub name: String,
    pub required: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceType {
    /// e.g. `arn:${Partition}:ecr:${Region}:${Account}:repository/${RepositoryName}`.
    pub arn: String,
    pub conditions: Vec<String>,
}

/// A service: its actions by lowercased name (keeping the proper name).
#[derive(Debug)]
pub struct Service {
    pub prefix: String,
    actions: HashMap<String, (String, ActionInfo)>,
    pub resources: HashMap<String, ResourceType>,
    /// Condition key (lowercased) → type.
    conditions: HashMap<String, String>,
}

impl Service {
    /// Proper-case names of every action.
    pub fn action_names(&self) -> impl Iterator<Item = &str> {
        self.actions.values().map(|(n, _)| n.as_str())
    }

    pub fn action(&self, name: &str) -> Option<(&str, &ActionInfo)> {
        self.actions
            .get(&name.to_ascii_lowercase())
            .map(|(n, a)| (n.as_str(), a))
    }

    /// Whether the service defines a condition key (templated keys such as
    /// `ecr:ResourceTag/${TagKey}` match any tag).
    pub fn has_condition(&self, key: &str) -> bool {
        let lower = key.to_ascii_lowercase();
        self.conditions.contains_key(&lower)
            || self.conditions.keys().any(|k| {
                k.split_once("${").is_some_and(|(prefix, _)| {
                    lower.starts_with(prefix) && lower.len() > prefix.len()
                })
            })
    }
}

/// The whole catalogue.
#[derive(Debug)]
pub struct Catalog {
    pub source: String,
    pub updated_at: String,
    services: HashMap<String, Service>,
}

/// The catalogue, decompressed and indexed on first use (about 30 ms).
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(DATA)
            .read_to_end(&mut json)
            .expect("the vendored IAM catalogue is valid gzip");
        let raw: Raw =
            serde_json::from_slice(&json).expect("the vendored IAM catalogue is valid JSON");
        let services = raw
            .services
            .into_iter()
            .map(|(prefix, s)| {
                let service = Service {
                    prefix: prefix.clone(),
                    actions: s
                        .actions
                        .into_iter()
                        .map(|(name, a)| (name.to_ascii_lowercase(), (name, a)))
                        .collect(),
                    resources: s.resources,
                    conditions: s
                        .conditions
                        .into_iter()
                        .map(|(k, t)| (k.to_ascii_lowercase(), t))
                        .collect(),
                };
                (prefix, service)
            })
            .collect();
        Catalog {
            source: raw.source,
            updated_at: raw.updated_at,
            services,
        }
    })
}

impl Catalog {
    pub fn service(&self, prefix: &str) -> Option<&Service> {
        self.services.get(&prefix.to_ascii_lowercase())
    }

    pub fn service_prefixes(&self) -> impl Iterator<Item = &str> {
        self.services.keys().map(String::as_str)
    }

    /// `service:Action` → its proper name and information.
    pub fn action(&self, action: &str) -> Option<(String, &ActionInfo)> {
        let (prefix, name) = action.split_once(':')?;
        let service = self.service(prefix)?;
        service
            .action(name)
            .map(|(n, a)| (format!("{}:{n}", service.prefix), a))
    }

    /// Every action a pattern (`s3:Get*`, `*`) covers, proper-cased.
    pub fn expand(&self, pattern: &crate::pattern::ActionPattern) -> Vec<String> {
        let prefix = pattern.service();
        let services: Vec<&Service> = if prefix == "*" || prefix.contains(['*', '?']) {
            self.services.values().collect()
        } else {
            self.service(&prefix).into_iter().collect()
        };
        let mut out: Vec<String> = services
            .iter()
            .flat_map(|s| s.action_names().map(move |n| format!("{}:{n}", s.prefix)))
            .filter(|a| pattern.matches(a))
            .collect();
        out.sort();
        out
    }

    /// Whether an action acts on no resource type, so only `"Resource": "*"` grants it.
    pub fn is_wildcard_only(&self, action: &str) -> bool {
        self.action(action)
            .is_some_and(|(_, a)| a.resources.is_empty())
    }

    /// The ARN templates of the resource types an action acts on.
    pub fn arn_templates(&self, action: &str) -> Vec<&str> {
        let Some((prefix, _)) = action.split_once(':') else {
            return Vec::new();
        };
        let Some(service) = self.service(prefix) else {
            return Vec::new();
        };
        let Some((_, info)) = service.action(action.split_once(':').map_or("", |(_, n)| n)) else {
            return Vec::new();
        };
        info.resources
            .iter()
            .filter_map(|r| service.resources.get(&r.name).map(|t| t.arn.as_str()))
            .collect()
    }
}

/// Whether some ARN matches both a resource pattern (`*`/`?` wildcards) and an ARN template
/// of the catalogue (`${Variable}` placeholders). Variables stand for one or more characters
/// other than `:` and `/`, except a last variable after a `/` (object keys, repository
/// names), which may hold `/`.
pub fn template_may_match(template: &str, pattern: &str) -> bool {
    let a = compile_pattern(pattern);
    let b = compile_template(template);
    let mut seen = std::collections::HashSet::new();
    intersects(&a, &b, 0, 0, &mut seen)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Any character.
    Any,
    /// Any character but `:` and `/`.
    Segment,
    /// Any character but `:`.
    Path,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Lit(char),
    One(Class),
    Many(Class),
}

fn compile_pattern(p: &str) -> Vec<Elem> {
    p.chars()
        .map(|c| match c {
            '*' => Elem::Many(Class::Any),
            '?' => Elem::One(Class::Any),
            c => Elem::Lit(c),
        })
        .collect()
}

fn compile_template(t: &str) -> Vec<Elem> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("${") {
        out.extend(rest[..start].chars().map(Elem::Lit));
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let last_after_slash = end == rest.len() && rest[..start].ends_with('/');
        let class = if last_after_slash {
            Class::Path
        } else {
            Class::Segment
        };
        out.push(Elem::One(class));
        out.push(Elem::Many(class));
        rest = &rest[end..];
    }
    out.extend(rest.chars().map(Elem::Lit));
    out
}

fn class_has(class: Class, c: char) -> bool {
    match class {
        Class::Any => true,
        Class::Segment => c != ':' && c != '/',
        Class::Path => c != ':',
    }
}

/// Two single-character elements can consume the same character.
fn compatible(x: Elem, y: Elem) -> bool {
    let class = |e: Elem| match e {
        Elem::One(c) | Elem::Many(c) => Some(c),
        Elem::Lit(_) => None,
    };
    match (x, y) {
        (Elem::Lit(a), Elem::Lit(b)) => a == b,
        (Elem::Lit(a), other) | (other, Elem::Lit(a)) => {
            class(other).is_some_and(|c| class_has(c, a))
        }
        // Every class holds ordinary letters.
        _ => true,
    }
}

fn intersects(
    a: &[Elem],
    b: &[Elem],
    i: usize,
    j: usize,
    seen: &mut std::collections::HashSet<(usize, usize)>,
) -> bool {
    if !seen.insert((i, j)) {
        return false;
    }
    if i == a.len() && j == b.len() {
        return true;
    }
    // Skip a `Many` that matches nothing more.
    if matches!(a.get(i), Some(Elem::Many(_))) && intersects(a, b, i + 1, j, seen) {
        return true;
    }
    if matches!(b.get(j), Some(Elem::Many(_))) && intersects(a, b, i, j + 1, seen) {
        return true;
    }
    let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) else {
        return false;
    };
    if !compatible(x, y) {
        return false;
    }
    let next = |e: Elem, k: usize| if matches!(e, Elem::Many(_)) { k } else { k + 1 };
    let (ni, nj) = (next(x, i), next(y, j));
    (ni, nj) != (i, j) && intersects(a, b, ni, nj, seen)
        || (matches!(x, Elem::Many(_))
            && matches!(y, Elem::Many(_))
            && (intersects(a, b, i + 1, j, seen) || intersects(a, b, i, j + 1, seen)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_knows_the_services_ferry_uses() {
        let c = catalog();
        for action in [
            "ecs:UpdateService",
            "lambda:UpdateAlias",
            "kms:Decrypt",
            "ecr:BatchGetImage",
            "sts:AssumeRole",
            "iam:PassRole",
            "s3:GetObject",
            "secretsmanager:GetSecretValue",
            "cloudwatch:DescribeAlarms",
        ] {
            assert!(c.action(action).is_some(), "{action}");
        }
        assert_eq!(
            c.action("ECS:updateservice").unwrap().0,
            "ecs:UpdateService"
        );
        assert!(c.is_wildcard_only("ecr:GetAuthorizationToken"));
        assert!(!c.is_wildcard_only("ecr:BatchGetImage"));
        assert!(c.service("ecs").unwrap().has_condition("ecs:cluster"));
        assert!(
            c.service("ecr")
                .unwrap()
                .has_condition("ecr:ResourceTag/team")
        );
    }

    #[test]
    fn expanding_a_wildcard_lists_its_actions() {
        let ecr = catalog().expand(&crate::pattern::ActionPattern::new("ecr:BatchGet*"));
        assert_eq!(
            ecr,
            vec![
                "ecr:BatchGetImage",
                "ecr:BatchGetRepositoryScanningConfiguration"
            ]
        );
    }

    #[test]
    fn templates_against_patterns() {
        let object = "arn:${Partition}:s3:::${BucketName}/${ObjectName}";
        let bucket = "arn:${Partition}:s3:::${BucketName}";
        assert!(template_may_match(object, "arn:aws:s3:::artifacts/*"));
        assert!(!template_may_match(bucket, "arn:aws:s3:::artifacts/*"));
        assert!(template_may_match(bucket, "arn:aws:s3:::artifacts"));
        assert!(!template_may_match(object, "arn:aws:s3:::artifacts"));
        assert!(template_may_match(object, "arn:aws:s3:::*"));
        assert!(template_may_match(bucket, "*"));
        let repo = "arn:${Partition}:ecr:${Region}:${Account}:repository/${RepositoryName}";
        assert!(template_may_match(
            repo,
            "arn:aws:ecr:us-east-1:111111111111:repository/team/orders-api"
        ));
        assert!(!template_may_match(
            repo,
            "arn:aws:kms:us-east-1:111111111111:key/k"
        ));
    }
}
