#!/usr/bin/env python3
"""The orders application's own resources, as the team's infrastructure code would make them:
in each target account its ECS cluster and service, its Lambda function with the alias `live`,
and its CloudWatch alarms; in the shared account the API token the build reads.

Run with credentials of the shared account; target accounts are reached through their admin
role, as ferry bootstrap reaches them. Idempotent. Needs boto3 (scripts/demo provides it).

    python3 examples/orders/sandbox/resources.py examples/orders/ferry.yaml
"""
import io
import json
import secrets
import sys
import zipfile

import boto3
import yaml

PIPELINE_EXECUTION_ROLE = "ferry-{pipeline}-ecs-execution"  # made by ferry bootstrap


def session_in(account_id, admin_role, region):
    creds = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{admin_role}", RoleSessionName="orders-resources"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def exists(call, missing):
    try:
        call()
        return True
    except Exception as e:  # botocore ClientError and its service-specific subclasses
        if any(m in str(e) for m in missing):
            return False
        raise


def first_zip(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(path, "handler.py")
    return buf.getvalue()


def function(s, account_id, root):
    iam, lam = s.client("iam"), s.client("lambda")
    role = "orders-fn-exec"
    if not exists(lambda: iam.get_role(RoleName=role), ["NoSuchEntity"]):
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    if not exists(lambda: lam.get_function_configuration(FunctionName="orders-fn"), ["ResourceNotFound", "Function not found"]):
        lam.create_function(
            FunctionName="orders-fn", Runtime="python3.12", Handler="handler.handler",
            Role=f"arn:aws:iam::{account_id}:role/{role}", Code={"ZipFile": first_zip(f"{root}/app/function/handler.py")},
        )
        version = lam.publish_version(FunctionName="orders-fn")["Version"]
        lam.create_alias(FunctionName="orders-fn", Name="live", FunctionVersion=version)


def service(s, account_id, env, shared_id, region, pipeline):
    ecs = s.client("ecs")
    cluster = f"orders-{env}"
    ecs.create_cluster(clusterName=cluster)
    found = ecs.describe_services(cluster=cluster, services=["orders-api"])["services"]
    if found and found[0]["status"] == "ACTIVE":
        return
    td = ecs.register_task_definition(
        family="orders-api", cpu="256", memory="512",
        executionRoleArn=f"arn:aws:iam::{account_id}:role/{PIPELINE_EXECUTION_ROLE.format(pipeline=pipeline)}",
        containerDefinitions=[{
            "name": "web", "image": f"{shared_id}.dkr.ecr.{region}.amazonaws.com/orders-api:first",
            "memory": 256, "essential": True, "portMappings": [{"containerPort": 8080}],
        }],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="orders-api", taskDefinition=td, desiredCount=1)


def alarms(s, env):
    cw = s.client("cloudwatch")
    for name, namespace, metric in [(f"orders-fn-errors-{env}", "AWS/Lambda", "Errors"), (f"orders-api-5xx-{env}", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count")]:
        cw.put_metric_alarm(
            AlarmName=name, Namespace=namespace, MetricName=metric, Statistic="Sum", Period=60,
            EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
        )


def main(manifest_path):
    root = manifest_path.rsplit("/", 1)[0] if "/" in manifest_path else "."
    with open(manifest_path) as f:
        m = yaml.safe_load(f)
    shared = m["shared"]
    region = shared.get("region", "us-east-1")
    sm = boto3.client("secretsmanager", region_name=region)
    if not exists(lambda: sm.describe_secret(SecretId="orders/api-token"), ["ResourceNotFound"]):
        # A fresh random token: the demo never sees or prints it; the build log masks it.
        sm.create_secret(Name="orders/api-token", SecretString=secrets.token_urlsafe(24))
    for env in m["environments"]:
        account = m["accounts"][env["account"]]
        s = session_in(account["id"], account.get("admin_role", "OrganizationAccountAccessRole"), account.get("region", region))
        function(s, account["id"], root)
        service(s, account["id"], env["name"], shared["id"], region, m["pipeline"])
        alarms(s, env["name"])
        print(f"{env['name']} ({account['id']}): cluster orders-{env['name']} with service orders-api, function orders-fn:live, 2 alarms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/orders/ferry.yaml")
