//! The commented starter files `ferry init` writes. Every combination validates (tested).

/// What the starter pipeline deploys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Starter {
    pub ecs: bool,
    pub lambda: bool,
}

impl Starter {
    fn deploys(self) -> bool {
        self.ecs || self.lambda
    }

    /// A commented `ferry.yaml`.
    pub fn manifest(self, pipeline: &str) -> String {
        let mut out = format!(
            r#"# ferry.yaml — the pipeline. Reference: docs/manifest.md; schema: `ferry schema`.
# Check it with `ferry validate`; run it with `ferry run`.
# yaml-language-server: $schema=https://ferry.dev/schemas/ferry.yaml.json
version: 1
pipeline: {pipeline}

# The shared-services account runs the pipeline and keeps artifacts (S3 + a KMS key) and images (ECR).
# Replace the ids below with your own; quote them so YAML keeps leading zeros.
shared:
  id: "111111111111"
  region: eu-west-1
"#
        );
        if self.ecs {
            out.push_str("  repositories: [");
            out.push_str(pipeline);
            out.push_str("-api]\n");
        }
        if self.deploys() {
            out.push_str(
                r#"
# Target accounts. `ferry bootstrap` creates a `ferry-deploy` role in each, trusted by the pipeline role only.
accounts:
  dev:  {id: "222222222222"}
  qa:   {id: "333333333333"}
  prod: {id: "444444444444"}
"#,
            );
        }
        out.push_str(
            r#"
# Builds run a CodeBuild buildspec (version 0.2). The source artifact is this repository.
stages:
  - name: build
    actions:
      - name: compile
        build:
          buildspec: buildspec.yml
          outputs: [app]
"#,
        );
        if self.deploys() {
            out.push_str(
                r#"  - name: test
    actions:
      - name: unit
        build:
          buildspec: buildspec.yml
          inputs: [source]

# Environments in promotion order; each deploys the actions under `deploy:` in its account.
environments:
  - name: dev
    account: dev
  - name: qa
    account: qa
    approval: {timeout: 24h}
  - name: prod
    account: prod
    approval: {timeout: 24h, comment_required: true}

deploy:
"#,
            );
        } else {
            out.push_str(
                r#"  - name: release
    actions:
      - name: sign-off
        approval: {timeout: 1h}
      - name: package
        run_order: 2
        build:
          buildspec: buildspec.yml
          inputs: [app]
"#,
            );
        }
        if self.ecs {
            out.push_str(&format!(
                r#"  - name: api
    ecs:
      cluster: {pipeline}-${{env}}
      service: {pipeline}-api
      artifact: app            # holds imagedefinitions.json, written by the build
      timeout: 15m
      # task_role: {pipeline}-api-task   # the task definition's taskRoleArn, if it has one
      # execution_role: {pipeline}-api-execution   # its own executionRoleArn, if not ferry's
"#
            ));
        }
        if self.lambda {
            out.push_str(&format!(
                r#"  - name: function
    lambda:
      function: {pipeline}-fn
      alias: live
      artifact: app
      zip: function.zip
      traffic: canary 10% 5m   # or all-at-once, or linear 20% every 1m
      alarms: [{pipeline}-fn-errors]   # an alarm in ALARM during the bake rolls back
"#
            ));
        }
        out
    }

    /// A commented `buildspec.yml` matching the manifest.
    pub fn buildspec(self) -> String {
        let mut out = String::from(
            r#"# buildspec.yml — CodeBuild buildspec version 0.2; `ferry run` runs it locally.
version: 0.2
env:
  variables:
    APP_ENV: ci
phases:
  install:
    commands:
      - echo "install tools here"
  build:
    commands:
      - mkdir -p dist
      - echo "build $CODEBUILD_RESOLVED_SOURCE_VERSION" > dist/build.txt
"#,
        );
        if self.lambda {
            out.push_str("      - (cd dist && zip -q function.zip build.txt)\n");
        }
        if self.ecs {
            out.push_str(
                "      - printf '[{\"name\":\"api\",\"imageUri\":\"%s\"}]' \"$IMAGE_URI\" > dist/imagedefinitions.json\n",
            );
        }
        out.push_str(
            r#"artifacts:
  base-directory: dist
  files:
    - '**/*'
"#,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_starter_validates_without_warnings() {
        for (ecs, lambda) in [(false, false), (true, false), (false, true), (true, true)] {
            let starter = Starter { ecs, lambda };
            let loaded = crate::from_str("ferry.yaml", &starter.manifest("orders"));
            assert!(
                loaded.diagnostics.is_empty(),
                "ecs={ecs} lambda={lambda}:\n{}",
                loaded.render(false)
            );
            let m = loaded.manifest.unwrap();
            assert_eq!(
                m.deployments().count(),
                3 * (usize::from(ecs) + usize::from(lambda))
            );
        }
    }
}
