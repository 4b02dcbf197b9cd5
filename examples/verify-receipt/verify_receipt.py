#!/usr/bin/env python3
"""An independent verifier of Tollgate's signed usage artifacts: it relies on nothing
but what docs/formats.md states, so it checks the specification as much as the files.

    verify_receipt.py receipt --receipt R --signature S --records N --trusted-key K --account A --day D
        A customer's check: the receipt is signed by the pinned key, is account A's for
        day D, and the records object is the one it describes.
    verify_receipt.py day --directory DIR --trusted-key K [--previous-manifest M]
        An auditor's check of one exported day: the manifest's signature and canonical
        form, every object it lists, the per-account totals, the chain link to the
        previous day's manifest, and every receipt in DIR/accounts against the manifest.

Prints one line, "<verdict>  <detail>"; exits 0 when the verdict is "valid", else 1.
Needs Python 3.9+ and the `cryptography` package (for Ed25519).
"""

import argparse
import base64
import gzip
import hashlib
import json
import os
import sys
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Refused(Exception):
    def __init__(self, verdict, detail):
        super().__init__(detail)
        self.verdict = verdict
        self.detail = detail


def canonical(value, legacy=False):
    """RFC 8785 for the values these documents hold (objects, arrays, strings, integers).
    `legacy`: U+0008 and U+000C as \\u0008 and \\u000c, as written before 2026-12-07."""
    if isinstance(value, dict):
        # RFC 8785 orders keys by their UTF-16 code units.
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))
        return "{" + ",".join(canonical(key, legacy) + ":" + canonical(value[key], legacy) for key in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item, legacy) for item in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
        if not legacy:
            short.update({"\b": "\\b", "\f": "\\f"})
        return '"' + "".join(short.get(c, "\\u%04x" % ord(c) if ord(c) < 0x20 else c) for c in value) + '"'
    raise ValueError("a value canonical JSON here does not hold: %r" % (value,))


def read_canonical(data, what):
    """Parses a signed document and checks it is written canonically, with one newline."""
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Refused("altered " + what, "the %s is not JSON" % what)
    if data not in ((canonical(value) + "\n").encode("utf-8"), (canonical(value, legacy=True) + "\n").encode("utf-8")):
        raise Refused("altered " + what, "the %s is not canonical JSON" % what)
    return value


def load_key(path):
    document = json.loads(open(path, "rb").read())
    raw = base64.b64decode(document["publicKey"], validate=True)
    if document.get("algorithm") != "Ed25519" or len(raw) != 32:
        raise Refused("unknown key", "the trusted key is not an Ed25519 public key document")
    key_id = hashlib.sha256(raw).digest()[:16].hex()
    if document.get("keyId") != key_id:
        raise Refused("unknown key", "the trusted key's keyId is not derived from its key")
    return key_id, Ed25519PublicKey.from_public_bytes(raw)


def check_signature(document, signature_bytes, key, what):
    key_id, public_key = key
    try:
        signature = json.loads(signature_bytes)
        raw = base64.b64decode(signature["signature"], validate=True)
        assert signature["algorithm"] == "Ed25519"
    except Exception:
        raise Refused("altered " + what, "the signature is unreadable")
    if signature["keyId"] != key_id:
        raise Refused("unknown key", "signed by key %s, not %s" % (signature["keyId"], key_id))
    try:
        public_key.verify(raw, document)
    except InvalidSignature:
        raise Refused("altered " + what, "the signature does not verify")


def record_lines(data, what):
    try:
        text = gzip.decompress(data)
    except Exception:
        raise Refused("altered " + what, "the records are not gzip")
    if text and not text.endswith(b"\n"):
        raise Refused("altered " + what, "the last record has no newline")
    return [json.loads(line) for line in text.split(b"\n")[:-1]] if text else []


def integer(document, *path):
    value = document
    for name in path:
        value = value[name] if isinstance(value, dict) and name in value else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Refused("altered receipt", "%s is not an integer" % ".".join(path))
    return value


def verify_receipt(receipt_bytes, signature_bytes, records_bytes, key, account, day):
    check_signature(receipt_bytes, signature_bytes, key, "receipt")
    receipt = read_canonical(receipt_bytes, "receipt")
    if receipt.get("version") != 1:
        raise Refused("altered receipt", "not a version 1 receipt")
    if receipt.get("keyId") != key[0]:
        raise Refused("altered receipt", "the receipt names another key than its signature")
    if receipt.get("accountId") != account:
        raise Refused("another account", "the receipt is of account %s, not %s" % (receipt.get("accountId"), account))
    if receipt.get("day") != day:
        raise Refused("another day", "the receipt is for %s, not %s" % (receipt.get("day"), day))
    name = "%s/accounts/%s.ndjson.gz" % (day.replace("-", "/"), urllib.parse.quote(account, safe="-._~"))
    stated = receipt["object"]["name"]
    if not (stated == name or stated.endswith("/" + name)):
        raise Refused("altered receipt", "the records object %s is not the account's for the day" % stated)
    if len(records_bytes) != integer(receipt, "object", "bytes") or hashlib.sha256(records_bytes).hexdigest() != receipt["object"]["sha256"]:
        raise Refused("altered records", "the records do not match the receipt's SHA-256 and size")
    lines = record_lines(records_bytes, "records")
    if any(line.get("accountId") != account for line in lines):
        raise Refused("altered records", "a record is not a record of %s" % account)
    count, units = len(lines), sum(line.get("units", 0) for line in lines)
    late = [line for line in lines if line["time"][:10] < day]
    if (count, units) != (integer(receipt, "records"), integer(receipt, "units")) or (count, units) != (
        integer(receipt, "object", "records"), integer(receipt, "object", "units")) or (len(late), sum(line.get("units", 0) for line in late)) != (
            integer(receipt, "lateRecords"), integer(receipt, "lateUnits")):
        raise Refused("altered records", "the records hold %d records (%d units), the receipt says %d (%d)" % (
            count, units, receipt["records"], receipt["units"]))
    return "%s %s: %d records, %d units, manifest %s" % (day, account, count, units, receipt["manifest"]["sha256"])


def verify_day(directory, key, previous_manifest):
    manifest_bytes = open(os.path.join(directory, "manifest.json"), "rb").read()
    check_signature(manifest_bytes, open(os.path.join(directory, "manifest.json.sig"), "rb").read(), key, "manifest")
    manifest = read_canonical(manifest_bytes, "manifest")
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    day = manifest["day"]
    if previous_manifest is not None:
        previous = open(previous_manifest, "rb").read()
        link = manifest.get("previous") or {}
        if link.get("sha256") != hashlib.sha256(previous).hexdigest() or link.get("day") != json.loads(previous)["day"]:
            raise Refused("broken chain", "the manifest does not name the previous manifest's SHA-256")
    totals = {}
    for entry in manifest["objects"]:
        # Object names are full names in the bucket: the folder is the copy of the name's.
        folder = os.path.dirname(entry["name"])
        if not os.path.normpath(directory).endswith(os.path.normpath(folder)):
            raise Refused("altered manifest", "%s is not an object of this folder" % entry["name"])
        data = open(os.path.join(directory, os.path.basename(entry["name"])), "rb").read()
        if len(data) != entry["bytes"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise Refused("altered object", "%s does not match the manifest" % entry["name"])
        lines = record_lines(data, "object")
        times = sorted(line["time"] for line in lines)
        if len(lines) != entry["records"] or sum(line.get("units", 0) for line in lines) != entry["units"] or (
                lines and (times[0], times[-1]) != (entry["firstTime"], entry["lastTime"])):
            raise Refused("altered object", "%s does not hold what the manifest says" % entry["name"])
        for line in lines:
            if (entry["kind"] == "late") != (line["time"][:10] < day):
                raise Refused("altered object", "%s holds a record of the wrong kind" % entry["name"])
            total = totals.setdefault(line["accountId"], [0, 0, 0, 0])
            total[0] += 1
            total[1] += line.get("units", 0)
            if entry["kind"] == "late":
                total[2] += 1
                total[3] += line.get("units", 0)
    stated = {a["accountId"]: [a["records"], a["units"], a["lateRecords"], a["lateUnits"]] for a in manifest["accounts"]}
    if stated != totals or sum(t[0] for t in totals.values()) != manifest["records"]:
        raise Refused("altered manifest", "the account totals are not the sums of the objects")
    receipts = 0
    accounts = os.path.join(directory, "accounts")
    for file in sorted(os.listdir(accounts)) if os.path.isdir(accounts) else []:
        if not file.endswith(".receipt.json"):
            continue
        account = urllib.parse.unquote(file[: -len(".receipt.json")])
        read = lambda suffix: open(os.path.join(accounts, file[: -len(".receipt.json")] + suffix), "rb").read()
        verify_receipt(read(".receipt.json"), read(".receipt.json.sig"), read(".ndjson.gz"), key, account, day)
        receipt = json.loads(read(".receipt.json"))
        if receipt["manifest"] != {"day": day, "sha256": digest}:
            raise Refused("altered receipt", "%s's receipt names another manifest" % account)
        if stated.get(account) != [receipt["records"], receipt["units"], receipt["lateRecords"], receipt["lateUnits"]]:
            raise Refused("altered receipt", "%s's receipt disagrees with the manifest's totals" % account)
        receipts += 1
    return "%s: %d objects, %d records, %d accounts, %d receipts, manifest %s" % (
        day, len(manifest["objects"]), manifest["records"], len(stated), receipts, digest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    receipt = commands.add_parser("receipt")
    for option in ("receipt", "signature", "records", "trusted-key", "account", "day"):
        receipt.add_argument("--" + option, required=True)
    day = commands.add_parser("day")
    day.add_argument("--directory", required=True)
    day.add_argument("--trusted-key", required=True)
    day.add_argument("--previous-manifest")
    arguments = parser.parse_args()
    try:
        key = load_key(arguments.trusted_key)
        if arguments.command == "receipt":
            read = lambda path: open(path, "rb").read()
            detail = verify_receipt(read(arguments.receipt), read(arguments.signature), read(arguments.records), key,
                                    arguments.account, arguments.day)
        else:
            detail = verify_day(arguments.directory, key, arguments.previous_manifest)
    except Refused as refused:
        print("%s  %s" % (refused.verdict, refused.detail))
        return 1
    print("valid  " + detail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
