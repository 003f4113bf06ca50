//! The foundation as Terraform: a root module with one AWS provider per account (target
//! accounts through their admin role), a `shared` module and a `target` module. Policies are
//! the plan's, with the account ids, regions and role ARNs turned into variables, so the
//! modules are the plan's own least privilege.
//!
//! Checks that checkov reports and ferry cannot fix are skipped in place, each with its reason
//! (`#checkov:skip=ID:reason`); [`SKIPPED`] lists them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::foundation::{AccountKind, AccountPlan, Foundation};
use crate::names::Names;
use crate::spec::{BucketSpec, ProjectIo, Resource};
use crate::synth::File;

mod server;

/// The checkov checks the modules skip, and why ferry cannot fix them.
pub const SKIPPED: &[(&str, &str)] = &[
    (
        "CKV_AWS_18",
        "S3 access logging needs a second bucket (which would need one too); CloudTrail data events record artifact access",
    ),
    (
        "CKV_AWS_144",
        "cross-region replication needs a second region and key; artifacts are rebuilt from source",
    ),
    (
        "CKV2_AWS_62",
        "nothing consumes events of the artifact bucket",
    ),
    (
        "CKV_AWS_136",
        "images are encrypted at rest with AES-256; a customer-managed key would also have to admit every pulling account",
    ),
    (
        "CKV_AWS_158",
        "the log groups of ferry serve and of the CodeBuild project: a customer-managed key would need the logs service in the artifact key's policy; neither log holds a secret (CodeBuild masks the Secrets Manager values it injects)",
    ),
    (
        "CKV2_AWS_57",
        "the webhook secret is shared with the git forge and rotated there; Secrets Manager cannot rotate it alone",
    ),
    (
        "CKV_AWS_382",
        "ferry serve reaches AWS APIs and the git forge on 443 (and 22 for ssh repositories), whose addresses are not fixed",
    ),
    (
        "CKV_AWS_336",
        "ECS Exec (how operators create tokens in the task) needs a writable root file system for its agent",
    ),
];

pub(super) fn skip(id: &str) -> String {
    let reason = SKIPPED
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("", |(_, r)| r);
    format!("  #checkov:skip={id}:{reason}\n")
}

/// Literal → the text that replaces it (a Terraform interpolation), longest literal first.
struct Params(Vec<(String, String)>);

impl Params {
    fn apply(&self, text: &str) -> String {
        let mut pairs = self.0.clone();
        pairs.sort_by_key(|(lit, _)| std::cmp::Reverse(lit.len()));
        pairs.iter().fold(text.to_owned(), |out, (lit, with)| {
            out.replace(lit.as_str(), with)
        })
    }
}

/// A policy document as an HCL expression (JSON is HCL's object syntax too), with a comment
/// above each statement that uses `"Resource": "*"` saying why.
fn policy(doc: &Value, params: &Params) -> String {
    let mut out = String::from("jsonencode({\n");
    let version = doc
        .get("Version")
        .and_then(Value::as_str)
        .unwrap_or("2012-10-17");
    let _ = writeln!(out, "    \"Version\": \"{version}\",\n    \"Statement\": [");
    let statements: Vec<Value> = match doc.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    for (i, s) in statements.iter().enumerate() {
        if let Some(why) = why_star(s) {
            let _ = writeln!(out, "      # {why}");
        }
        let text = serde_json::to_string_pretty(s)
            .unwrap_or_default()
            .replace('\n', "\n      ");
        let comma = if i + 1 < statements.len() { "," } else { "" };
        let _ = writeln!(out, "      {}{comma}", params.apply(&text));
    }
    out.push_str("    ]\n  })");
    out
}

/// Why a statement grants on `"*"`, when it does.
fn why_star(statement: &Value) -> Option<String> {
    if statement.get("Resource") != Some(&Value::String("*".into()))
        || statement.get("Effect").and_then(Value::as_str) != Some("Allow")
    {
        return None;
    }
    let actions: Vec<&str> = match statement.get("Action") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if statement.get("Sid").and_then(Value::as_str) == Some("AccountAdministersKey") {
        return Some("AWS's default key administration: the account's IAM policies may grant use of this key".into());
    }
    if statement.get("Principal").is_some() {
        return Some("in a key policy, \"*\" is this key".into());
    }
    let catalog = ferry_policy::catalog::catalog();
    actions
        .iter()
        .all(|a| catalog.is_wildcard_only(a))
        .then(|| {
            format!(
                "AWS accepts only \"*\" for {}: no resource type",
                actions.join(", ")
            )
        })
}

fn ident(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("r_{s}")
    } else {
        s
    }
}

pub(super) const HEADER: &str =
    "# Written by `ferry synth terraform` from ferry.yaml. Edit ferry.yaml and write it again.\n";

/// The files of the Terraform configuration.
pub fn terraform(foundation: &Foundation, names: &Names<'_>) -> Vec<File> {
    let shared = foundation
        .accounts
        .iter()
        .find(|a| a.kind == AccountKind::Shared)
        .expect("a plan always has its shared account");
    let targets: Vec<&AccountPlan> = foundation
        .accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Target)
        .collect();
    let mut files = vec![
        File {
            path: "main.tf".into(),
            text: root(foundation, names, shared, &targets),
        },
        File {
            path: "modules/shared/main.tf".into(),
            text: shared_module(names, shared, &targets),
        },
        File {
            path: "modules/shared/variables.tf".into(),
            text: shared_variables(),
        },
        File {
            path: "modules/shared/outputs.tf".into(),
            text: shared_outputs(),
        },
        File {
            path: "modules/target/main.tf".into(),
            text: target_module(names, &targets),
        },
        File {
            path: "modules/target/variables.tf".into(),
            text: target_variables(),
        },
        File {
            path: "modules/target/outputs.tf".into(),
            text: target_outputs(execution_presence(names, &targets)),
        },
    ];
    if let Some(server) = &names.shared.server {
        files[0].text.push('\n');
        files[0].text.push_str(&server::call(names, server));
        files.extend([
            File {
                path: "modules/server/main.tf".into(),
                text: server::module(server),
            },
            File {
                path: "modules/server/variables.tf".into(),
                text: server::variables(),
            },
            File {
                path: "modules/server/outputs.tf".into(),
                text: server::outputs(),
            },
        ]);
    }
    files
}

fn root(
    foundation: &Foundation,
    names: &Names<'_>,
    shared: &AccountPlan,
    targets: &[&AccountPlan],
) -> String {
    let mut t = String::from(HEADER);
    // 5.81: aws_iam_openid_connect_provider without a thumbprint (IAM trusts GitHub's CA).
    t.push_str("terraform {\n  required_version = \">= 1.5\"\n  required_providers {\n    aws = {\n      source  = \"hashicorp/aws\"\n      version = \">= 5.81\"\n    }\n  }\n}\n\n");
    t.push_str("variable \"account_ids\" {\n  description = \"The account ids, by ferry.yaml account name\"\n  type        = map(string)\n  default = {\n");
    let _ = writeln!(t, "    shared = \"{}\"", shared.id);
    for a in targets {
        let _ = writeln!(t, "    {} = \"{}\"", ident(&a.name), a.id);
    }
    t.push_str("  }\n}\n\n");
    let _ = writeln!(
        t,
        "# The shared account: your own credentials.\nprovider \"aws\" {{\n  alias  = \"shared\"\n  region = \"{}\"\n  allowed_account_ids = [var.account_ids[\"shared\"]]\n}}\n",
        shared.region
    );
    for a in targets {
        let admin = a
            .admin_role
            .as_deref()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "# {name}: through its admin role.\nprovider \"aws\" {{\n  alias  = \"{id}\"\n  region = \"{region}\"\n  assume_role {{\n    role_arn = \"arn:aws:iam::${{var.account_ids[\"{id}\"]}}:role/{admin}\"\n  }}\n}}\n",
            name = a.name,
            id = ident(&a.name),
            region = a.region
        );
    }
    let deploy: Vec<String> = targets
        .iter()
        .map(|a| {
            format!(
                "    {} = module.target_{}.deploy_role_arn",
                ident(&a.name),
                ident(&a.name)
            )
        })
        .collect();
    let execution: Vec<String> = targets
        .iter()
        .filter(|a| has_execution_role(names, a))
        .map(|a| {
            format!(
                "    {} = module.target_{}.execution_role_arn",
                ident(&a.name),
                ident(&a.name)
            )
        })
        .collect();
    let _ = writeln!(
        t,
        "module \"shared\" {{\n  source    = \"./modules/shared\"\n  providers = {{ aws = aws.shared }}\n  pipeline   = \"{}\"\n  account_id = var.account_ids[\"shared\"]\n  deploy_role_arns = {{\n{}\n  }}\n  execution_role_arns = {{\n{}\n  }}\n}}\n",
        foundation.pipeline,
        deploy.join("\n"),
        execution.join("\n")
    );
    for a in targets {
        let _ = writeln!(
            t,
            "module \"target_{id}\" {{\n  source    = \"./modules/target\"\n  providers = {{ aws = aws.{id} }}\n  account            = \"{name}\"\n  environment        = {environment}\n  account_id         = var.account_ids[\"{id}\"]\n  shared_account_id  = var.account_ids[\"shared\"]\n  pipeline_role_arn  = module.shared.pipeline_role_arn\n  artifact_key_arn   = module.shared.artifact_key_arn\n}}\n",
            id = ident(&a.name),
            name = a.name,
            environment = match names
                .manifest
                .environments
                .iter()
                .filter(|e| e.account == a.name)
                .collect::<Vec<_>>()
                .as_slice()
            {
                [one] => format!("\"{}\"", one.name),
                _ => "null".into(),
            }
        );
    }
    t
}

fn has_execution_role(names: &Names<'_>, account: &AccountPlan) -> bool {
    account
        .resources
        .iter()
        .any(|r| matches!(r, Resource::Role(role) if role.name == names.execution_role_name()))
}

/// The shared module's parameters: its own id, the key, and the target roles.
fn shared_params(names: &Names<'_>, targets: &[&AccountPlan]) -> Params {
    let mut p = vec![
        (
            names.key_arn.clone(),
            "${aws_kms_key.artifacts.arn}".to_owned(),
        ),
        (
            names.pipeline_role(),
            "${aws_iam_role.pipeline.arn}".to_owned(),
        ),
        (names.build_role(), "${aws_iam_role.build.arn}".to_owned()),
        (
            names.codepipeline_role(),
            "${aws_iam_role.codepipeline.arn}".to_owned(),
        ),
    ];
    if names.shared.github_actions.is_some() {
        // Named through the resource, so the trust that names it is made after it.
        p.push((
            names.github_provider_arn(),
            "${aws_iam_openid_connect_provider.github.arn}".to_owned(),
        ));
    }
    for a in targets {
        let account = names
            .manifest
            .account(&a.name)
            .expect("a target account is in the manifest");
        p.push((
            names.deploy_role(account),
            format!("${{var.deploy_role_arns[\"{}\"]}}", ident(&a.name)),
        ));
        if has_execution_role(names, a) {
            p.push((
                names.execution_role(account),
                format!("${{var.execution_role_arns[\"{}\"]}}", ident(&a.name)),
            ));
        }
    }
    p.push((
        format!(":{}:", names.shared.id),
        ":${var.account_id}:".to_owned(),
    ));
    Params(p)
}

fn shared_module(names: &Names<'_>, shared: &AccountPlan, targets: &[&AccountPlan]) -> String {
    let params = shared_params(names, targets);
    let render = |doc: &Value| policy(doc, &params);
    let mut t = String::from(HEADER);
    t.push_str("locals {\n  tags = {\n    \"ferry:pipeline\"   = var.pipeline\n    \"ferry:managed-by\" = \"ferry\"\n  }\n}\n\n");
    for r in &shared.resources {
        match r {
            Resource::Key(key) => {
                let _ = writeln!(
                    t,
                    "# The key policy names the target roles, so aws_kms_key_policy sets it once they exist.\nresource \"aws_kms_key\" \"artifacts\" {{\n  description             = \"{}\"\n  enable_key_rotation     = {}\n  deletion_window_in_days = 30\n  tags                    = local.tags\n}}\n",
                    key.description, key.rotation
                );
                let _ = writeln!(
                    t,
                    "resource \"aws_kms_alias\" \"artifacts\" {{\n  name          = \"{}\"\n  target_key_id = aws_kms_key.artifacts.key_id\n}}\n",
                    key.alias
                );
                let _ = writeln!(
                    t,
                    "resource \"aws_kms_key_policy\" \"artifacts\" {{\n  key_id = aws_kms_key.artifacts.id\n  policy = {}\n}}\n",
                    render(&key.policy)
                );
            }
            Resource::Bucket(bucket) => bucket_resources(&mut t, bucket, &params),
            Resource::Repository(repo) => {
                let id = ident(&repo.name);
                let mutability = serde_json::to_value(repo.tag_mutability).unwrap_or_default();
                let _ = writeln!(
                    t,
                    "resource \"aws_ecr_repository\" \"{id}\" {{\n{}  name                 = \"{}\"\n  image_tag_mutability = {mutability}\n  image_scanning_configuration {{\n    scan_on_push = {}\n  }}\n  tags = local.tags\n}}\n",
                    skip("CKV_AWS_136"),
                    repo.name,
                    repo.scan_on_push
                );
                if let Some(lifecycle) = &repo.lifecycle {
                    let _ = writeln!(
                        t,
                        "resource \"aws_ecr_lifecycle_policy\" \"{id}\" {{\n  repository = aws_ecr_repository.{id}.name\n  policy     = {}\n}}\n",
                        render(lifecycle)
                    );
                }
                if let Some(p) = &repo.policy {
                    let _ = writeln!(
                        t,
                        "resource \"aws_ecr_repository_policy\" \"{id}\" {{\n  repository = aws_ecr_repository.{id}.name\n  policy     = {}\n}}\n",
                        render(p)
                    );
                }
            }
            Resource::Role(role) => {
                // The pipeline role, or the CodeBuild project's service role.
                let id = if role.name == names.shared.pipeline_role {
                    "pipeline"
                } else if role.name == names.build_role_name() {
                    "build"
                } else {
                    "codepipeline"
                };
                let _ = writeln!(
                    t,
                    "resource \"aws_iam_role\" \"{id}\" {{\n  name                 = \"{}\"\n  description          = \"{}\"\n  max_session_duration = {}\n  assume_role_policy   = {}\n  tags                 = local.tags\n}}\n",
                    role.name,
                    role.description,
                    role.max_session_duration,
                    render(&role.trust)
                );
                for (policy_name, doc) in &role.policies {
                    let _ = writeln!(
                        t,
                        "resource \"aws_iam_role_policy\" \"{id}_{}\" {{\n  name   = \"{policy_name}\"\n  role   = aws_iam_role.{id}.id\n  policy = {}\n}}\n",
                        ident(policy_name),
                        render(doc)
                    );
                }
            }
            Resource::Project(project) => {
                let ProjectIo::Overridden { bucket, prefix } = &project.io else {
                    // The native pipeline's projects, topic and pipeline: see below.
                    continue;
                };
                let _ = writeln!(
                    t,
                    "resource \"aws_cloudwatch_log_group\" \"build\" {{\n{}  name              = \"{}\"\n  retention_in_days = {}\n  tags              = local.tags\n}}\n",
                    skip("CKV_AWS_158"),
                    project.log_group,
                    project.log_retention_days
                );
                // Each build overrides the source, the artifacts and the buildspec; these
                // defaults only name the pipeline's prefix.
                let _ = writeln!(
                    t,
                    "resource \"aws_codebuild_project\" \"build\" {{\n  name           = \"{}\"\n  description    = \"{}\"\n  service_role   = aws_iam_role.build.arn\n  encryption_key = aws_kms_key.artifacts.arn\n  source {{\n    type     = \"S3\"\n    location = \"{}/{}\"\n  }}\n  artifacts {{\n    type      = \"S3\"\n    location  = \"{}\"\n    path      = \"{}\"\n    packaging = \"ZIP\"\n  }}\n  environment {{\n    type         = \"LINUX_CONTAINER\"\n    image        = \"{}\"\n    compute_type = \"{}\"\n  }}\n{}  logs_config {{\n    cloudwatch_logs {{\n      group_name = aws_cloudwatch_log_group.build.name\n    }}\n  }}\n  tags = local.tags\n}}\n",
                    project.name,
                    project.description,
                    bucket,
                    prefix,
                    bucket,
                    prefix,
                    project.image,
                    project.compute_type,
                    project.vpc.as_ref().map_or_else(String::new, |v| format!(
                        "  vpc_config {{\n    vpc_id             = \"{}\"\n    subnets            = {}\n    security_group_ids = {}\n  }}\n",
                        v.id,
                        json_text(&v.subnets),
                        json_text(&v.security_groups)
                    ))
                );
            }
            Resource::OidcProvider(provider) => {
                // One per issuer in an account: where another stack made it already, import
                // it (`terraform import aws_iam_openid_connect_provider.github ARN`) or drop
                // this block. IAM checks GitHub's certificate against its own trusted CAs, so
                // no thumbprint is given.
                let _ = writeln!(
                    t,
                    "resource \"aws_iam_openid_connect_provider\" \"github\" {{\n  url            = \"{}\"\n  client_id_list = {}\n  tags           = local.tags\n}}\n",
                    provider.url(),
                    json_text(&provider.audiences)
                );
            }
            Resource::Topic(_) | Resource::Pipeline(_) => {}
        }
    }
    if names.shared.codepipeline.is_some() {
        t.push_str(
            "# The native CodePipeline pipeline, its CodeBuild projects and its approval topic are
# laid by `ferry synth codepipeline --apply`, which reads them back and keeps them equal to
# the manifest; this module holds the roles they run as (codepipeline, build).
",
        );
    }
    t
}

/// A value in HCL: JSON's text of it (strings quoted).
pub(super) fn json_text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A literal as an HCL expression: the reference a parameter makes of it
/// (`aws_kms_key.artifacts.arn`), or the quoted literal.
fn expression(literal: &str, params: &Params) -> String {
    let text = params.apply(&format!("\"{literal}\""));
    match text
        .strip_prefix("\"${")
        .and_then(|t| t.strip_suffix("}\""))
    {
        Some(reference) if !reference.contains("${") => reference.to_owned(),
        _ => text,
    }
}

/// The artifact bucket and each of its settings, as the plan's spec has them.
fn bucket_resources(t: &mut String, bucket: &BucketSpec, params: &Params) {
    let _ = write!(
        t,
        "resource \"aws_s3_bucket\" \"artifacts\" {{\n{}{}{}  bucket = \"{}\"\n  tags   = local.tags\n}}\n\n",
        skip("CKV_AWS_18"),
        skip("CKV_AWS_144"),
        skip("CKV2_AWS_62"),
        bucket.name
    );
    if let Some(versioning) = bucket.versioning {
        let _ = write!(
            t,
            "resource \"aws_s3_bucket_versioning\" \"artifacts\" {{\n  bucket = aws_s3_bucket.artifacts.id\n  versioning_configuration {{\n    status = {}\n  }}\n}}\n\n",
            json_text(&versioning)
        );
    }
    if let Some(ownership) = bucket.ownership {
        let _ = write!(
            t,
            "resource \"aws_s3_bucket_ownership_controls\" \"artifacts\" {{\n  bucket = aws_s3_bucket.artifacts.id\n  rule {{\n    object_ownership = {}\n  }}\n}}\n\n",
            json_text(&ownership)
        );
    }
    if let Some(b) = bucket.public_access_block {
        let _ = write!(
            t,
            "resource \"aws_s3_bucket_public_access_block\" \"artifacts\" {{\n  bucket                  = aws_s3_bucket.artifacts.id\n  block_public_acls       = {}\n  ignore_public_acls      = {}\n  block_public_policy     = {}\n  restrict_public_buckets = {}\n}}\n\n",
            b.block_public_acls,
            b.ignore_public_acls,
            b.block_public_policy,
            b.restrict_public_buckets
        );
    }
    if let Some(e) = &bucket.encryption {
        let key = e
            .key
            .as_ref()
            .map(|k| format!("      kms_master_key_id = {}\n", expression(k, params)))
            .unwrap_or_default();
        let _ = write!(
            t,
            "resource \"aws_s3_bucket_server_side_encryption_configuration\" \"artifacts\" {{\n  bucket = aws_s3_bucket.artifacts.id\n  rule {{\n    apply_server_side_encryption_by_default {{\n      sse_algorithm     = {}\n{key}    }}\n    bucket_key_enabled = {}\n  }}\n}}\n\n",
            json_text(&e.algorithm),
            e.bucket_key
        );
    }
    if let Some(lifecycle) = &bucket.lifecycle {
        t.push_str("resource \"aws_s3_bucket_lifecycle_configuration\" \"artifacts\" {\n  bucket = aws_s3_bucket.artifacts.id\n");
        for rule in &lifecycle.rules {
            let filter = if rule.filter.prefix.is_empty() {
                "    filter {}\n".to_owned()
            } else {
                format!(
                    "    filter {{\n      prefix = \"{}\"\n    }}\n",
                    rule.filter.prefix
                )
            };
            let _ = write!(
                t,
                "  rule {{\n    id     = \"{}\"\n    status = {}\n{filter}",
                rule.id,
                json_text(&rule.status)
            );
            if let Some(a) = rule.abort_incomplete_multipart_upload {
                let _ = write!(
                    t,
                    "    abort_incomplete_multipart_upload {{\n      days_after_initiation = {}\n    }}\n",
                    a.days_after_initiation
                );
            }
            if let Some(n) = rule.noncurrent_version_expiration {
                let _ = write!(
                    t,
                    "    noncurrent_version_expiration {{\n      noncurrent_days = {}\n    }}\n",
                    n.noncurrent_days
                );
            }
            t.push_str("  }\n");
        }
        t.push_str("}\n\n");
    }
    if let Some(p) = &bucket.policy {
        let _ = writeln!(
            t,
            "resource \"aws_s3_bucket_policy\" \"artifacts\" {{\n  bucket = aws_s3_bucket.artifacts.id\n  policy = {}\n  depends_on = [aws_s3_bucket_public_access_block.artifacts]\n}}\n",
            policy(p, params)
        );
    }
}

fn shared_variables() -> String {
    format!(
        "{HEADER}variable \"pipeline\" {{\n  description = \"The pipeline's name\"\n  type        = string\n}}\n\nvariable \"account_id\" {{\n  description = \"The shared account's id\"\n  type        = string\n}}\n\nvariable \"deploy_role_arns\" {{\n  description = \"Each target account's deploy role, by account name\"\n  type        = map(string)\n}}\n\nvariable \"execution_role_arns\" {{\n  description = \"Each target account's ECS task execution role, by account name\"\n  type        = map(string)\n}}\n"
    )
}

fn shared_outputs() -> String {
    format!(
        "{HEADER}output \"pipeline_role_arn\" {{\n  value = aws_iam_role.pipeline.arn\n}}\n\noutput \"artifact_key_arn\" {{\n  value = aws_kms_key.artifacts.arn\n}}\n\noutput \"artifact_bucket\" {{\n  value = aws_s3_bucket.artifacts.id\n}}\n"
    )
}

/// One account's role documents, with its own values (its id, the shared account's, the key,
/// the pipeline role) made variables.
fn target_documents(names: &Names<'_>, account: &AccountPlan) -> BTreeMap<String, String> {
    let manifest_account = names
        .manifest
        .account(&account.name)
        .expect("a target account is in the manifest");
    let params = Params(vec![
        (names.key_arn.clone(), "${var.artifact_key_arn}".into()),
        (names.pipeline_role(), "${var.pipeline_role_arn}".into()),
        (
            format!(":{}:", names.shared.id),
            ":${var.shared_account_id}:".into(),
        ),
        (
            format!(":{}:", manifest_account.id),
            ":${var.account_id}:".into(),
        ),
    ]);
    // An account that hosts one environment has that environment's name in its deploys'
    // resource names: made a variable too, so that accounts alike share one document.
    let environments: Vec<&str> = names
        .manifest
        .environments
        .iter()
        .filter(|e| e.account == account.name)
        .map(|e| e.name.as_str())
        .collect();
    let environment = match environments.as_slice() {
        [one] if one.len() >= 2 => Some(*one),
        _ => None,
    };
    let policy = |doc: &Value, params: &Params| {
        let text = policy(doc, params);
        environment.map_or_else(
            || text.clone(),
            |env| outside_interpolations(&text, env, "${var.environment}"),
        )
    };
    let mut out = BTreeMap::new();
    for r in &account.resources {
        if let Resource::Role(role) = r {
            let (name, trust, policies, description) =
                (&role.name, &role.trust, &role.policies, &role.description);
            let key = if *name == names.execution_role_name() {
                "execution"
            } else {
                "deploy"
            };
            out.insert(format!("{key}.name"), format!("\"{}\"", name));
            out.insert(
                format!("{key}.description"),
                format!(
                    "\"{}\"",
                    description.replace(&account.name, "${var.account}")
                ),
            );
            out.insert(format!("{key}.trust"), policy(trust, &params));
            out.insert(
                format!("{key}.max_session_duration"),
                role.max_session_duration.to_string(),
            );
            for (pn, doc) in policies {
                out.insert(format!("{key}.policy.{pn}"), policy(doc, &params));
            }
        }
    }
    out
}

/// `text` with `from` replaced by `to` wherever it is not inside a `${…}` interpolation.
fn outside_interpolations(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start].replace(from, to));
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str(&rest[start..end]);
        rest = &rest[end..];
    }
    out.push_str(&rest.replace(from, to));
    out
}

fn target_module(names: &Names<'_>, targets: &[&AccountPlan]) -> String {
    let docs: Vec<(String, BTreeMap<String, String>)> = targets
        .iter()
        .map(|a| (ident(&a.name), target_documents(names, a)))
        .collect();
    let mut keys: Vec<String> = docs.iter().flat_map(|(_, d)| d.keys().cloned()).collect();
    keys.sort();
    keys.dedup();
    // A document the same in every account is written once; one that differs (other deploys
    // in each environment) is chosen by `var.account`.
    let value = |key: &str| -> String {
        let texts: Vec<(&String, Option<&String>)> =
            docs.iter().map(|(acct, d)| (acct, d.get(key))).collect();
        let first = texts[0].1;
        if texts.iter().all(|(_, t)| *t == first) {
            first.cloned().unwrap_or_else(|| "null".into())
        } else {
            let mut map = String::from("{\n");
            for (acct, text) in &texts {
                let _ = writeln!(
                    map,
                    "    {acct} = {}",
                    text.map_or("null".into(), |t| t.replace('\n', "\n    "))
                );
            }
            map.push_str("  }[var.account]");
            map
        }
    };
    let mut t = String::from(HEADER);
    t.push_str("locals {\n  tags = {\n    \"ferry:pipeline\"   = \"");
    t.push_str(names.pipeline());
    t.push_str("\"\n    \"ferry:managed-by\" = \"ferry\"\n  }\n}\n\n");
    for role in ["deploy", "execution"] {
        let present: Vec<&String> = docs
            .iter()
            .filter(|(_, d)| d.contains_key(&format!("{role}.name")))
            .map(|(a, _)| a)
            .collect();
        if present.is_empty() {
            continue;
        }
        let count = if present.len() == docs.len() {
            String::new()
        } else {
            format!(
                "  count = contains([{}], var.account) ? 1 : 0\n",
                present
                    .iter()
                    .map(|a| format!("\"{a}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let index = if count.is_empty() { "" } else { "[0]" };
        let _ = writeln!(
            t,
            "resource \"aws_iam_role\" \"{role}\" {{\n{count}  name                 = {}\n  description          = {}\n  max_session_duration = {}\n  assume_role_policy   = {}\n  tags                 = local.tags\n}}\n",
            value(&format!("{role}.name")),
            value(&format!("{role}.description")),
            value(&format!("{role}.max_session_duration")),
            value(&format!("{role}.trust"))
        );
        let prefix = format!("{role}.policy.");
        for key in keys.iter().filter(|k| k.starts_with(&prefix)) {
            let pn = &key[prefix.len()..];
            let _ = writeln!(
                t,
                "resource \"aws_iam_role_policy\" \"{role}_{}\" {{\n{count}  name   = \"{pn}\"\n  role   = aws_iam_role.{role}{index}.id\n  policy = {}\n}}\n",
                ident(pn),
                value(key)
            );
        }
    }
    t
}

fn target_variables() -> String {
    format!(
        "{HEADER}variable \"account\" {{\n  description = \"The account's name in ferry.yaml\"\n  type        = string\n}}\n\nvariable \"environment\" {{\n  description = \"The environment the account hosts, when it hosts one\"\n  type        = string\n  default     = null\n}}\n\nvariable \"account_id\" {{\n  type = string\n}}\n\nvariable \"shared_account_id\" {{\n  type = string\n}}\n\nvariable \"pipeline_role_arn\" {{\n  description = \"The role the pipeline runs as, in the shared account\"\n  type        = string\n}}\n\nvariable \"artifact_key_arn\" {{\n  description = \"The KMS key of the artifact bucket, in the shared account\"\n  type        = string\n}}\n"
    )
}

fn target_outputs(execution: Presence) -> String {
    let execution = match execution {
        Presence::All => "aws_iam_role.execution.arn",
        Presence::Some => "try(aws_iam_role.execution[0].arn, null)",
        Presence::None => "null",
    };
    format!(
        "{HEADER}output \"deploy_role_arn\" {{\n  value = aws_iam_role.deploy.arn\n}}\n\noutput \"execution_role_arn\" {{\n  value = {execution}\n}}\n"
    )
}

/// In how many target accounts a resource exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    All,
    Some,
    None,
}

fn execution_presence(names: &Names<'_>, targets: &[&AccountPlan]) -> Presence {
    match targets
        .iter()
        .filter(|a| has_execution_role(names, a))
        .count()
    {
        0 => Presence::None,
        n if n == targets.len() => Presence::All,
        _ => Presence::Some,
    }
}
