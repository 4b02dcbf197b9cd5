"""Prints the environment each Cloud Run service gets from deploy/terraform: the rendered
functions.auto.tfvars.json with main.tf's placeholders filled in as `local.placeholders`
fills them, Memorystore's address when it is on, the tfvars' `settings`, and the names of
the secrets Secret Manager adds. Reads the Terraform with python-hcl2, as the other checks
do; exits 1 naming every placeholder main.tf would leave unfilled.

    service_environment.py [--tfvars FILE] [--variables FILE]

Values Terraform only knows after an apply are stand-ins of the same shape: the project
number in Cloud Run URLs, Memorystore's address. A test starts every function with
exactly this environment (secrets as stand-ins) and requires /healthz."""

import argparse
import json
import pathlib
import re
import sys

import hcl2

from check_terraform import TERRAFORM, load, unquote

PROJECT_NUMBER = "123456789012"
MEMORYSTORE_ADDRESS = "10.0.0.3:6379"
# How main.tf cuts a value into placeholders and the text between them.
PARTS = re.compile(r"\{[a-z_:0-9-]+\}|[^{]+|\{")


def plain(value):
    """A tfvars value as data: python-hcl2 keeps the quotes of strings and keys."""
    if isinstance(value, dict):
        return {unquote(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return unquote(value)


class Evaluator:
    """The few expression forms `local.platform_values` uses, evaluated against a tfvars file."""

    def __init__(self, resources, variables, tfvars):
        self.resources, self.variables, self.tfvars = resources, variables, tfvars

    def variable(self, name):
        if name in self.tfvars:
            return self.tfvars[name]
        declared = self.variables.get(name, {})
        if "default" not in declared:
            raise ValueError(f"var.{name} is required and the tfvars do not set it")
        return declared["default"]

    def expression(self, text: str):
        text = text.strip()
        if match := re.fullmatch(r"var\.(\w+)", text):
            return self.variable(match.group(1))
        if match := re.fullmatch(r'join\("(.*)", var\.(\w+)\)', text):
            return match.group(1).join(self.variable(match.group(2)))
        if match := re.fullmatch(r"google_service_account\.(\w+)\.email", text):
            account = self.template(self.resources[("google_service_account", match.group(1))]["account_id"])
            return f"{account}@{self.variable('project')}.iam.gserviceaccount.com"
        if match := re.fullmatch(r"(\w+)\.(\w+)\.name", text):
            return self.template(self.resources[(match.group(1), match.group(2))]["name"])
        raise ValueError(f"cannot evaluate {text}")

    def template(self, value) -> str:
        """A string with `${…}` interpolations."""
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.expression(m.group(1))), unquote(value))


def environments(tfvars_path: pathlib.Path, variables_path: pathlib.Path):
    resources, locals_, variables = load()
    with tfvars_path.open() as handle:
        tfvars = {key: plain(value) for key, value in hcl2.load(handle).items() if not key.startswith("__")}
    rendered = json.loads(variables_path.read_text())["functions"]
    evaluate = Evaluator(resources, variables, tfvars)
    problems = []

    placeholders = {unquote(key): evaluate.template(value) for key, value in locals_["platform_values"].items()}
    # Cloud Run's deterministic URLs (local.service_url), with a stand-in project number.
    region = evaluate.variable("region")
    placeholders.update({f"{{url:{name}}}": f"https://{name}-{PROJECT_NUMBER}.{region}.run.app" for name in rendered})

    settings = tfvars.get("settings", {})
    for name in settings:
        if name not in rendered:
            problems.append(f"settings names {name}, which is not a function")
    memorystore = tfvars.get("memorystore")
    services = {}
    for name, function in sorted(rendered.items()):
        env = {}
        for key, value in function["env"].items():
            parts = PARTS.findall(value)
            for part in parts:
                if part.startswith("{") and part not in placeholders and len(part) > 1:
                    problems.append(f"{name}: {key} holds {part}, which main.tf's local.placeholders does not fill")
            env[key] = "".join(placeholders.get(part, part) for part in parts)
        if function["quota_in_memorystore"] and memorystore:
            env["TOLLGATE_QUOTA_STORE"] = f"redis://{MEMORYSTORE_ADDRESS}"
        env.update(settings.get(name, {}))
        services[name] = {"env": {k: v for k, v in sorted(env.items()) if v != ""}, "secrets": sorted(function["secrets"])}
    return services, problems


def main() -> int:
    arguments = argparse.ArgumentParser()
    arguments.add_argument("--tfvars", type=pathlib.Path, default=TERRAFORM / "production.tfvars.example")
    arguments.add_argument("--variables", type=pathlib.Path, default=TERRAFORM / "functions.auto.tfvars.json")
    options = arguments.parse_args()
    try:
        services, problems = environments(options.tfvars, options.variables)
    except (ValueError, KeyError) as error:
        print(f"deploy/terraform: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"deploy/terraform: {problem}", file=sys.stderr)
    print(json.dumps(services, indent=2, sort_keys=True))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
