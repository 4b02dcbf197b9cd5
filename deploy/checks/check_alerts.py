"""Runs the alert queries of deploy/terraform/monitoring.tf in Prometheus' own rule engine
(promtool test rules, Debian's prometheus package), on series of the shape the functions'
/metrics serve, and checks that each alert fires for the function that passes its
threshold and for no other. Managed Prometheus evaluates the same PromQL.

    check_alerts.py

The queries are read from the Terraform (local.function_alerts) with python-hcl2; `${var.error_rate_threshold}`
takes its default and `${local.latency_thresholds_promql}` is built as main.tf's
local.latency_threshold builds it (80% of each function's timeout, from the rendered
functions.auto.tfvars.json). Exits 1 with promtool's report when an alert misfires."""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from check_terraform import ROOT, TERRAFORM, load, unquote


def query(locals_, name: str) -> str:
    text = unquote(locals_["function_alerts"][name]["query"])
    heredoc = re.fullmatch(r"<<-EOT\n(.*)\n\s*EOT", text, re.S)
    return " ".join((heredoc.group(1) if heredoc else text).split())


def main() -> int:
    resources, locals_, variables = load()
    functions = json.loads((TERRAFORM / "functions.auto.tfvars.json").read_text())["functions"]
    thresholds = {name: f["timeout_seconds"] * 0.8 for name, f in functions.items()}
    vector = " or ".join(f'label_replace(vector({seconds:g}), "function", "{name}", "", "")' for name, seconds in thresholds.items())
    expect_local = 'lookup(var.latency_p95_seconds, name, f.timeout_seconds * 0.8)'
    if expect_local not in str(locals_.get("latency_threshold")):
        print(f"deploy/terraform: local.latency_threshold is no longer {expect_local}: update check_alerts.py", file=sys.stderr)
        return 1
    fill = {"${var.error_rate_threshold}": str(variables["error_rate_threshold"]["default"]),
            "${local.latency_thresholds_promql}": vector}

    def filled(name):
        text = query(locals_, name)
        for placeholder, value in fill.items():
            text = text.replace(placeholder, value)
        if "${" in text:
            raise SystemExit(f"deploy/terraform: the {name} alert holds an interpolation this check cannot fill: {text}")
        return text

    rules = {"groups": [{"name": "tollgate", "rules": [
        {"alert": "ErrorRate", "expr": filled("error_rate"), "for": "5m"},
        {"alert": "Latency", "expr": filled("latency"), "for": "5m"},
        {"alert": "DeadLetters", "expr": filled("dead_letters")},
    ]}]}

    # The quickest function and a slow one: the same p95 (4.8 s: every request in the
    # (1, 5] bucket) passes the first's threshold only.
    quick = min(thresholds, key=thresholds.get)
    slow = max(thresholds, key=thresholds.get)
    assert thresholds[quick] < 4.8 < thresholds[slow], thresholds

    def requests(function, outcome, per_minute):
        return {"series": f'tollgate_requests_total{{function="{function}",outcome="{outcome}"}}', "values": f"0+{per_minute}x30"}

    def bucket(function, le, per_minute):
        return {"series": f'tollgate_request_duration_seconds_bucket{{function="{function}",le="{le}"}}', "values": f"0+{per_minute}x30"}

    series = [
        # One function errs on a sixth of its deliveries, another never.
        requests("account-api", "ok", 100), requests("account-api", "error", 20),
        requests("usage-recorder", "ok", 100), requests("usage-recorder", "error", 0),
        bucket(quick, "1", 0), bucket(quick, "5", 100), bucket(quick, "+Inf", 100),
        bucket(slow, "1", 0), bucket(slow, "5", 100), bucket(slow, "+Inf", 100),
        # cleanup dead-letters one delivery a quarter of an hour in; stripe-webhook none.
        {"series": 'tollgate_dead_letters_total{function="cleanup"}', "values": "0x15 1x15"},
        {"series": 'tollgate_dead_letters_total{function="stripe-webhook"}', "values": "0x30"},
    ]
    tests = {"rule_files": ["rules.json"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "alert_rule_test": [
            {"eval_time": "20m", "alertname": "ErrorRate", "exp_alerts": [{"exp_labels": {"function": "account-api"}}]},
            {"eval_time": "20m", "alertname": "Latency", "exp_alerts": [{"exp_labels": {"function": quick}}]},
            {"eval_time": "20m", "alertname": "DeadLetters", "exp_alerts": [{"exp_labels": {"function": "cleanup"}}]},
            {"eval_time": "10m", "alertname": "DeadLetters", "exp_alerts": []},
        ],
    }]}
    if shutil.which("promtool") is None:
        print("deploy/terraform: promtool is not installed: ./dev test installs it (Debian's prometheus package)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        # JSON is YAML: promtool reads both files as written.
        (pathlib.Path(folder) / "rules.json").write_text(json.dumps(rules))
        (pathlib.Path(folder) / "tests.json").write_text(json.dumps(tests))
        run = subprocess.run(["promtool", "test", "rules", "tests.json"], cwd=folder, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"deploy/terraform: an alert misfires in Prometheus' rule engine:\n{run.stdout}{run.stderr}", file=sys.stderr)
        return 1
    print(f"deploy/terraform: the error-rate, latency and dead-letter alerts fire for the function past its threshold, "
          f"and only for it (promtool, {len(functions)} functions' thresholds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
