"""Reading the Bicep in bicep/ with pycep-parser (what checkov reads Bicep with) and evaluating the part of
its expressions that names and counts are built from, as no Bicep compiler runs here."""
from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from pycep import BicepParser

from handlers.pipeline import registry
from tests.support.paths import ROOT

BICEP = ROOT / "bicep"
MAIN = BICEP / "main.bicep"
BICEP_FILES = sorted(BICEP.rglob("*.bicep"))
AZD_ENVIRONMENT_NAMES = ("preservica-hooks", "Prod_EU.(2)", "p" * 64)  # azd allows a-z A-Z 0-9 - _ . ( )


# --------------------------------------------------------------------------------------------
# Reading the templates
# --------------------------------------------------------------------------------------------

@cache
def parse(path: Path) -> dict:
    return BicepParser().parse(file_path=path)


def main() -> dict:
    return parse(MAIN)


def module_call(symbol: str, doc: dict | None = None) -> dict:
    """A module's call in main.bicep (name, params), looking through an `if` condition."""
    config = (doc or main())["modules"][symbol]["config"]
    return config["config"] if "condition" in config else config


def module_doc(symbol: str) -> dict:
    """The parsed file of one of main.bicep's modules."""
    return parse((BICEP / main()["modules"][symbol]["detail"]["path"]).resolve())


def resources_of(doc: dict, type_: str) -> dict[str, dict]:
    return {name: res for name, res in doc.get("resources", {}).items() if res["type"] == type_}


def body(resource: dict) -> dict:
    """A resource's properties, looking through a `[for ...]` loop or an `if` condition."""
    config = resource["config"]
    return config["config"] if "loop_type" in config or "condition" in config else config


def resolve(doc: dict, value):
    """Follow a bare identifier to its variable value; pycep writes identifiers and literals alike."""
    seen = set()
    while isinstance(value, str) and value in doc.get("variables", {}) and value not in seen:
        seen.add(value)
        value = doc["variables"][value]["value"]
    return value


def param_default(doc: dict, value):
    """(param name, default) when value is a parameter (or string(parameter)), else None."""
    if isinstance(value, dict) and value.get("function", {}).get("type") == "string":
        value = value["function"]["parameters"]["value_to_convert"]
    if isinstance(value, str) and value in doc.get("parameters", {}):
        return value, doc["parameters"][value].get("default")
    return None


def app_settings() -> dict:
    return main()["variables"]["appSettings"]["value"]


def settings_where(where: str) -> set[str]:
    return {s.name for s in registry.all_settings() if s.where == where}


# What main.bicep wires for the custody action (issue 23) before that action is merged: it is written on
# branch `custody`, which declares these settings and registers the action (and so its queue). Until then
# the contract tests leave exactly these out, and tests/test_custody_bicep.py skips its check of them.
CUSTODY_APP_SETTINGS = frozenset({"CUSTODY_ACCOUNT_URL", "CUSTODY_CONTAINER", "CUSTODY_AUDIT_SCHEDULE",
                                  "CUSTODY_AUDIT_DAYS", "CUSTODY_AUDIT_MAX_REQUESTS"})
CUSTODY_QUEUES = frozenset({"action-custody", "action-custody-poison"})
CUSTODY_PENDING = ("the custody action is not merged yet: branch `custody` (issue 23) declares the CUSTODY_* "
                   "settings and registers the action and its queue")


def custody_pending() -> bool:
    return "custody" not in registry.names()


def pending_app_settings() -> frozenset[str]:
    return CUSTODY_APP_SETTINGS if custody_pending() else frozenset()


def pending_queues() -> frozenset[str]:
    return CUSTODY_QUEUES if custody_pending() else frozenset()


def unquote(key: str) -> str:
    return key[1:-1] if key.startswith("'") and key.endswith("'") else key


def is_secure(doc: dict, name: str) -> bool:
    return any(d["type"] == "secure" for d in doc["parameters"][name]["decorators"])


# --------------------------------------------------------------------------------------------
# Evaluating expressions (no Bicep compiler here)
# --------------------------------------------------------------------------------------------

SUBSCRIPTION_ID = "/subscriptions/00000000-0000-0000-0000-000000000001"
RESOURCE_GROUP_ID = SUBSCRIPTION_ID + "/resourceGroups/rg-preservica-hooks"


def unique_string(*parts: str) -> str:
    """Stand-in for ARM uniqueString: deterministic, 13 characters of lowercase base32, like the real one."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()[:8]
    return base64.b32encode(digest).decode().lower().rstrip("=")


class Evaluator:
    """Evaluates the part of pycep's expression tree that names and counts are built from.

    pycep writes identifiers and string literals alike: a bare string that names a parameter or
    variable is read as one, any other as a literal (with its ${identifier} interpolations filled in).
    """

    def __init__(self, doc: dict, **params):
        self.doc, self.params = doc, params

    def variable(self, name: str):
        return self(self.doc["variables"][name]["value"])

    def path(self, dotted: str):
        """`name` or `name.property...` inside a ${} interpolation."""
        first, *rest = dotted.split(".")
        value = self(first)
        for key in rest:
            value = value[key]
        return value

    def __call__(self, node):
        if isinstance(node, list):
            return [self(item) for item in node]
        if not isinstance(node, (str, dict)):
            return node
        if isinstance(node, str):
            if node in self.params:
                return self.params[node]
            if node in self.doc.get("parameters", {}):
                return self.doc["parameters"][node].get("default")
            if node in self.doc.get("variables", {}):
                return self.variable(node)
            return re.sub(r"\$\{([\w.]+)\}", lambda m: str(self.path(m[1])), node)
        if "function" in node:
            kind, args = node["function"]["type"], node["function"]["parameters"]
            values = {key: self(value) for key, value in (args or {}).items()}
            functions = {
                "to_lower": lambda: values["string_to_change"].lower(),
                "replace": lambda: values["original_string"].replace(values["old_string"], values["new_string"]),
                "take": lambda: values["original_value"][:values["number_to_take"]],
                "unique_string": lambda: unique_string(*values.values()),
                "subscription": lambda: {"id": SUBSCRIPTION_ID},
                "resource_group": lambda: {"id": RESOURCE_GROUP_ID},
                "empty": lambda: not values["item_to_test"],
                "min": lambda: min(values.values()),
                "string": lambda: str(values["value_to_convert"]).lower() if isinstance(values["value_to_convert"], bool)
                else str(values["value_to_convert"]),
                "length": lambda: len(next(iter(values.values()))),
                "max": lambda: max(values.values()),
            }
            return functions[kind]()
        if "operator" in node:
            kind, ops = node["operator"]["type"], node["operator"]["operands"]
            if kind == "conditional":
                return self(ops["true_value"] if self(ops["condition"]) else ops["false_value"])
            if kind == "not":
                return not self(ops["bool_value"])
            if kind == "property_accessor":   # pycep nests a.b.c as a.(b.c): walk the chain
                value, rest = self(ops["operand_1"]), ops["operand_2"]
                while isinstance(rest, dict) and rest.get("operator", {}).get("type") == "property_accessor":
                    value = value[rest["operator"]["operands"]["operand_1"]]
                    rest = rest["operator"]["operands"]["operand_2"]
                return value[rest]
            a, b = self(ops["operand_1"]), self(ops["operand_2"])
            operators = {
                "property_accessor": lambda: a[b], "index_accessor": lambda: a[b] if isinstance(a, list) else a[str(b)],
                "equals": lambda: a == b, "not_equals": lambda: a != b, "greater_than": lambda: a > b,
                "and": lambda: a and b, "or": lambda: a or b,
            }
            return operators[kind]()
        return {unquote(key): self(value) for key, value in node.items()}


def bicepparam_assignments() -> dict[str, str]:
    return dict(re.findall(r"^param (\w+) = (.+)$", (BICEP / "main.bicepparam").read_text(), re.M))
