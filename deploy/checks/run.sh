#!/usr/bin/env bash
# Checks deploy/ with real tools, installing them (pinned) into venvs of their own:
# the Terraform variables still match the functions' declarations; hadolint and
# checkov pass the Dockerfile and the Terraform (every skip is justified inline);
# python-hcl2 reads the Terraform and check_terraform.py finds every function's
# service, identity, trigger, secrets and alert; service_environment.py finds every
# placeholder of every service's environment filled in from the example tfvars;
# check_alerts.py runs the alert queries in Prometheus' own rule engine (promtool);
# every shell script of the project passes shellcheck.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv() {  # venv DIR REQUIREMENTS MODULE
    if ! "$1/bin/python" -c "import $3" 2>/dev/null; then
        echo "deploy checks: creating $1 with $2" >&2
        python3 -m venv "$1"
        "$1/bin/pip" install -q --disable-pip-version-check -r "$2"
    fi
}
venv deploy/.venv-checkov deploy/checks/requirements-checkov.txt checkov
venv deploy/.venv-hcl2 deploy/checks/requirements-hcl2.txt hcl2

.build/debug/tollgate deploy render --check
deploy/.venv-checkov/bin/hadolint deploy/Dockerfile
echo "deploy/Dockerfile: hadolint clean"
checkov=(deploy/.venv-checkov/bin/checkov --compact --quiet --skip-download)
# The gateway (gateway.tf) on, so that checkov reads its load balancer and Cloud Armor too.
"${checkov[@]}" -d deploy/terraform --framework terraform --var-file deploy/terraform/functions.auto.tfvars.json \
    --var-file deploy/checks/gateway-example.tfvars.json
"${checkov[@]}" -f deploy/Dockerfile --framework dockerfile
deploy/.venv-checkov/bin/hadolint deploy/gateways/nginx/Dockerfile
"${checkov[@]}" -f deploy/gateways/nginx/Dockerfile --framework dockerfile
deploy/.venv-hcl2/bin/python deploy/checks/check_terraform.py
deploy/.venv-hcl2/bin/python deploy/checks/service_environment.py > /dev/null
echo "deploy/terraform: every service's environment is filled in from production.tfvars.example"
deploy/.venv-hcl2/bin/python deploy/checks/check_alerts.py
shellcheck dev .ci/run deploy/*.sh deploy/setup/*.sh deploy/checks/*.sh Tests/*.sh Tests/Fuzz/*.sh benchmarks/*.sh
echo "shell scripts: shellcheck clean"
