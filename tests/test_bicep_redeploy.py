"""Bicep that deploys with any allowed value, redeploys after a teardown and after a rotation, and keeps what
it turns off turned off (issue 20, points 3 and 5; issue 19: a withdrawal is final). No Bicep compiler or
Azure here: the templates are read with pycep and their expressions evaluated by tests/test_bicep.py's
Evaluator."""
from __future__ import annotations

import json
import re

from tests.support.bicep import (
    AZD_ENVIRONMENT_NAMES,
    BICEP,
    BICEP_FILES,
    RESOURCE_GROUP_ID,
    SUBSCRIPTION_ID,
    Evaluator,
    app_settings,
    bicepparam_assignments,
    body,
    main,
    module_call,
    module_doc,
    parse,
    resources_of,
    unique_string,
)

ACCOUNT = "Microsoft.Storage/storageAccounts"
BLOB_SERVICE = "Microsoft.Storage/storageAccounts/blobServices"
# Cognitive Services account names (and custom subdomains): 2-64 letters, digits, hyphens, no leading hyphen.
SPEECH_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]{1,63}$")


def _code(path) -> str:
    """A Bicep file without its // comments."""
    return "\n".join(line.split("//", 1)[0] for line in path.read_text().splitlines())


def test_no_app_setting_named_website_auth_enabled_anywhere():
    """On Flex an app setting overrides the site's auth config when the host assigns it
    (azure-functions-host HostAssignmentContext.ApplyAppSettings), so the platform's own value must rule."""
    assert not {k for k in app_settings() if k.upper() == "WEBSITE_AUTH_ENABLED"}
    for path in BICEP_FILES:
        assert "website_auth_enabled" not in _code(path).lower(), f"{path.name} sets WEBSITE_AUTH_ENABLED"
        for name, res in resources_of(parse(path), "Microsoft.Web/sites/config").items():
            assert body(res)["name"] != "'appsettings'" and body(res)["name"] != "appsettings", \
                f"{path.name}:{name}: app settings only through main.bicep's appSettings"
    site = body(next(iter(resources_of(module_doc("functionApp"), "Microsoft.Web/sites").values())))
    assert "WEBSITE_AUTH_ENABLED" not in json.dumps(site).upper()


def test_clearing_the_console_client_id_turns_built_in_auth_off():
    doc = module_doc("consoleAuth")
    [(name, auth)] = resources_of(doc, "Microsoft.Web/sites/config").items()
    assert auth["config"].get("condition") is None, "always deployed: a skipped resource would keep the old sign-in"
    props = body(auth)["properties"]

    def deployed(client_id):
        return Evaluator(doc, clientId=client_id, tenantId="tenant")(props)

    assert deployed("") == {"platform": {"enabled": False}}
    on = deployed("11111111-2222-3333-4444-555555555555")
    assert on["platform"]["enabled"] is True and on["globalValidation"]["requireAuthentication"] is True
    assert set(on["globalValidation"]["excludedPaths"]) == {"/api/preservica/webhook", "/api/health"}
    assert module_call("consoleAuth")["params"]["clientId"] == "consoleClientId"


def test_speech_name_is_valid_changes_with_the_salt_and_is_stable_without_it():
    doc = main()
    assert module_call("speech")["params"]["name"] == "speechName"
    assert doc["parameters"]["speechNameSalt"]["default"] == ""
    for base in AZD_ENVIRONMENT_NAMES:
        def name(salt, base=base):
            return Evaluator(doc, baseName=base, speechNameSalt=salt).variable("speechName")

        token = unique_string(SUBSCRIPTION_ID, RESOURCE_GROUP_ID, base)
        prefix = Evaluator(doc, baseName=base).variable("prefix")
        assert name("") == f"spch-{prefix}-{token}"          # the name earlier deployments created
        names = {salt: name(salt) for salt in ("", "2", "after-az-group-delete")}
        assert len(set(names.values())) == 3
        assert all(SPEECH_NAME.match(n) for n in names.values()), names
    others = ("functionAppName", "keyVaultName", "token")
    assert {v: Evaluator(doc, speechNameSalt="2").variable(v) for v in others} == \
        {v: Evaluator(doc).variable(v) for v in others}
    assert bicepparam_assignments()["speechNameSalt"] == "readEnvironmentVariable('SPEECH_NAME_SALT', '')"


def test_the_public_account_is_optional_and_its_settings_follow():
    doc = main()
    assert doc["parameters"]["deployPublish"]["default"] is True
    assert doc["modules"]["publicStorage"]["config"]["condition"] == "deployPublish"
    endpoint = {"publicStorage": {"outputs": {"blobEndpoint": "https://stiiif.blob/", "containerUrl": "https://c"}}}
    uri = app_settings()["PUBLISH_BLOB_SERVICE_URI"]
    url = doc["outputs"]["publicIiifUrl"]["value"]
    assert Evaluator(doc, deployPublish=False)(uri) == "" and Evaluator(doc, deployPublish=False)(url) == ""
    assert Evaluator(doc, deployPublish=True, **endpoint)(uri) == "https://stiiif.blob/"
    assert Evaluator(doc, deployPublish=True, **endpoint)(url) == "https://c"
    assert bicepparam_assignments()["deployPublish"] == "bool(readEnvironmentVariable('DEPLOY_PUBLISH', 'true'))"
    # The policy a landing zone denies it with is named where an operator looks for it.
    assert "4fa4b6c0-31ca-4c0d-b10d-24b96f62a751" in doc["parameters"]["deployPublish"]["decorators"][0]["argument"]


def test_a_withdrawn_public_file_is_not_restorable():
    """Issue 19: a withdrawal is final. No soft delete of blobs or containers, no versions, on the public account,
    with the reason next to it (checkov 3.3 has no Bicep check for blob soft delete, so there is nothing to skip:
    a skip comment would be stale, which test_checkov_skips_are_exactly_the_inline_comments refuses)."""
    doc = module_doc("publicStorage")
    (service,) = resources_of(doc, BLOB_SERVICE).values()
    props = body(service)["properties"]
    assert props["deleteRetentionPolicy"]["enabled"] is False
    assert props["containerDeleteRetentionPolicy"]["enabled"] is False
    assert props["isVersioningEnabled"] is False
    assert "changeFeed" not in props and "restorePolicy" not in props   # point-in-time restore needs both
    assert not [r for r in doc.get("resources", {}).values() if "objectReplicationPolicies" in r["type"]
                or "inventoryPolicies" in r["type"]]
    text = (BICEP / "modules" / "publicstorage.bicep").read_text()
    assert re.search(r"//.*withdrawal is final", text), "the template says why soft delete is off"


def test_secrets_are_written_only_with_write_secrets():
    doc = main()
    written = module_call("keyVault")["params"]["secretValues"]
    values = {"webhookSecret": "new", "preservicaPassword": "pw"}
    assert Evaluator(doc, writeSecrets=False, **values)(written) == {}
    assert Evaluator(doc, writeSecrets=True, **values)(written)["preservica-webhook-secret"] == "new"
    assert doc["parameters"]["writeSecrets"]["default"] is False
    assert bicepparam_assignments()["writeSecrets"] == "bool(readEnvironmentVariable('WRITE_SECRETS', 'false'))"


def test_no_deprecated_or_preview_api_for_alerts():
    versions = {(m[0], m[1]) for path in BICEP_FILES
                for m in re.findall(r"'(Microsoft\.Insights/[\w/]+)@([\w-]+)'", path.read_text())}
    assert not {v for v in versions if "preview" in v[1]}, versions
    assert ("Microsoft.Insights/scheduledQueryRules", "2023-12-01") in versions


def test_alert_rules_keep_the_names_earlier_deployments_created():
    """A renamed rule would be a second rule next to the old one (deployments are incremental): the four rules
    that existed before the alert signals keep their names; the new ones are added."""
    doc = parse(BICEP / "modules" / "alerts.bicep")
    names = set()
    for res in resources_of(doc, "Microsoft.Insights/scheduledQueryRules").values():
        loop = res["config"].get("loop_type")
        items = Evaluator(doc)(loop["detail"]["array_name"]) if loop else [None]
        for item in items:
            params = {loop["detail"]["item_name"]: item} if loop else {}
            names.add(Evaluator(doc, namePrefix="p", **params)(body(res)["name"]))
    assert {"alert-p-poison", "alert-p-webhook-failures", "alert-p-no-delivery", "alert-p-webhooks-missed"} <= names
    # the alert signals' rules, added since: the reconciler's stall, the public sweep, the custody audit, unsafe routes,
    # a closed file's text kept in a fragment a person edited
    assert names - {"alert-p-poison", "alert-p-webhook-failures", "alert-p-no-delivery", "alert-p-webhooks-missed"} == {
        "alert-p-reconcile-stalled", "alert-p-sweep-withdrew", "alert-p-custody-audit", "alert-p-routes-unsafe",
        "alert-p-closed-text-kept"}
