"""The custody account in Bicep (issue 23, "Storage that cannot be quietly altered"): its own account, geo-redundant,
identity-only, every blob version WORM for the retention period, versioning and soft delete, a cold tier, and an app
identity that may add versions but can neither delete nor shorten retention. checkov runs on it with the rest
(tests/test_bicep.py)."""
from __future__ import annotations

import json
import re

import pytest

from handlers.core import settings
from handlers.pipeline import registry
from tests.support.bicep import (
    AZD_ENVIRONMENT_NAMES,
    BICEP,
    CUSTODY_APP_SETTINGS,
    CUSTODY_PENDING,
    CUSTODY_QUEUES,
    Evaluator,
    app_settings,
    bicepparam_assignments,
    body,
    custody_pending,
    main,
    module_call,
    module_doc,
    resources_of,
)
from tests.support.paths import ROOT

ACCOUNT = "Microsoft.Storage/storageAccounts"
BLOB_SERVICE = "Microsoft.Storage/storageAccounts/blobServices"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
GEO_REDUNDANT = {"Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"}
STORAGE_NAME = re.compile(r"[a-z0-9]{3,24}")

# Exactly what the custody action does with its container (see the role's comment in the module).
CUSTODY_ACTIONS = {"Microsoft.Storage/storageAccounts/blobServices/containers/read"}
CUSTODY_DATA_ACTIONS = {
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
}
# Any of these would let the app destroy, hide, move or unprotect what it wrote, or hand out access.
FORBIDDEN = ("delete", "move", "runAsSuperUser", "immutab", "tags", "setAcl", "generateUserDelegationKey",
             "Microsoft.Storage/storageAccounts/write", "containers/write", "*")


def _doc():
    return module_doc("custodyStorage")


def _one(type_: str) -> dict:
    (resource,) = resources_of(_doc(), type_).values()
    return body(resource)


def _param(doc: dict, name: str) -> dict:
    return doc["parameters"][name]


def _allowed(doc: dict, name: str) -> list:
    return next(d["argument"] for d in _param(doc, name)["decorators"] if d["type"] == "allowed")


def _bounds(doc: dict, name: str) -> tuple:
    decorators = {d["type"]: d["argument"] for d in _param(doc, name)["decorators"]}
    return decorators.get("min_value"), decorators.get("max_value")


# --------------------------------------------------------------------------------------------
# The account
# --------------------------------------------------------------------------------------------

def test_custody_is_its_own_account_created_by_default():
    doc = main()
    assert doc["parameters"]["deployCustody"]["default"] is True
    assert doc["modules"]["custodyStorage"]["config"]["condition"] == "deployCustody"
    assert bicepparam_assignments()["deployCustody"] == "bool(readEnvironmentVariable('DEPLOY_CUSTODY', 'true'))"
    for base in AZD_ENVIRONMENT_NAMES:
        evaluate = Evaluator(doc, baseName=base)
        names = {symbol: evaluate(module_call(symbol)["params"]["name"])
                 for symbol in ("storage", "publicStorage", "custodyStorage")}
        assert len(set(names.values())) == 3, names   # not the pipeline's, not the public one
        assert all(STORAGE_NAME.fullmatch(n) for n in names.values()), names


def test_custody_account_is_identity_only_https_tls12_and_never_public():
    props = _one(ACCOUNT)["properties"]
    assert props["allowSharedKeyAccess"] is False          # no key, no account or service SAS
    assert props["defaultToOAuthAuthentication"] is True
    assert props["allowBlobPublicAccess"] is False
    assert props["allowCrossTenantReplication"] is False
    assert props["allowedCopyScope"] == "AAD"
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True
    assert _one(CONTAINER)["properties"]["publicAccess"] == "None"


def test_custody_account_is_geo_redundant_gzrs_by_default():
    doc, main_doc = _doc(), main()
    assert _one(ACCOUNT)["sku"]["name"] == "skuName"
    assert set(_allowed(doc, "skuName")) == GEO_REDUNDANT == set(_allowed(main_doc, "custodySku"))
    assert _param(doc, "skuName")["default"] == _param(main_doc, "custodySku")["default"] == "Standard_GZRS"
    assert module_call("custodyStorage")["params"]["skuName"] == "custodySku"


def test_custody_content_goes_to_the_cold_tier():
    doc, main_doc = _doc(), main()
    assert _one(ACCOUNT)["properties"]["accessTier"] == "accessTier"   # the account default: every upload
    assert set(_allowed(doc, "accessTier")) == {"Cold", "Cool"} == set(_allowed(main_doc, "custodyAccessTier"))
    assert _param(doc, "accessTier")["default"] == _param(main_doc, "custodyAccessTier")["default"] == "Cold"
    assert module_call("custodyStorage")["params"]["accessTier"] == "custodyAccessTier"


# --------------------------------------------------------------------------------------------
# WORM, versioning, soft delete
# --------------------------------------------------------------------------------------------

def test_every_blob_version_is_worm_for_the_retention_period():
    doc, main_doc = _doc(), main()
    worm = _one(ACCOUNT)["properties"]["immutableStorageWithVersioning"]
    assert worm["enabled"] is True
    policy = worm["immutabilityPolicy"]
    assert policy["immutabilityPeriodSinceCreationInDays"] == "retentionDays"
    assert policy["allowProtectedAppendWrites"] is False
    assert _bounds(doc, "retentionDays") == (1, 146000) == _bounds(main_doc, "custodyRetentionDays")
    assert _param(doc, "retentionDays")["default"] is None           # main.bicep decides
    assert _param(main_doc, "custodyRetentionDays")["default"] == 3650
    assert module_call("custodyStorage")["params"]["retentionDays"] == "custodyRetentionDays"
    # The container says so too (it inherits it from the account anyway).
    assert _one(CONTAINER)["properties"]["immutableStorageWithVersioning"] == {"enabled": True}


def test_the_policy_is_unlocked_by_default_and_a_parameter_locks_it():
    doc, main_doc = _doc(), main()
    state = _one(ACCOUNT)["properties"]["immutableStorageWithVersioning"]["immutabilityPolicy"]["state"]
    assert Evaluator(doc)(state) == "Unlocked"
    assert Evaluator(doc, locked=True)(state) == "Locked"
    assert _param(main_doc, "custodyImmutabilityLocked")["default"] is False
    assert module_call("custodyStorage")["params"]["locked"] == "custodyImmutabilityLocked"
    assert bicepparam_assignments()["custodyImmutabilityLocked"] == \
        "bool(readEnvironmentVariable('CUSTODY_IMMUTABILITY_LOCKED', 'false'))"
    text = (BICEP / "modules" / "custodystorage.bicep").read_text()
    assert re.search(r"//.*irreversible", text), "the template says why it is not locked by default"


def test_versioning_and_soft_delete_of_blobs_and_containers():
    doc = _doc()
    props = _one(BLOB_SERVICE)["properties"]
    assert props["isVersioningEnabled"] is True                      # version-level WORM requires it
    assert props["deleteRetentionPolicy"] == {"enabled": True, "days": "deleteRetentionDays",
                                              "allowPermanentDelete": False}
    assert props["containerDeleteRetentionPolicy"] == {"enabled": True, "days": "deleteRetentionDays"}
    assert _bounds(doc, "deleteRetentionDays") == (1, 365)
    assert _param(doc, "deleteRetentionDays")["default"] == 30


# --------------------------------------------------------------------------------------------
# The app identity: adds versions, deletes nothing, changes no retention
# --------------------------------------------------------------------------------------------

def test_the_app_role_is_an_allow_list_without_delete_or_retention_changes():
    role = _one(ROLE_DEFINITION)["properties"]
    assert role["type"] == "CustomRole"
    (permissions,) = role["permissions"]
    assert set(permissions["actions"]) == CUSTODY_ACTIONS
    assert set(permissions["dataActions"]) == CUSTODY_DATA_ACTIONS
    assert permissions["notActions"] == [] and permissions["notDataActions"] == []
    for action in (*permissions["actions"], *permissions["dataActions"]):
        assert not [word for word in FORBIDDEN if word in action], action
    # Assignable only in this resource group; a tenant-unique name.
    assert json.dumps(role["assignableScopes"]).count('"resource_group"') == 1
    assert "${custodyAccount.name}" in role["roleName"]


def test_the_role_is_granted_to_the_app_identity_on_the_custody_container_only():
    doc = _doc()
    (assignment,) = resources_of(doc, ROLE_ASSIGNMENT).values()
    assignment = body(assignment)
    assert doc["resources"][assignment["scope"]]["type"] == CONTAINER
    role_id = assignment["properties"]["roleDefinitionId"]["function"]
    assert role_id["type"] == "subscription_resource_id"
    assert role_id["parameters"]["resource_name_1"]["operator"]["operands"] == \
        {"operand_1": "custodyWriterRole", "operand_2": "name"}
    assert assignment["properties"]["principalType"] == "ServicePrincipal"
    # The same identity the pipeline's roles go to.
    roles = main()["modules"]["roles"]["config"]["params"]
    assert json.dumps(module_call("custodyStorage")["params"]["principalId"]) == json.dumps(roles["principalId"])
    # No other role anywhere reaches the custody account: the pipeline's roles are on the pipeline's account.
    assert json.dumps(roles["storageAccountName"]).count('"storage"') == 1


def test_no_other_template_touches_the_custody_account():
    for path in sorted(BICEP.rglob("*.bicep")):
        if path.name in ("main.bicep", "custodystorage.bicep"):
            continue
        text = path.read_text().lower()
        if path.name == "alerts.bicep":   # the custody-audit alert reads telemetry, never the account
            assert not any(word in text for word in ("custodystorage", "stcust", "custody_account")), path.name
            continue
        assert "custody" not in text, path.name
    # No other module is handed the custody account; only the app settings name it.
    assert [key for key, value in main()["modules"].items() if "custodyStorage" in json.dumps(value)] == []


# --------------------------------------------------------------------------------------------
# App settings (names fixed with branch custody)
# --------------------------------------------------------------------------------------------

def test_app_settings_point_at_the_custody_account_and_container():
    doc = main()
    values = app_settings()
    assert set(values) >= CUSTODY_APP_SETTINGS
    url = values["CUSTODY_ACCOUNT_URL"]
    endpoint = {"custodyStorage": {"outputs": {"blobEndpoint": "https://stcust.blob/"}}}
    assert Evaluator(doc, deployCustody=True, **endpoint)(url) == "https://stcust.blob/"
    assert Evaluator(doc, deployCustody=False)(url) == ""
    assert Evaluator(doc)(values["CUSTODY_CONTAINER"]) == "custody"
    assert values["CUSTODY_CONTAINER"] == module_call("custodyStorage")["params"]["containerName"]
    assert Evaluator(doc)(values["CUSTODY_AUDIT_SCHEDULE"]) == "0 0 2 * * *"
    assert Evaluator(doc)(values["CUSTODY_AUDIT_DAYS"]) == "90"
    assert {"action-custody", "action-custody-poison"} <= set(Evaluator(doc).variable("queueNames"))
    assert "custodyAccountName" in doc["outputs"]


@pytest.mark.skipif(custody_pending(), reason=CUSTODY_PENDING)
def test_custody_settings_are_declared_app_settings_with_the_same_defaults():
    declared = {s.name: s for s in registry.all_settings()}
    for name in CUSTODY_APP_SETTINGS:
        assert declared[name].where == settings.APP, name
    doc = main()
    for name in CUSTODY_APP_SETTINGS - {"CUSTODY_ACCOUNT_URL"}:
        assert Evaluator(doc)(app_settings()[name]) == declared[name].default, name
    assert {settings.action_queue("custody"), settings.action_queue("custody") + "-poison"} == CUSTODY_QUEUES


def test_deploy_docs_say_how_to_verify_the_custody_account():
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split("## The custody account", 1)[1].split("\n## ", 1)[0]
    for needed in ("az storage account show", "az storage container show", "immutableStorageWithVersioning",
                   "custodyImmutabilityLocked", "GZRS", "Cold", "roleDefinitions/write"):
        assert needed in section, needed



def test_custody_is_never_the_public_account_or_container():
    """The custody copy holds every asset's files, closed ones too: never where the public store writes. Bicep
    names no private container like the public one (the app refuses that at run time: settings.refuse_public)."""
    values, doc = app_settings(), main()
    outputs = {"custodyStorage": {"outputs": {"blobEndpoint": "https://stcust.blob/"}},
               "publicStorage": {"outputs": {"blobEndpoint": "https://stpub.blob/"}}}
    evaluate = Evaluator(doc, deployCustody=True, deployPublish=True, **outputs)
    assert evaluate(values["CUSTODY_ACCOUNT_URL"]) == "https://stcust.blob/"
    assert evaluate(values["PUBLISH_BLOB_SERVICE_URI"]) == "https://stpub.blob/"
    public = evaluate(values["PUBLISH_CONTAINER"]).lower()
    private = [n for n in values if n.endswith("_CONTAINER") and n != "PUBLISH_CONTAINER"]
    assert "CUSTODY_CONTAINER" in private and len(private) >= 4
    assert all(evaluate(values[n]).lower() != public for n in private), private
