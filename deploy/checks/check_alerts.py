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
    default = {name: variables[name]["default"] for name in ("error_rate_threshold", "slo_availability", "slo_latency_seconds", "slo_latency_share")}
    budgets = {"availability": 1 - default["slo_availability"], "latency": 1 - default["slo_latency_share"]}
    fill = {"${var.error_rate_threshold}": str(default["error_rate_threshold"]),
            "${local.latency_thresholds_promql}": vector,
            "${local.slo_latency_bucket}": "%g" % default["slo_latency_seconds"]}

    def filled(name):
        text = query(locals_, name)
        for placeholder, value in fill.items():
            text = text.replace(placeholder, value)
        # The burn-rate thresholds: format("%.6g", FACTOR * local.KIND_budget), as main.tf writes them.
        text = re.sub(r'\$\{format\("%\.6g", ([0-9.]+) \* local\.(availability|latency)_budget\)\}',
                      lambda m: "%.6g" % (float(m.group(1)) * budgets[m.group(2)]), text)
        if "${" in text:
            raise SystemExit(f"deploy/terraform: the {name} alert holds an interpolation this check cannot fill: {text}")
        return text

    rules = {"groups": [{"name": "tollgate", "rules": [
        {"alert": "ErrorRate", "expr": filled("error_rate"), "for": "5m"},
        {"alert": "Latency", "expr": filled("latency"), "for": "5m"},
        {"alert": "DeadLetters", "expr": filled("dead_letters")},
        {"alert": "AvailabilityFastBurn", "expr": filled("availability_fast_burn"), "for": "1m"},
        {"alert": "AvailabilitySlowBurn", "expr": filled("availability_slow_burn"), "for": "1m"},
        {"alert": "LatencyFastBurn", "expr": filled("latency_fast_burn"), "for": "1m"},
        {"alert": "LatencySlowBurn", "expr": filled("latency_slow_burn"), "for": "1m"},
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
    # Seven hours of three functions against the SLOs (99.9% available; 95% within 0.5 s):
    # errors at 2% burn the budget 20 times too fast (both alerts), at 1% ten times (the
    # slow one only), at 0.3% three times (neither); slow requests at 80% burn it 16 times
    # too fast (both), at 40% eight times (slow only), at 10% twice (neither).
    def hours(function, errors_per_minute, slow_per_minute):
        return [
            {"series": f'tollgate_requests_total{{function="{function}",outcome="ok"}}', "values": f"0+{1000 - errors_per_minute}x420"},
            {"series": f'tollgate_requests_total{{function="{function}",outcome="error"}}', "values": f"0+{errors_per_minute}x420"},
            {"series": f'tollgate_request_duration_seconds_bucket{{function="{function}",le="0.5"}}', "values": f"0+{1000 - slow_per_minute}x420"},
            {"series": f'tollgate_request_duration_seconds_count{{function="{function}"}}', "values": "0+1000x420"},
        ]

    budget_series = hours("stripe-webhook", 20, 800) + hours("clerk-webhook", 10, 400) + hours("usage-report", 3, 100)
    burn_tests = [
        {"eval_time": "7h", "alertname": alert, "exp_alerts": [{"exp_labels": {"function": name}} for name in firing]}
        for alert, firing in [
            ("AvailabilityFastBurn", ["stripe-webhook"]), ("AvailabilitySlowBurn", ["clerk-webhook", "stripe-webhook"]),
            ("LatencyFastBurn", ["stripe-webhook"]), ("LatencySlowBurn", ["clerk-webhook", "stripe-webhook"]),
        ]
    ]
    tests = {"rule_files": ["rules.json"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": budget_series, "alert_rule_test": burn_tests}, {
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
    print(f"deploy/terraform: the error-rate, latency, dead-letter and SLO burn-rate alerts fire for the function past "
          f"its threshold, and only for it (promtool, {len(functions)} functions' thresholds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
