"""Reads deploy/terraform with python-hcl2 and the rendered functions.auto.tfvars.json,
and checks that every function gets what it needs: its service (probes on /healthz,
scale to zero, an immutable image tag), its own identity, its trigger (push
subscription with OIDC and dead letters, scheduler job with OIDC, task queue with the
declared RetryConfig, or the ingress its HTTP callers need), its secrets from Secret
Manager (never a value), and its alert policy. Exits 1 naming every problem.

    check_terraform.py [--variables FILE] [--pipeline FILE]

reads the committed functions.auto.tfvars.json and cloudbuild.yaml unless told other
files (a test renders the variables with a function added, to prove nothing else needs
an edit)."""

import argparse
import json
import pathlib
import re
import sys

import hcl2

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "deploy" / "terraform"
problems: list[str] = []


def unquote(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load():
    resources, locals_, variables = {}, {}, {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as handle:
            document = hcl2.load(handle)
        for block in document.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    resources[(unquote(kind), unquote(name))] = body
        for block in document.get("locals", []):
            locals_.update({key: value for key, value in block.items() if not key.startswith("__")})
        for block in document.get("variable", []):
            variables.update({unquote(key): value for key, value in block.items()})
    return resources, locals_, variables


def text(value) -> str:
    return json.dumps(value)


def expect(condition: bool, problem: str):
    if not condition:
        problems.append(problem)


def selected_by(for_each: str, function: dict) -> bool:
    """Evaluates a `{ for name, f in var.functions : … if f.FIELD == "VALUE" }` filter."""
    filters = re.findall(r'f\.(\w+) == \\?"([^"\\]+)\\?"', for_each)
    return all(str(function.get(field)) == value for field, value in filters)


def main() -> int:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--variables", type=pathlib.Path, default=TERRAFORM / "functions.auto.tfvars.json")
    arguments.add_argument("--pipeline", type=pathlib.Path, default=ROOT / "deploy" / "cloudbuild.yaml")
    options = arguments.parse_args()
    resources, locals_, variables = load()
    rendered = json.loads(options.variables.read_text())
    functions, queues = rendered["functions"], rendered["queues"]

    def resource(kind, name):
        body = resources.get((kind, name))
        expect(body is not None, f"no resource {kind}.{name}")
        return body or {}

    # Every rendered field is declared in var.functions' type.
    declared = text(variables.get("functions", {}))
    for field in sorted({key for f in functions.values() for key in f}):
        expect(re.search(rf"\b{field} = ", declared) is not None, f"var.functions does not declare the rendered field {field}")

    service = resource("google_cloud_run_v2_service", "function")
    expect(service.get("for_each") == "${var.functions}", "the Cloud Run service is not made for every function")
    container = service.get("template", [{}])[0].get("containers", [{}])[0]
    expect("var.image_tag" in text(container.get("image")), "the image is not tagged with var.image_tag")
    for probe in ("startup_probe", "liveness_probe"):
        expect("/healthz" in text(container.get(probe)), f"the function container has no {probe} on /healthz")
    # Metrics on loopback only: the functions bind TOLLGATE_METRICS_PORT to 127.0.0.1 and the
    # collector scrapes that port; the public container port is never scraped.
    scraped = re.findall(r"^\s*- port: (\d+)", (ROOT / "deploy" / "monitoring" / "run-gmp-config.yaml").read_text(), re.M)
    for name, function in sorted(functions.items()):
        metrics_port = function["env"].get("TOLLGATE_METRICS_PORT")
        expect(scraped == [metrics_port], f"{name}: the collector scrapes {scraped}, not its metrics port {metrics_port}")
    expect("8080" not in scraped, "the collector scrapes the public port")
    # The rendered environment is whole: Terraform fills in placeholders and adds only
    # Memorystore's address and the platform team's settings (service_environment.py).
    environment = text(locals_.get("environment"))
    expect("local.placeholders" in environment and "var.settings" in environment,
           "the services' environment is not the rendered one with its placeholders filled in")

    scaling = service.get("template", [{}])[0].get("scaling", [{}])[0]
    expect(scaling.get("min_instance_count") == 0, "services do not scale to zero")
    expect("google_service_account.function[each.key].email" in text(service.get("template")),
           "services do not run as their own service accounts")
    expect("secret_key_ref" in text(container), "secrets do not come from Secret Manager")
    tag = text(variables.get("image_tag"))
    expect("validation" in tag and "latest" in tag, "var.image_tag does not refuse mutable tags")

    # Memorystore (optional): off unless var.memorystore is set; when on, only
    # auth-validator joins the VPC and is told where Redis is; keys are never evicted.
    memorystore = resource("google_redis_instance", "quota")
    expect("var.memorystore" in text(memorystore.get("count")) or "local.memorystore_enabled" in text(memorystore.get("count")),
           "the Memorystore instance is not optional")
    expect(text(variables.get("memorystore", {}).get("default")) in ("None", "null"), "Memorystore is not off by default")
    expect("noeviction" in text(memorystore.get("redis_configs")), "Memorystore may evict lease keys")
    vpc = text(service.get("template", [{}])[0].get("dynamic", []))
    expect("vpc_access" in vpc and re.search(r'each\.value\.quota_in_memorystore && var\.memorystore', vpc) is not None,
           "Direct VPC egress is not limited to the functions keeping quota in Memorystore, or not to when it is on")
    # Grants and wiring follow what a function declares, never its name.
    for path in sorted(TERRAFORM.glob("*.tf")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            expect(re.search(r'(name|each\.key) == "', line) is None,
                   f"{path.name}:{number} decides by a function's name: {line.strip()}")
    expect("TOLLGATE_QUOTA_STORE" in text(locals_.get("environment")), "auth-validator is not told where Memorystore is")

    identity = resource("google_service_account", "function")
    expect(identity.get("for_each") == "${var.functions}", "not every function has its own service account")

    # Alerts: one condition each for every function's error rate, p95 latency and dead
    # letters, kept apart by the function label (a condition costs the same however many
    # functions it watches); the latency thresholds cover every function.
    alerts = locals_.get("function_alerts", {})
    queries = {name: text(alerts.get(name, {}).get("query")) for name in ("error_rate", "latency", "dead_letters")}
    expect(resource("google_monitoring_alert_policy", "function").get("for_each") == "${local.function_alerts}",
           "the function alerts are not made from local.function_alerts")
    expect('outcome=\\"error\\"' in queries["error_rate"] and "by (function)" in queries["error_rate"],
           "the error-rate alert does not watch each function")
    expect("histogram_quantile(0.95" in queries["latency"] and "by (function, le)" in queries["latency"]
           and "local.latency_thresholds_promql" in queries["latency"], "the latency alert does not compare each function with its own threshold")
    expect("tollgate_dead_letters_total" in queries["dead_letters"] and "by (function)" in queries["dead_letters"],
           "the dead-letter alert does not watch each function")
    expect("for name, f in var.functions" in text(locals_.get("latency_threshold")), "not every function has a latency threshold")
    # A condition costs $1.50 a month however many functions it watches: never one per function.
    policies = [body for (kind, _), body in resources.items() if kind == "google_monitoring_alert_policy"]
    expect(not any("var.functions" in text(body.get("for_each")) for body in policies),
           "an alert policy per function multiplies the conditions billed")
    conditions = len(alerts) + sum(len(body.get("conditions", [])) for body in policies if "for_each" not in body)
    expect(conditions <= 10, f"{conditions} alert conditions: each is billed $1.50 a month")
    # Every public service, and the gateway, has an uptime check on a path it answers alone.
    uptime = text(locals_.get("uptime_targets"))
    expect('f.ingress == \\"INGRESS_TRAFFIC_ALL\\"' in uptime and "/_tollgate/healthz" in uptime, "a public service has no uptime check")
    expect("location = /_tollgate/healthz" in (ROOT / "deploy" / "gateways" / "nginx" / "cloud-run.conf.template").read_text(),
           "the gateway does not answer its uptime check's path")

    push = resource("google_pubsub_subscription", "push")
    pushes = text(locals_.get("push_subscriptions"))
    expect("oidc_token" in text(push) and "dead_letter_policy" in text(push) and "retry_policy" in text(push),
           "push subscriptions lack OIDC, retry policy or dead-letter policy")
    scheduler = resource("google_cloud_scheduler_job", "job")
    expect("oidc_token" in text(scheduler), "scheduler jobs carry no OIDC token")
    queue = resource("google_cloud_tasks_queue", "queue")
    expect(queue.get("for_each") == "${var.queues}", "not every rendered queue is created")
    limits = text(queue.get("rate_limits"))
    expect("each.value.max_dispatches_per_second" in limits and "each.value.max_concurrent_dispatches" in limits,
           "queues do not take their rendered rate limits")
    public = resource("google_cloud_run_v2_service_iam_member", "public")
    gateway = resource("google_cloud_run_v2_service_iam_member", "gateway")

    grants = text(locals_.get("storage_grants"))
    expect("f.blob_roles" in grants, "storage roles are not the ones each function declares")
    signing = resource("google_service_account_iam_member", "sign_links")
    expect("f.signs_links" in text(signing.get("for_each")), "link signing is not granted to the functions that declare it")

    topics = set(rendered["topics"])
    expect("var.topics" in text(resource("google_pubsub_topic", "topic").get("for_each")), "topics are not created from the rendered list")
    for name, function in sorted(functions.items()):
        trigger = function["trigger"]
        for topic in [function["topic"]] * (trigger == "pubsub") + function["publishes"] + [s["topic"] for s in function["subscriptions"]]:
            expect(topic in topics, f"{name}: topic {topic} is not created")
        expect(bool(function["blob_roles"]) == ("TOLLGATE_BLOBS" in function["env"]),
               f"{name}: uses the usage bucket without a role on it, or has a role it does not use")
        if trigger == "pubsub":
            expect('f.trigger == \\"pubsub\\"' in pushes, f"{name}: no push subscription for its topic")
            expect(function["max_delivery_attempts"] is not None, f"{name}: no dead-letter policy")
        elif trigger == "scheduler":
            expect(selected_by(scheduler.get("for_each", ""), function) and "f.trigger" in scheduler.get("for_each", ""),
                   f"{name}: no scheduler job")
            expect(function["schedule"] and function["time_zone"], f"{name}: no schedule")
        elif trigger == "cloudtasks":
            expect(any(q["target"] == name for q in queues.values()), f"{name}: no queue targets it")
        elif trigger == "http":
            if function["ingress"] == "INGRESS_TRAFFIC_ALL":
                expect(selected_by(public.get("for_each", ""), function), f"{name}: public, but nobody may invoke it")
            elif function["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER":
                expect("f.ingress" in text(gateway.get("for_each")), f"{name}: behind the load balancer, but the gateway may not invoke it")
            else:
                problems.append(f"{name}: an HTTP function that nobody outside can reach")
        else:
            problems.append(f"{name}: unknown trigger {trigger}")
        if function["subscriptions"]:
            expect("f.subscriptions" in pushes, f"{name}: its extra subscriptions are not created")
        expect(function["ingress"] != "INGRESS_TRAFFIC_ALL" or trigger == "http",
               f"{name}: only an HTTP function called from outside Google may take internet traffic")

    # Secrets: created empty, read by the functions that declare them, values never here.
    expect(resource("google_secret_manager_secret", "secret").get("for_each") == "${local.secret_ids}",
           "not every declared secret is created")
    for (kind, name), body in resources.items():
        if kind == "google_secret_manager_secret_version":
            expect("monitoring/run-gmp-config.yaml" in text(body.get("secret_data")),
                   f"{kind}.{name} puts a value in Terraform: secrets are added by a person, never in state")

    bucket = resource("google_storage_bucket", "usage")
    expect(bucket.get("uniform_bucket_level_access") is True, "the usage bucket lacks uniform access")
    expect(unquote(bucket.get("public_access_prevention")) == "enforced", "the usage bucket may be made public")
    expect(bucket.get("versioning", [{}])[0].get("enabled") is True, "the usage bucket is not versioned")
    expect("retention_period" in text(bucket.get("retention_policy")), "the usage bucket has no retention policy")
    expect("lifecycle_rule" in bucket, "the usage bucket has no lifecycle")
    expect(("google_firestore_database", "default") in resources, "no Firestore database")
    expect(("google_billing_budget", "tollgate") in resources, "no budget")

    # The pipeline builds and pushes the one image every service runs, tagged with the
    # commit (never latest), and deploys that tag; the service chooses its function by
    # K_SERVICE, which Cloud Run sets to its name.
    pipeline = options.pipeline.read_text()
    expect(pipeline.count("tollgate/functions:$COMMIT_SHA") == 2, "cloudbuild.yaml does not build and push the one image tagged with the commit")
    expect(":latest" not in pipeline and "image_tag=$COMMIT_SHA" in pipeline, "cloudbuild.yaml deploys a mutable tag")
    expect("/functions:${var.image_tag}" in text(container.get("image")), "the services do not run the one image")
    expect(service.get("name") == "${each.key}", "each service is not named after its function (K_SERVICE chooses the function)")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    expect("--product tollgate-functions" in dockerfile and 'ENTRYPOINT ["/usr/local/bin/tollgate-functions"]' in dockerfile,
           "deploy/Dockerfile does not build and run tollgate-functions")

    # The gateway (gateway.tf): the function it asks and the hosts it routes are chosen by
    # each function's load_balancer route, never by name; what sits behind the load
    # balancer is reached only through it or the VPC; the template's variables are set.
    for name, function in sorted(functions.items()):
        behind = function["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
        expect(behind == (function.get("load_balancer") is not None),
               f"{name}: behind the load balancer without a load_balancer route, or a route without that ingress")
    expect(sum(f.get("load_balancer") == "gateway" for f in functions.values()) == 1, "not exactly one function is the one the gateway asks")
    expect('f.load_balancer == \\"gateway\\"' in text(locals_.get("gateway_validator")), "the gateway's validator is not chosen by its route")
    gateway = resource("google_cloud_run_v2_service", "gateway")
    expect(unquote(gateway.get("ingress")) == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "the gateway takes traffic from outside the load balancer")
    expect("ALL_TRAFFIC" in text(gateway.get("template")), "the gateway does not reach the validator through the VPC (internal)")
    gateway_env = {unquote(e.get("name")) for e in gateway.get("template", [{}])[0].get("containers", [{}])[0].get("env", [])}
    template = (ROOT / "deploy" / "gateways" / "nginx" / "cloud-run.conf.template").read_text()
    read = set(re.findall(r"\$\{([A-Z_]+)\}", template)) - {"PORT", "TOLLGATE_RESOLVER"}
    expect(read <= gateway_env, f"the gateway image reads {sorted(read - gateway_env)}, which gateway.tf does not set")
    expect("google_compute_security_policy.gateway" in text(resource("google_compute_backend_service", "gateway").get("security_policy")),
           "the load balancer's backends have no Cloud Armor policy")
    expect(unquote(resource("google_compute_global_forwarding_rule", "gateway").get("port_range")) == "443", "the load balancer listens on more than HTTPS")
    expect(text(service.get("invoker_iam_disabled")) == text("${local.gateway_enabled && each.value.load_balancer != null}"),
           "a service skips the invoker check other than behind Tollgate's own load balancer")
    pipeline_gateway = "tollgate/gateway:$COMMIT_SHA" in pipeline and "deploy/gateways/nginx/Dockerfile" in pipeline
    expect(pipeline_gateway, "cloudbuild.yaml does not build the gateway image")

    for problem in problems:
        print(f"deploy/terraform: {problem}", file=sys.stderr)
    if not problems:
        print(f"deploy/terraform: {len(functions)} functions, each with its service, identity, trigger, secrets, alert and image")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
