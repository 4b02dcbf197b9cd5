import TollgateModel

/// `deploy/cloudbuild.yaml`, rendered from the functions' declarations with the Terraform
/// variables (`tollgate deploy render`): the tests, one image per function tagged with the
/// commit, the pushes, then Terraform. Never edited by hand.
public enum CloudBuildPipeline {
    /// Where the rendered file lives in the repository.
    public static let path = "deploy/cloudbuild.yaml"

    public static func text(_ declarations: [FunctionDeclaration]) -> String {
        let names = declarations.map(\.name)
        let image = { (name: String) in "${_REGION}-docker.pkg.dev/$PROJECT_ID/tollgate/\(name):$COMMIT_SHA" }
        var lines = [
            "# Rendered by `tollgate deploy render` from the functions' declarations: do not edit.",
            "# Cloud Build: test, build one image per function tagged with the commit (never",
            "# latest), push, deploy with Terraform. Run by a trigger on main:",
            "#   gcloud builds triggers create github --repo-owner=OWNER --repo-name=tollgate --branch-pattern='^main$' \\",
            "#     --build-config=deploy/cloudbuild.yaml --service-account=projects/PROJECT/serviceAccounts/tollgate-deployer@PROJECT.iam.gserviceaccount.com \\",
            "#     --substitutions=_TF_STATE_BUCKET=PROJECT-tollgate-tfstate",
            "# The \(names.count) image builds run one after another so each reuses the first one's compiled",
            "# build stage (it does not depend on FUNCTION).",
            "substitutions:",
            "  _REGION: europe-west1",
            "  _TF_STATE_BUCKET: \"\"",
            "  _TF_VARS: deploy/terraform/production.tfvars",
            "options:",
            "  machineType: E2_HIGHCPU_8",
            "  logging: CLOUD_LOGGING_ONLY",
            "  dynamicSubstitutions: true",
            "timeout: 5400s",
            "steps:",
            "  - id: test",
            "    name: swift:6.3-bookworm",
            "    entrypoint: bash",
            "    args: [\"-c\", \"./dev test\"]",
        ]
        var previous = "test"
        for name in names {
            lines += [
                "  - id: build-\(name)",
                "    name: gcr.io/cloud-builders/docker",
                "    waitFor: [\"\(previous)\"]",
                "    args: [\"build\", \"-f\", \"deploy/Dockerfile\", \"--build-arg\", \"FUNCTION=\(name)\",",
                "           \"-t\", \"\(image(name))\", \".\"]",
            ]
            previous = "build-\(name)"
        }
        lines += [
            "  - id: push",
            "    name: gcr.io/cloud-builders/docker",
            "    waitFor: [\"\(previous)\"]",
            "    entrypoint: bash",
            "    args:",
            "      - -c",
            "      - |",
            "        set -euo pipefail",
            "        for function in \(names.joined(separator: " ")); do",
            "          docker push \"${_REGION}-docker.pkg.dev/$PROJECT_ID/tollgate/$$function:$COMMIT_SHA\"",
            "        done",
        ]
        return (lines + deployStep).joined(separator: "\n") + "\n"
    }

    /// Terraform applies what was pushed.
    static let deployStep = [
        "  - id: deploy",
        "    name: hashicorp/terraform:1.9",
        "    waitFor: [\"push\"]",
        "    dir: deploy/terraform",
        "    entrypoint: sh",
        "    args:",
        "      - -c",
        "      - |",
        "        set -eu",
        "        terraform init -input=false -backend-config=\"bucket=${_TF_STATE_BUCKET}\"",
        "        terraform apply -input=false -auto-approve -var=\"project=$PROJECT_ID\" -var=\"region=${_REGION}\" \\",
        "          -var=\"image_tag=$COMMIT_SHA\" -var-file=\"/workspace/${_TF_VARS}\"",
    ]
}
