"""The public IIIF host in Bicep: a separate account, anonymous read on one container only, CORS GET from
anywhere, no shared keys, the app's identity the only writer; the pipeline's account stays private."""
from __future__ import annotations

import json

from tests.support.bicep import BICEP_FILES, app_settings, body, main, module_call, module_doc, parse, resources_of

ACCOUNT = "Microsoft.Storage/storageAccounts"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"


def test_public_account_is_locked_down_but_for_anonymous_read_of_one_container():
    doc = module_doc("publicStorage")
    (account,) = resources_of(doc, ACCOUNT).values()
    props = body(account)["properties"]
    assert props["allowBlobPublicAccess"] is True and props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2" and props["supportsHttpsTrafficOnly"] is True
    (container,) = resources_of(doc, CONTAINER).values()
    assert body(container)["properties"]["publicAccess"] == "Blob"          # single blobs, never a listing
    assert body(container)["name"] == "containerName"
    (service,) = resources_of(doc, "Microsoft.Storage/storageAccounts/blobServices").values()
    [rule] = body(service)["properties"]["cors"]["corsRules"]
    assert rule["allowedOrigins"] == ["*"] and "GET" in rule["allowedMethods"]
    assert set(rule["allowedMethods"]) <= {"GET", "HEAD", "OPTIONS"}        # CORS never opens a write


def test_only_the_public_account_allows_anonymous_read():
    declared = [(path.name, body(res)) for path in BICEP_FILES for res in resources_of(parse(path), ACCOUNT).values()
                if "properties" in body(res)]   # not the `existing` references
    assert {name for name, _ in declared} == {"storage.bicep", "publicstorage.bicep", "custodystorage.bicep"}
    allowing = {name for name, res in declared if res["properties"].get("allowBlobPublicAccess") is not False}
    assert allowing == {"publicstorage.bicep"}


def test_the_app_identity_is_the_only_writer_and_only_of_that_container():
    doc = module_doc("publicStorage")
    (assignment,) = resources_of(doc, "Microsoft.Authorization/roleAssignments").values()
    assert doc["resources"][body(assignment)["scope"]]["type"] == CONTAINER
    assert "ba92f5b4-2d11-453d-a403-e96b0029c9fe" in json.dumps(body(assignment)["properties"]["roleDefinitionId"])
    call = module_call("publicStorage")["params"]
    assert json.dumps(call["principalId"]) == json.dumps(main()["modules"]["roles"]["config"]["params"]["principalId"])
    assert call["containerName"] == "publishContainer" == app_settings()["PUBLISH_CONTAINER"]


def test_the_app_writes_to_the_public_account_not_the_pipelines():
    uri = json.dumps(app_settings()["PUBLISH_BLOB_SERVICE_URI"])
    assert "publicStorage" in uri and "blobEndpoint" in uri
    assert "publicIiifUrl" in main()["outputs"]
