//! `ferry serve` on ECS Fargate, as the `server` module: a cluster, the task definition (the
//! pipeline role as its task role, its own execution role to pull the image and write logs),
//! one service, the state on an EFS file system under the artifact key, the webhook secret in
//! Secrets Manager, and the security groups between them. Written when the manifest has
//! `shared.server`.
//!
//! One task at a time (`deployment_maximum_percent = 100`): two servers on one state would
//! both drive its executions, and `ferry serve` refuses to start beside another anyway.

use std::fmt::Write as _;

use ferry_manifest::{Manifest, Server};

use crate::names::Names;

use super::{HEADER, json_text, skip};

/// Where the task keeps its state (the EFS access point) and the files its entrypoint writes.
const STATE_MOUNT: &str = "/var/lib/ferry";
const RUN_DIR: &str = "/run/ferry";
/// The image's user (deploy/Containerfile) and the owner of the state directory.
const UID: u32 = 10001;

/// The module's call in the root module.
pub(super) fn call(names: &Names<'_>, server: &Server) -> String {
    let manifest = names.manifest;
    let list = |items: &[String]| json_text(&items);
    format!(
        "# ferry serve on ECS Fargate (shared.server in ferry.yaml). After the first apply, set the
# webhook secret: aws secretsmanager put-secret-value --secret-id ferry/{pipeline}/webhook-secret --secret-string \"$(openssl rand -hex 32)\"
module \"server\" {{
  source    = \"./modules/server\"
  providers = {{ aws = aws.shared }}
  pipeline           = \"{pipeline}\"
  account_id         = var.account_ids[\"shared\"]
  region             = \"{region}\"
  pipeline_role_arn  = module.shared.pipeline_role_arn
  artifact_key_arn   = module.shared.artifact_key_arn
  image              = \"{image}\"
  vpc_id             = \"{vpc}\"
  subnet_ids         = {subnets}
  allowed_cidrs      = {cidrs}
  port               = {port}
  cpu                = {cpu}
  memory             = {memory}
  server_yaml        = {yaml}
}}
",
        pipeline = manifest.pipeline,
        region = names.shared.region,
        image = server.image,
        vpc = server.vpc,
        subnets = list(&server.subnets),
        cidrs = list(&server.allowed_cidrs),
        port = server.port,
        cpu = server.cpu,
        memory = server.memory,
        yaml = json_text(&server_yaml(manifest, server)),
    )
}

/// The task's server.yaml: this pipeline, from its repository, with the webhook secret its
/// entrypoint writes from Secrets Manager.
fn server_yaml(manifest: &Manifest, server: &Server) -> String {
    let mut y = format!(
        "state: {STATE_MOUNT}/state\nlisten: 0.0.0.0:{}\npipelines:\n  - name: {}\n    repo: {}\n    branch: {}\n    webhook_secret_file: {RUN_DIR}/webhook.secret\n",
        server.port, manifest.pipeline, manifest.source.repo, manifest.source.branch
    );
    if let Some(poll) = server.poll {
        let _ = writeln!(
            y,
            "    poll: {}",
            ferry_manifest::values::format_duration(poll)
        );
    }
    y
}

/// The ECR repository the image is in, when it is in ECR: `(region, account, name)`.
fn ecr_repository(image: &str) -> Option<(String, String, String)> {
    let (registry, path) = image.split_once('/')?;
    let mut parts = registry.split('.');
    let account = parts.next()?;
    let ecr = [parts.next()?, parts.next()?];
    let region = parts.next()?;
    if ecr != ["dkr", "ecr"] || account.len() != 12 {
        return None;
    }
    let name = path.split(['@', ':']).next()?;
    Some((region.to_owned(), account.to_owned(), name.to_owned()))
}

pub(super) fn module(server: &Server) -> String {
    let mut t = String::from(HEADER);
    t.push_str("locals {\n  tags = {\n    \"ferry:pipeline\"   = var.pipeline\n    \"ferry:managed-by\" = \"ferry\"\n  }\n  name = \"ferry-${var.pipeline}-server\"\n}\n\n");
    let _ = write!(
        t,
        "resource \"aws_ecs_cluster\" \"ferry\" {{
  name = \"ferry-${{var.pipeline}}\"
  setting {{
    name  = \"containerInsights\"
    value = \"enabled\"
  }}
  tags = local.tags
}}

resource \"aws_cloudwatch_log_group\" \"server\" {{
{skip_logs_key}  name              = \"/ferry/${{var.pipeline}}/server\"
  retention_in_days = 365
  tags              = local.tags
}}

# The webhook secret: its value is set once (see the root module), never by Terraform, so it
# is in no state file.
resource \"aws_secretsmanager_secret\" \"webhook\" {{
{skip_rotation}  name       = \"ferry/${{var.pipeline}}/webhook-secret\"
  kms_key_id = var.artifact_key_arn
  tags       = local.tags
}}

",
        skip_logs_key = skip("CKV_AWS_158"),
        skip_rotation = skip("CKV2_AWS_57"),
    );
    state_volume(&mut t);
    security_groups(&mut t);
    execution_role(&mut t, &server.image);
    task_and_service(&mut t);
    t
}

fn state_volume(t: &mut String) {
    let _ = write!(
        t,
        "# The state: executions, logs, tokens, the audit log. Tagged with the pipeline: the task
# role may mount only a file system with that tag (its ferry-pipeline policy).
resource \"aws_efs_file_system\" \"state\" {{
  encrypted  = true
  kms_key_id = var.artifact_key_arn
  tags       = merge(local.tags, {{ Name = \"${{local.name}}-state\" }})
}}

resource \"aws_efs_backup_policy\" \"state\" {{
  file_system_id = aws_efs_file_system.state.id
  backup_policy {{
    status = \"ENABLED\"
  }}
}}

# Only over TLS, and only through the access point.
resource \"aws_efs_file_system_policy\" \"state\" {{
  file_system_id = aws_efs_file_system.state.id
  policy = jsonencode({{
    \"Version\": \"2012-10-17\",
    \"Statement\": [
      {{
        \"Sid\": \"DenyPlainNfs\",
        \"Effect\": \"Deny\",
        \"Principal\": {{ \"AWS\": \"*\" }},
        \"Action\": \"*\",
        \"Resource\": aws_efs_file_system.state.arn,
        \"Condition\": {{ \"Bool\": {{ \"aws:SecureTransport\": \"false\" }} }}
      }},
      {{
        \"Sid\": \"TaskRoleThroughAccessPoint\",
        \"Effect\": \"Allow\",
        \"Principal\": {{ \"AWS\": var.pipeline_role_arn }},
        \"Action\": [\"elasticfilesystem:ClientMount\", \"elasticfilesystem:ClientWrite\"],
        \"Resource\": aws_efs_file_system.state.arn,
        \"Condition\": {{ \"StringEquals\": {{ \"elasticfilesystem:AccessPointArn\": aws_efs_access_point.state.arn }} }}
      }}
    ]
  }})
}}

resource \"aws_efs_access_point\" \"state\" {{
  file_system_id = aws_efs_file_system.state.id
  posix_user {{
    uid = {UID}
    gid = {UID}
  }}
  root_directory {{
    path = \"/ferry\"
    creation_info {{
      owner_uid   = {UID}
      owner_gid   = {UID}
      permissions = \"0750\"
    }}
  }}
  tags = local.tags
}}

resource \"aws_efs_mount_target\" \"state\" {{
  for_each        = toset(var.subnet_ids)
  file_system_id  = aws_efs_file_system.state.id
  subnet_id       = each.value
  security_groups = [aws_security_group.state.id]
}}

"
    );
}

fn security_groups(t: &mut String) {
    let _ = write!(
        t,
        "resource \"aws_security_group\" \"server\" {{
  name        = local.name
  description = \"ferry serve: its API port from allowed_cidrs; out to HTTPS and its state volume\"
  vpc_id      = var.vpc_id
  tags        = local.tags
}}

resource \"aws_vpc_security_group_ingress_rule\" \"api\" {{
  for_each          = toset(var.allowed_cidrs)
  security_group_id = aws_security_group.server.id
  description       = \"the API and webhooks\"
  cidr_ipv4         = each.value
  ip_protocol       = \"tcp\"
  from_port         = var.port
  to_port           = var.port
}}

resource \"aws_vpc_security_group_egress_rule\" \"https\" {{
{skip_egress}  security_group_id = aws_security_group.server.id
  description       = \"AWS APIs and the git forge\"
  cidr_ipv4         = \"0.0.0.0/0\"
  ip_protocol       = \"tcp\"
  from_port         = 443
  to_port           = 443
}}

resource \"aws_vpc_security_group_egress_rule\" \"ssh\" {{
{skip_egress}  security_group_id = aws_security_group.server.id
  description       = \"the git forge, for ssh repository URLs\"
  cidr_ipv4         = \"0.0.0.0/0\"
  ip_protocol       = \"tcp\"
  from_port         = 22
  to_port           = 22
}}

resource \"aws_vpc_security_group_egress_rule\" \"nfs\" {{
  security_group_id            = aws_security_group.server.id
  description                  = \"the state volume\"
  referenced_security_group_id = aws_security_group.state.id
  ip_protocol                  = \"tcp\"
  from_port                    = 2049
  to_port                      = 2049
}}

resource \"aws_security_group\" \"state\" {{
  name        = \"${{local.name}}-state\"
  description = \"ferry serve's state volume: NFS from the server only\"
  vpc_id      = var.vpc_id
  tags        = local.tags
}}

resource \"aws_vpc_security_group_ingress_rule\" \"nfs\" {{
  security_group_id            = aws_security_group.state.id
  description                  = \"NFS from ferry serve\"
  referenced_security_group_id = aws_security_group.server.id
  ip_protocol                  = \"tcp\"
  from_port                    = 2049
  to_port                      = 2049
}}

",
        skip_egress = skip("CKV_AWS_382"),
    );
}

fn execution_role(t: &mut String, image: &str) {
    let pull = match ecr_repository(image) {
        Some((region, account, name)) => format!(
            "      {{
        \"Sid\": \"PullTheImage\",
        \"Effect\": \"Allow\",
        \"Action\": [\"ecr:BatchGetImage\", \"ecr:GetDownloadUrlForLayer\"],
        \"Resource\": \"arn:aws:ecr:{region}:{account}:repository/{name}\"
      }},
      # AWS accepts only \"*\" for ecr:GetAuthorizationToken: no resource type
      {{
        \"Sid\": \"LogInToEcr\",
        \"Effect\": \"Allow\",
        \"Action\": \"ecr:GetAuthorizationToken\",
        \"Resource\": \"*\"
      }},
"
        ),
        // An image outside ECR (a public registry) needs no permission to pull.
        None => String::new(),
    };
    let _ = write!(
        t,
        "# ECS pulls the image, writes the logs and reads the webhook secret as this role; the
# server itself runs as the pipeline role.
resource \"aws_iam_role\" \"execution\" {{
  name        = \"${{local.name}}-execution\"
  description = \"ferry: ECS task execution role of ferry serve for pipeline ${{var.pipeline}}\"
  assume_role_policy = jsonencode({{
    \"Version\": \"2012-10-17\",
    \"Statement\": [
      {{
        \"Sid\": \"EcsTasks\",
        \"Effect\": \"Allow\",
        \"Principal\": {{ \"Service\": \"ecs-tasks.amazonaws.com\" }},
        \"Action\": \"sts:AssumeRole\",
        \"Condition\": {{ \"StringEquals\": {{ \"aws:SourceAccount\": var.account_id }} }}
      }}
    ]
  }})
  tags = local.tags
}}

resource \"aws_iam_role_policy\" \"execution\" {{
  name = \"ferry-server-execution\"
  role = aws_iam_role.execution.id
  policy = jsonencode({{
    \"Version\": \"2012-10-17\",
    \"Statement\": [
{pull}      {{
        \"Sid\": \"WriteTheLogs\",
        \"Effect\": \"Allow\",
        \"Action\": [\"logs:CreateLogStream\", \"logs:PutLogEvents\"],
        \"Resource\": \"${{aws_cloudwatch_log_group.server.arn}}:log-stream:*\"
      }},
      {{
        \"Sid\": \"ReadTheWebhookSecret\",
        \"Effect\": \"Allow\",
        \"Action\": \"secretsmanager:GetSecretValue\",
        \"Resource\": aws_secretsmanager_secret.webhook.arn
      }},
      {{
        \"Sid\": \"DecryptTheWebhookSecret\",
        \"Effect\": \"Allow\",
        \"Action\": \"kms:Decrypt\",
        \"Resource\": var.artifact_key_arn,
        \"Condition\": {{ \"StringEquals\": {{ \"kms:ViaService\": \"secretsmanager.${{var.region}}.amazonaws.com\" }} }}
      }}
    ]
  }})
}}

"
    );
}

fn task_and_service(t: &mut String) {
    let _ = write!(
        t,
        "resource \"aws_ecs_task_definition\" \"server\" {{
{skip_read_only}  family                   = local.name
  requires_compatibilities = [\"FARGATE\"]
  network_mode             = \"awsvpc\"
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = var.pipeline_role_arn
  execution_role_arn       = aws_iam_role.execution.arn
  runtime_platform {{
    operating_system_family = \"LINUX\"
    cpu_architecture        = \"X86_64\"
  }}
  container_definitions = jsonencode([
    {{
      name         = \"ferry\"
      image        = var.image
      essential    = true
      user         = \"{UID}:{UID}\"
      portMappings = [{{ containerPort = var.port, protocol = \"tcp\" }}]
      # The entrypoint writes these to {RUN_DIR} and starts ferry serve (deploy/entrypoint.sh).
      environment = [
        {{ name = \"FERRY_SERVER_YAML\", value = var.server_yaml }},
        {{ name = \"AWS_REGION\", value = var.region }}
      ]
      secrets = [
        {{ name = \"FERRY_WEBHOOK_SECRET\", valueFrom = aws_secretsmanager_secret.webhook.arn }}
      ]
      mountPoints = [{{ sourceVolume = \"state\", containerPath = \"{STATE_MOUNT}\" }}]
      # ECS Exec's agent, and a clean PID 1 for ferry's SIGTERM drain.
      linuxParameters = {{ initProcessEnabled = true }}
      stopTimeout     = 120
      logConfiguration = {{
        logDriver = \"awslogs\"
        options = {{
          \"awslogs-group\"         = aws_cloudwatch_log_group.server.name
          \"awslogs-region\"        = var.region
          \"awslogs-stream-prefix\" = \"ferry\"
        }}
      }}
    }}
  ])
  volume {{
    name = \"state\"
    efs_volume_configuration {{
      file_system_id     = aws_efs_file_system.state.id
      transit_encryption = \"ENABLED\"
      authorization_config {{
        access_point_id = aws_efs_access_point.state.id
        iam             = \"ENABLED\"
      }}
    }}
  }}
  tags = local.tags
}}

resource \"aws_ecs_service\" \"server\" {{
  name             = local.name
  cluster          = aws_ecs_cluster.ferry.id
  task_definition  = aws_ecs_task_definition.server.arn
  desired_count    = 1
  launch_type      = \"FARGATE\"
  platform_version = \"LATEST\"
  # One server per state: the old task stops before the new one starts.
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  # `aws ecs execute-command … ferry serve token create …`: tokens are made inside the task.
  enable_execute_command = true
  network_configuration {{
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.server.id]
    assign_public_ip = false
  }}
  depends_on = [aws_efs_mount_target.state]
  tags       = local.tags
}}
",
        skip_read_only = skip("CKV_AWS_336"),
    );
}

pub(super) fn variables() -> String {
    let vars: &[(&str, &str, &str)] = &[
        ("pipeline", "string", "The pipeline's name"),
        ("account_id", "string", "The shared account's id"),
        ("region", "string", "The shared account's region"),
        (
            "pipeline_role_arn",
            "string",
            "The pipeline role: the server's task role",
        ),
        (
            "artifact_key_arn",
            "string",
            "The artifact key: it encrypts the state volume and the webhook secret",
        ),
        (
            "image",
            "string",
            "The image built from deploy/Containerfile, by tag or digest",
        ),
        ("vpc_id", "string", "The VPC of the subnets"),
        (
            "subnet_ids",
            "list(string)",
            "Private subnets, one per availability zone",
        ),
        (
            "allowed_cidrs",
            "list(string)",
            "Who may reach the API port (a load balancer's subnets)",
        ),
        ("port", "number", "The port the server listens on"),
        ("cpu", "number", "Fargate CPU units"),
        ("memory", "number", "Fargate memory, MiB"),
        (
            "server_yaml",
            "string",
            "The server's server.yaml (docs/server.md)",
        ),
    ];
    let mut t = String::from(HEADER);
    for (name, ty, description) in vars {
        let _ = writeln!(
            t,
            "variable \"{name}\" {{\n  description = \"{description}\"\n  type        = {ty}\n}}\n"
        );
    }
    t
}

pub(super) fn outputs() -> String {
    format!(
        "{HEADER}output \"cluster\" {{\n  value = aws_ecs_cluster.ferry.name\n}}\n\noutput \"service\" {{\n  value = aws_ecs_service.server.name\n}}\n\noutput \"security_group_id\" {{\n  description = \"Admit it from a load balancer's security group\"\n  value       = aws_security_group.server.id\n}}\n\noutput \"webhook_secret_arn\" {{\n  value = aws_secretsmanager_secret.webhook.arn\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ecr_image_names_its_repository_and_others_none() {
        assert_eq!(
            ecr_repository("111111111111.dkr.ecr.eu-west-1.amazonaws.com/tools/ferry:0.1.0"),
            Some((
                "eu-west-1".into(),
                "111111111111".into(),
                "tools/ferry".into()
            ))
        );
        assert_eq!(
            ecr_repository(
                "111111111111.dkr.ecr.eu-west-1.amazonaws.com/ferry@sha256:0123456789abcdef"
            )
            .map(|r| r.2),
            Some("ferry".into())
        );
        assert_eq!(ecr_repository("ghcr.io/acme/ferry:0.1.0"), None);
        assert_eq!(ecr_repository("ferry:0.1.0"), None);
    }
}
