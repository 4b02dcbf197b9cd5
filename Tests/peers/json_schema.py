"""Validates instances against a JSON Schema with the jsonschema package (draft 2020-12).

stdin: {"schema": {...}, "instances": [...]}; stdout: {"valid": [true, false, ...]}.
"""
import json
import sys

import jsonschema

request = json.load(sys.stdin)
validator = jsonschema.Draft202012Validator(request["schema"])
validator.check_schema(request["schema"])
json.dump({"valid": [validator.is_valid(instance) for instance in request["instances"]]}, sys.stdout)
