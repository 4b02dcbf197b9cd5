"""Reads YAML files named on stdin as {"files": [path, ...]} and writes {"documents":
[parsed, ...]} as JSON, with PyYAML's safe loader: the gateway recipes are checked as the
gateways would read them, not by matching lines."""

import json
import sys

import yaml

request = json.load(sys.stdin)
documents = []
for path in request["files"]:
    with open(path, encoding="utf-8") as file:
        documents.append(yaml.safe_load(file))
json.dump({"documents": documents}, sys.stdout)
