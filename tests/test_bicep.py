"""The Bicep in bicep/ held against checkov and against the code.

No Bicep compiler or Azure here, so: every file must parse with pycep-parser (what checkov reads
Bicep with), checkov must report zero failed checks with every skip inline and justified, and the
template must agree with handlers/settings.py (app settings, storage names, Key Vault secrets),
host.json and the intake route. Renaming a setting, queue, container or secret on one side only
fails here.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handlers.core import settings
from handlers.pipeline import registry
from tests.support.bicep import (
    AZD_ENVIRONMENT_NAMES,
    BICEP,
    BICEP_FILES,
    MAIN,
    RESOURCE_GROUP_ID,
    ROOT,
    SUBSCRIPTION_ID,
    Evaluator,
    app_settings,
    bicepparam_assignments,
    body,
    is_secure,
    main,
    module_call,
    module_doc,
    param_default,
    parse,
    pending_app_settings,
    pending_queues,
    resolve,
    resources_of,
    settings_where,
    unique_string,
    unquote,
)

ALL = {s.name: s for s in registry.all_settings()}
CHECKOV_SCRIPT = ROOT / "scripts" / "checkov.sh"

# Host settings (read by the Functions host, not our code) that main.bicep sets. The other
# host setting, FUNCTIONS_WORKER_RUNTIME, must not be set: Flex takes it from functionAppConfig.
BICEP_HOST_SETTINGS = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}

# Built-in role definition IDs (same in every Azure tenant) and the resource type each is scoped to.
ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": ("Storage Queue Data Contributor", "Microsoft.Storage/storageAccounts"),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    "4633458b-17de-408a-b874-0445c86b69e6": ("Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
    "3913510d-42f4-4e42-8a64-420c390055eb": ("Monitoring Metrics Publisher", "Microsoft.Insights/components"),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": ("Storage Blob Data Contributor",
                                             "Microsoft.Storage/storageAccounts/blobServices/containers"),
    "f2dc8367-1007-4938-bd23-fe263f013447": ("Cognitive Services Speech User", "Microsoft.CognitiveServices/accounts"),
    "a97b65f3-24c7-4388-baec-2e87135dc908": ("Cognitive Services User", "Microsoft.CognitiveServices/accounts"),
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": ("Cognitive Services OpenAI User", "Microsoft.CognitiveServices/accounts"),
}
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SKIP_COMMENT = re.compile(r"^\s*//\s*checkov:skip=(?P<id>CKV2?_[A-Z0-9]+_\d+):(?P<reason>.*)$")

# Flex Consumption refuses these. Source: "Flex Consumption plan deprecations", App settings
# reference for Azure Functions,
# https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations
# (table as of the 2025-12-22 revision of functions-app-settings.md). Regions that enforce the list
# reject the deployment with ARM error 51021 ("The following site configuration property ... for
# Flex Consumption sites is invalid"). Property names are compared case-insensitively and wherever
# they appear in the site resource (the table writes them as properties.<name> whether they live
# on the site or in siteConfig).
FLEX_DEPRECATED_APP_SETTINGS = {
    "ENABLE_ORYX_BUILD", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION", "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED", "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTOVERVNET", "WEBSITE_CONTENTSHARE",
    "WEBSITE_DNS_SERVER", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT", "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_SKIP_CONTENTSHARE_VALIDATION", "WEBSITE_VNET_ROUTE_ALL",
}
FLEX_DEPRECATED_PROPERTIES = {
    "alwaysOn", "containerSize", "dnsConfiguration", "ftpsState", "isReserved", "isXenon", "javaVersion",
    "linuxFxVersion", "netFrameworkVersion", "powerShellVersion", "functionAppScaleLimit",
    "preWarmedInstanceCount", "use32BitWorkerProcess", "vnetBackupRestoreEnabled", "vnetContentShareEnabled",
    "vnetImagePullEnabled", "vnetRouteAllEnabled", "windowsFxVersion",
    # Not in the table by these names, but the same rule: `reserved` is the ARM name of the site's
    # isReserved, and ARM names functionsRuntimeScaleMonitoringEnabled in a 51021 rejection quoted in
    # Microsoft Q&A 2277522 (see Azure/terraform-azurerm-avm-res-web-site#360).
    "reserved", "functionsRuntimeScaleMonitoringEnabled",
}


# --------------------------------------------------------------------------------------------
# Parsing and checkov
# --------------------------------------------------------------------------------------------

def test_there_is_bicep_to_check():
    assert MAIN in BICEP_FILES and len(BICEP_FILES) > 1


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(BICEP)))
def test_every_bicep_file_parses_with_pycep(path):
    doc = parse(path)  # raises on a parse error
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


def test_no_registry_modules():
    """checkov cannot see inside br:/ts: modules; every module is a local file that exists."""
    for path in BICEP_FILES:
        for name, module in parse(path).get("modules", {}).items():
            assert module["type"] == "local", f"{path.name}: module {name} is {module['type']}, not a local file"
            assert (path.parent / module["detail"]["path"]).is_file(), f"{path.name}: module {name} file missing"


def _run_checkov(env_extra: dict, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, **env_extra)
    return subprocess.run(["bash", str(CHECKOV_SCRIPT)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def checkov_ready():
    """Build or reuse checkov's cached venv (scripts/venv_cache.py; first build: minutes), or skip if it cannot be."""
    started = time.monotonic()
    done = subprocess.run(["bash", str(CHECKOV_SCRIPT), "--install-only"], cwd=ROOT,
                          env=dict(os.environ, PYTHON=sys.executable), capture_output=True, text=True,
                          timeout=900)
    if done.returncode != 0:
        pytest.skip("could not create the checkov virtual environment with "
                    f"`bash scripts/checkov.sh --install-only`: {(done.stderr or done.stdout)[-800:]}")
    return time.monotonic() - started


@pytest.fixture(scope="module")
def checkov_report(checkov_ready, tmp_path_factory):
    report = tmp_path_factory.mktemp("checkov") / "report.json"
    done = _run_checkov({"CHECKOV_REPORT": str(report)}, timeout=600)
    data = json.loads(report.read_text())
    reports = data if isinstance(data, list) else [data]
    return done, reports


@pytest.mark.timeout(1200)
def test_checkov_reports_no_failed_checks_and_no_parsing_errors(checkov_report):
    done, reports = checkov_report
    summary = reports[0]["summary"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary["failed"] == 0, done.stdout
    assert summary["parsing_errors"] == 0, done.stdout
    assert summary["passed"] > 0, done.stdout
    assert re.search(r"^checkov [\d.]+ bicep: \d+ passed, 0 failed, \d+ skipped, 0 parsing errors$",
                     done.stdout, re.M), done.stdout


@pytest.mark.timeout(1200)
def test_checkov_skips_are_exactly_the_inline_comments(checkov_report):
    """No stale skip comment (a check that no longer runs) and no skip from anywhere else."""
    _, reports = checkov_report
    reported = {(Path(c["file_path"]).name, c["check_id"])
                for r in reports for c in r["results"].get("skipped_checks", [])}
    inline = {(path.name, m["id"]) for path in BICEP_FILES
              for line in path.read_text().splitlines() if (m := SKIP_COMMENT.match(line))}
    assert reported == inline


def test_every_skip_is_inline_with_a_reason():
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:skip" not in line:
                continue
            where = f"{path.relative_to(ROOT)}:{number}"
            # `#` starts no comment in Bicep: a `#checkov:skip` line would not compile.
            match = SKIP_COMMENT.match(line)
            assert match, f"{where}: write skips as `// checkov:skip=CKV_ID:reason`"
            assert len(match["reason"].strip()) >= 20, f"{where}: the skip needs a real reason"
    script = CHECKOV_SCRIPT.read_text()
    assert "--skip-check" not in script and "--soft-fail" not in script
    for config in (ROOT / ".checkov.yaml", ROOT / ".checkov.yml", BICEP / ".checkov.yaml", BICEP / ".checkov.yml"):
        assert not config.exists(), f"{config}: skips belong inline, next to the resource"


@pytest.mark.timeout(1200)
def test_checkov_script_fails_on_a_failed_check_or_a_parse_error(checkov_ready, tmp_path):
    (tmp_path / "bad.bicep").write_text(
        "resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n"
        "  name: 'stbad'\n  location: 'westeurope'\n  kind: 'StorageV2'\n"
        "  sku: {\n    name: 'Standard_GRS'\n  }\n"
        "  properties: {\n    supportsHttpsTrafficOnly: false\n  }\n}\n")
    (tmp_path / "broken.bicep").write_text("resource x 'Microsoft.Web/sites@2024-04-01' = {{{\n")
    done = _run_checkov({"CHECKOV_DIR": str(tmp_path), "CHECKOV_REPORT": str(tmp_path / "r.json")}, timeout=600)
    assert done.returncode != 0
    assert re.search(r"^FAILED  CKV_AZURE_3 ", done.stdout, re.M), done.stdout
    assert re.search(r"^PARSING ERROR .*broken\.bicep", done.stdout, re.M), done.stdout


# --------------------------------------------------------------------------------------------
# App settings contract
# --------------------------------------------------------------------------------------------

def test_host_settings_that_bicep_sets_are_declared_host_settings():
    assert BICEP_HOST_SETTINGS <= settings_where(settings.HOST)


def test_bicep_sets_exactly_the_app_settings_the_code_reads():
    expected = settings_where(settings.APP) | BICEP_HOST_SETTINGS
    actual = set(app_settings()) - pending_app_settings()   # until branch custody is merged
    assert actual - expected == set(), "set in main.bicep but not declared in handlers/settings.py"
    assert expected - actual == set(), "declared in handlers/settings.py but not set by main.bicep"


def test_local_only_settings_and_worker_runtime_are_not_app_settings():
    forbidden = settings_where(settings.LOCAL) | {"FUNCTIONS_WORKER_RUNTIME"}
    assert forbidden & set(app_settings()) == set()


def test_the_function_app_gets_those_app_settings():
    assert main()["modules"]["functionApp"]["config"]["params"]["appSettings"] == "appSettings"
    site = resources_of(module_doc("functionApp"), "Microsoft.Web/sites")
    (site,) = site.values()
    loop = body(site)["properties"]["siteConfig"]["appSettings"]
    assert loop["loop_type"]["detail"]["array_name"]["function"] == {"type": "items", "parameters": {"arg_1": "appSettings"}}


def test_app_setting_defaults_match_the_settings_module():
    doc = main()
    for name, value in app_settings().items():
        if name in pending_app_settings():
            continue   # checked in tests/test_custody_bicep.py once branch custody declares them
        spec = ALL.get(name)
        found = param_default(doc, value)
        if found:
            param, default = found
            want = "" if spec.default is None else spec.default
            assert default is not None, f"{name}: parameter {param} needs a default"
            assert str(default) == want, f"{name}: parameter {param} defaults to {default!r}, settings.py to {want!r}"
    assert app_settings()["WEBHOOK_SECRET_NAME"] == ALL["WEBHOOK_SECRET_NAME"].default
    assert app_settings()["AzureWebJobsStorage__credential"] == "managedidentity"
    assert app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == \
        "Authorization=AAD;ClientId=${identity.outputs.clientId}"
    assert app_settings()["AZURE_CLIENT_ID"] == app_settings()["AzureWebJobsStorage__clientId"]


def test_local_settings_example_covers_the_settings_that_matter_locally():
    example = ROOT / "local.settings.json.example"
    if not example.exists():
        pytest.skip("local.settings.json.example is not in the repository yet")
    values = json.loads(example.read_text())["Values"]
    unknown = set(values) - set(ALL)
    assert not unknown, f"not declared in handlers/settings.py: {sorted(unknown)}"
    # Locally needed: every local-only setting, and every app setting the operator configures
    # (a main.bicep parameter); the identity/resource ones exist only in Azure.
    doc = main()
    configured = {name for name, value in app_settings().items() if param_default(doc, value)}
    needed = settings_where(settings.LOCAL) | (configured & settings_where(settings.APP))
    assert needed - set(values) == set(), "missing from local.settings.json.example"
    for name, value in values.items():
        default = ALL[name].default
        if default is not None and value:
            assert value == default, f"{name}: example {value!r} differs from the default {default!r}"


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------

def _storage_call_param(name: str):
    doc = main()
    return resolve(doc, main()["modules"]["storage"]["config"]["params"][name])


def _names(values) -> set[str]:
    doc = main()
    out = set()
    for value in values:
        value = resolve(doc, value)
        found = param_default(doc, value)
        out.add(found[1] if found else value)
    return out


def test_queues_are_the_pipeline_queues_and_their_poison_queues():
    queues = [settings.DELIVERY_QUEUE] + [settings.action_queue(a) for a in registry.names()]
    expected = set(queues) | {q + "-poison" for q in queues}
    assert _names(_storage_call_param("queueNames")) - pending_queues() == expected


def test_containers_and_table_match_the_settings_module():
    deployment = resolve(main(), main()["modules"]["functionApp"]["config"]["params"]["deploymentContainerName"])
    expected = {settings.DELIVERY_CONTAINER, settings.REJECTED_CONTAINER, settings.CONSOLE_CONTAINER, settings.PUBLISH_LOCK_CONTAINER,
                ALL["THUMBNAIL_CONTAINER"].default, ALL["TRANSCRIBE_CONTAINER"].default, ALL["OCR_CONTAINER"].default,
                ALL["DESCRIBE_CONTAINER"].default, deployment}
    assert _names(_storage_call_param("containerNames")) == expected
    assert _names(_storage_call_param("tableNames")) == {settings.JOURNAL_TABLE, settings.RECONCILE_TABLE}
    # The thumbnails container and the app setting come from the same parameter.
    assert "thumbnailContainer" in _storage_call_param("containerNames")
    assert app_settings()["THUMBNAIL_CONTAINER"] == "thumbnailContainer"
    assert "transcribeContainer" in _storage_call_param("containerNames")
    assert app_settings()["TRANSCRIBE_CONTAINER"] == "transcribeContainer"


def test_storage_module_creates_every_named_queue_container_and_table():
    doc = module_doc("storage")
    loops = {
        "Microsoft.Storage/storageAccounts/queueServices/queues": "queueNames",
        "Microsoft.Storage/storageAccounts/blobServices/containers": "containerNames",
        "Microsoft.Storage/storageAccounts/tableServices/tables": "tableNames",
    }
    for type_, param in loops.items():
        (res,) = resources_of(doc, type_).values()
        assert res["config"]["loop_type"]["detail"]["array_name"] == param
        assert res["config"]["condition"] is None
    (container,) = resources_of(doc, "Microsoft.Storage/storageAccounts/blobServices/containers").values()
    assert body(container)["properties"]["publicAccess"] == "None"


ZONE_REDUNDANT_STORAGE = {"Standard_ZRS", "Standard_GZRS", "Standard_RAGZRS"}


def _geo_replication(sku: str) -> str:
    """'' (one region), 'G' (geo) or 'RAG' (geo with read access) for a Standard_* storage SKU."""
    core = sku.removeprefix("Standard_")
    return ("RA" if core.startswith("RA") else "") + ("G" if "G" in core else "")


def test_zone_redundant_app_gets_zone_redundant_storage_with_the_same_geo_replication():
    doc = main()
    sku = doc["modules"]["storage"]["config"]["params"]["skuName"]
    assert doc["modules"]["functionApp"]["config"]["params"]["zoneRedundant"] == "zoneRedundant"
    allowed = next(d["argument"] for d in doc["parameters"]["storageSku"]["decorators"] if d["type"] == "allowed")
    assert set(allowed) >= ZONE_REDUNDANT_STORAGE
    for chosen in allowed:
        assert Evaluator(doc, storageSku=chosen, zoneRedundant=False)(sku) == chosen
        zonal = Evaluator(doc, storageSku=chosen, zoneRedundant=True)(sku)
        assert zonal in ZONE_REDUNDANT_STORAGE, f"zoneRedundant with {chosen} deploys {zonal}"
        assert _geo_replication(zonal) == _geo_replication(chosen), f"{chosen} -> {zonal} changes the geo-replication"
    assert Evaluator(doc)(sku) == doc["parameters"]["storageSku"]["default"] == "Standard_GRS"


def test_storage_account_is_locked_down():
    (account,) = resources_of(module_doc("storage"), "Microsoft.Storage/storageAccounts").values()
    props = body(account)["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowBlobPublicAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True


def test_speech_is_keyless_with_a_custom_subdomain_and_gives_the_app_its_endpoint():
    doc = module_doc("speech")
    (account,) = resources_of(doc, "Microsoft.CognitiveServices/accounts").values()
    config = body(account)
    assert config["kind"] == "SpeechServices"
    assert config["properties"]["disableLocalAuth"] is True        # Entra ID only: no key to leak
    assert config["properties"]["customSubDomainName"] == "name"   # Entra ID needs it; the resource's name
    assert "speech" in json.dumps(app_settings()["SPEECH_ENDPOINT"]) and "endpoint" in json.dumps(app_settings()["SPEECH_ENDPOINT"])
    roles = main()["modules"]["roles"]["config"]["params"]["principalId"]
    assert main()["modules"]["speech"]["config"]["params"]["principalId"] == roles   # the app's identity


# --------------------------------------------------------------------------------------------
# Function app
# --------------------------------------------------------------------------------------------

def test_function_app_is_flex_python_https_only():
    doc = module_doc("functionApp")
    (plan,) = resources_of(doc, "Microsoft.Web/serverfarms").values()
    assert body(plan)["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert body(plan)["properties"]["reserved"] is True
    (site,) = resources_of(doc, "Microsoft.Web/sites").values()
    site = body(site)
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    props = site["properties"]
    assert props["httpsOnly"] is True
    assert "ftpsState" not in props["siteConfig"], "Flex Consumption rejects ftpsState; FTP is off by the policies below"
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    config = props["functionAppConfig"]
    assert config["runtime"]["name"] == "python"
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert set(config["scaleAndConcurrency"]) == {"alwaysReady", "instanceMemoryMB", "maximumInstanceCount"}
    for name in ("instanceMemoryMB", "maximumInstanceCount", "alwaysReadyHttpInstances", "zoneRedundant"):
        assert main()["modules"]["functionApp"]["config"]["params"][name] == name
        assert name in main()["parameters"]
    policies = resources_of(doc, "Microsoft.Web/sites/basicPublishingCredentialsPolicies").values()
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies} == {"ftp": False, "scm": False}
    assert "\"'azd-service-name'\": \"api\"" in json.dumps(site["tags"]), "azd finds the app by this tag"


def _keys(node):
    """Every dict key in a parsed resource body, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield unquote(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_no_site_property_or_app_setting_that_flex_consumption_rejects():
    forbidden = {name.lower() for name in FLEX_DEPRECATED_PROPERTIES}
    sites = [(path, name, res) for path in BICEP_FILES
             for type_ in ("Microsoft.Web/sites", "Microsoft.Web/sites/config")
             for name, res in resources_of(parse(path), type_).items()]
    assert sites, "no Microsoft.Web/sites resource found"
    for path, name, res in sites:
        found = {key for key in _keys(body(res)) if key.lower() in forbidden}
        assert not found, f"{path.name}:{name} sets {sorted(found)}, which Flex Consumption rejects"
    assert FLEX_DEPRECATED_APP_SETTINGS & set(app_settings()) == set()
    # Settings can only reach the site through main.bicep's appSettings (checked above).
    site = body(next(iter(resources_of(module_doc("functionApp"), "Microsoft.Web/sites").values())))
    assert set(site["properties"]["siteConfig"]) - {"appSettings"} == \
        {"minTlsVersion", "scmMinTlsVersion", "http20Enabled", "remoteDebuggingEnabled"}, \
        "a new siteConfig property: check it against the Flex Consumption deprecation list first"


def test_one_http_instance_is_always_ready_by_default_and_zero_turns_it_off():
    doc = module_doc("functionApp")
    (site,) = resources_of(doc, "Microsoft.Web/sites").values()
    always_ready = body(site)["properties"]["functionAppConfig"]["scaleAndConcurrency"]["alwaysReady"]
    assert main()["parameters"]["alwaysReadyHttpInstances"]["default"] == 1
    assert {"type": "min_value", "argument": 0} in main()["parameters"]["alwaysReadyHttpInstances"]["decorators"]

    def configured(instances, zone_redundant=False, maximum=100):
        return Evaluator(doc, alwaysReadyHttpInstances=instances, zoneRedundant=zone_redundant,
                         maximumInstanceCount=maximum)(always_ready)

    # `http` is the per-function scale group of every HTTP trigger (Flex Consumption plan docs).
    assert Evaluator(doc)(always_ready) == [{"name": "http", "instanceCount": 1}]
    assert configured(0) == []
    assert configured(3) == [{"name": "http", "instanceCount": 3}]
    # Zone redundant: no fewer than two per group may be configured (the platform keeps two anyway).
    assert configured(0, zone_redundant=True) == [{"name": "http", "instanceCount": 2}]
    assert configured(1, zone_redundant=True) == [{"name": "http", "instanceCount": 2}]
    assert configured(5, zone_redundant=True) == [{"name": "http", "instanceCount": 5}]
    # Never more than the scale-out limit.
    assert configured(5, maximum=3) == [{"name": "http", "instanceCount": 3}]
    assert bicepparam_assignments()["alwaysReadyHttpInstances"] == \
        "int(readEnvironmentVariable('ALWAYS_READY_HTTP_INSTANCES', '1'))"
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "alwaysReadyHttpInstances" in deploy and "baseline" in deploy, "docs/deploy.md documents what it costs"


def test_python_version_is_3_11_as_the_project_uses():
    version = resolve(main(), main()["modules"]["functionApp"]["config"]["params"]["pythonVersion"])
    assert version == "3.11"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'requires-python\s*=\s*">=3\.11"', pyproject), "pyproject.toml requires-python changed"


# --------------------------------------------------------------------------------------------
# Identity, roles, Key Vault, monitoring
# --------------------------------------------------------------------------------------------

def _custom_role(doc: dict, role_definition_id) -> str | None:
    """The symbol of the roleDefinitions resource a subscriptionResourceId(..., role.name) names, if any."""
    function = role_definition_id.get("function", {}) if isinstance(role_definition_id, dict) else {}
    name = function.get("parameters", {}).get("resource_name_1") if function.get("type") == "subscription_resource_id" else None
    if not isinstance(name, dict):
        return None   # a built-in role's literal GUID
    accessor = name["operator"]["operands"]
    assert accessor["operand_2"] == "name"
    assert doc["resources"][accessor["operand_1"]]["type"] == "Microsoft.Authorization/roleDefinitions"
    return accessor["operand_1"]


# The one custom role (its permissions: tests/test_custody_bicep.py) and what it is assigned on.
CUSTOM_ROLES = {("custodystorage.bicep", "custodyWriterRole"): "Microsoft.Storage/storageAccounts/blobServices/containers"}


def test_role_assignments_grant_exactly_the_needed_roles():
    assignments, custom = [], {}
    for path in BICEP_FILES:
        doc = parse(path)
        for name, res in resources_of(doc, "Microsoft.Authorization/roleAssignments").items():
            props = body(res)["properties"]
            scope = doc["resources"][body(res)["scope"]]
            if role := _custom_role(doc, props["roleDefinitionId"]):
                custom[(path.name, role)] = scope["type"]
                assert props["principalType"] == "ServicePrincipal" and props["principalId"] == "principalId"
                continue
            ids = GUID.findall(json.dumps(props["roleDefinitionId"]))
            assert len(ids) == 1, f"{path.name}:{name}: one literal role definition ID expected"
            assignments.append((ids[0], scope["type"], props))
    assert custom == CUSTOM_ROLES
    granted = [role for role, _, _ in assignments]
    assert sorted(granted) == sorted(ROLES), "roles granted differ from the six the connections need"
    for role, scope_type, props in assignments:
        assert scope_type == ROLES[role][1], f"{ROLES[role][0]} scoped to {scope_type}"
        assert props["principalType"] == "ServicePrincipal"
        assert props["principalId"] == "principalId"
    roles_call = main()["modules"]["roles"]["config"]["params"]["principalId"]
    assert json.dumps(roles_call) == json.dumps({"operator": {"type": "property_accessor", "operands": {
        "operand_1": "identity", "operand_2": {"operator": {"type": "property_accessor", "operands": {
            "operand_1": "outputs", "operand_2": "principalId"}}}}}})


def test_key_vault_uses_rbac_soft_delete_and_purge_protection():
    doc = module_doc("keyVault")
    (vault,) = resources_of(doc, "Microsoft.KeyVault/vaults").values()
    props = body(vault)["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    assert app_settings()["KEY_VAULT_URI"]["operator"]["operands"]["operand_1"] == "keyVault"


KEY_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")  # 3-24, Key Vault's rules


def test_key_vault_name_is_valid_changes_with_the_salt_and_is_stable_without_it():
    doc = main()
    assert doc["modules"]["keyVault"]["config"]["params"]["name"] == "keyVaultName"
    assert doc["parameters"]["keyVaultNameSalt"]["default"] == ""
    for base in AZD_ENVIRONMENT_NAMES:
        def name(salt, base=base):
            return Evaluator(doc, baseName=base, keyVaultNameSalt=salt).variable("keyVaultName")

        # Without a salt: the name earlier deployments created, so an upgrade keeps its vault.
        assert name("") == "kv-" + unique_string(SUBSCRIPTION_ID, RESOURCE_GROUP_ID, base)
        names = {salt: name(salt) for salt in ("", "2", "3", "after-azd-down-" + "x" * 49)}
        assert len(set(names.values())) == len(names), "every salt gives another vault name"
        for salt, vault in names.items():
            assert KEY_VAULT_NAME.match(vault), f"{vault!r} (salt {salt!r}) is not a valid Key Vault name"
    # The salt renames the vault only.
    others = ("functionAppName", "prefix", "token")
    assert {v: Evaluator(doc, keyVaultNameSalt="2").variable(v) for v in others} == \
        {v: Evaluator(doc).variable(v) for v in others}


def test_key_vault_can_be_recovered_on_deploy():
    doc = main()
    call = doc["modules"]["keyVault"]["config"]["params"]["createMode"]
    assert doc["parameters"]["keyVaultRecover"]["default"] is False
    assert Evaluator(doc)(call) == "default"
    assert Evaluator(doc, keyVaultRecover=True)(call) == "recover"
    kv = module_doc("keyVault")
    assert kv["parameters"]["createMode"]["default"] == "default"
    (vault,) = resources_of(kv, "Microsoft.KeyVault/vaults").values()
    assert body(vault)["properties"]["createMode"] == "createMode"
    params = bicepparam_assignments()
    assert params["keyVaultNameSalt"] == "readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')"
    assert params["keyVaultRecover"] == "bool(readEnvironmentVariable('KEY_VAULT_RECOVER', 'false'))"


def test_resource_names_accept_any_azd_environment_name():
    doc = main()
    names = {f"{module}.{param}": value for module in doc["modules"]
             for param, value in module_call(module, doc)["params"].items()
             if param == "name" or param.endswith("Name") and param != "skuName"}
    names = {key: value for key, value in names.items()
             if isinstance(value, str) and (value in doc["variables"] or "${" in value)}
    assert {"identity.name", "monitoring.logAnalyticsName", "storage.name", "keyVault.name", "functionApp.name",
            "functionApp.planName"} <= set(names)
    for base in AZD_ENVIRONMENT_NAMES:
        evaluate = Evaluator(doc, baseName=base)
        for key, value in names.items():
            name = evaluate(value)
            assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,58}[a-z0-9]", name), f"{key} = {name!r} for azd environment {base!r}"


def test_key_vault_secrets_are_the_ones_the_code_reads_and_optional():
    webhook = ALL["WEBHOOK_SECRET_NAME"].default
    expected = {webhook, webhook + "-previous", settings.KV_PRESERVICA_PASSWORD,
                *(secret.vault_name for a in registry.actions().values() for secret in a.secrets)}
    doc = main()
    written = doc["modules"]["keyVault"]["config"]["params"]["secretValues"]
    # Only with writeSecrets (first deployment or a deliberate overwrite): otherwise nothing is written.
    assert written["operator"]["operands"]["condition"] == "writeSecrets"
    assert written["operator"]["operands"]["false_value"] == {}
    values = written["operator"]["operands"]["true_value"]
    assert {unquote(k) for k in values} == expected
    for key, param in values.items():
        assert param in doc["parameters"], f"{key} must come from a parameter"
        assert is_secure(doc, param), f"parameter {param} must be @secure()"
        assert doc["parameters"][param]["default"] == "", f"parameter {param} must be optional (default '')"
    kv = module_doc("keyVault")
    assert is_secure(kv, "secretValues")
    (secret,) = resources_of(kv, "Microsoft.KeyVault/vaults/secrets").values()
    condition = json.dumps(secret["config"]["condition"])
    assert '"type": "not"' in condition and '"type": "empty"' in condition, "empty secret values must be skipped"


def test_application_insights_has_local_auth_disabled():
    (component,) = resources_of(module_doc("monitoring"), "Microsoft.Insights/components").values()
    assert body(component)["properties"]["DisableLocalAuth"] is True


# --------------------------------------------------------------------------------------------
# Outputs, parameter files, azd
# --------------------------------------------------------------------------------------------

def test_outputs_name_the_app_the_webhook_url_and_the_vault():
    from handlers import intake

    outputs = main()["outputs"]
    prefix = json.loads((ROOT / "host.json").read_text())["extensions"]["http"].get("routePrefix", "api")
    assert outputs["webhookUrl"]["value"] == \
        "https://${functionApp.outputs.defaultHostName}/" + f"{prefix}/{intake.ROUTE}"
    assert json.dumps(outputs["functionAppName"]["value"]).count("functionApp") == 1
    assert json.dumps(outputs["keyVaultName"]["value"]).count("keyVault") == 1


# Environment variables main.bicepparam may read besides the local settings' names: the azd
# environment name (azd compiles the .bicepparam with the azd environment's variables) and the
# deployment switches README "Deploy to Azure" documents.
BICEPPARAM_DEPLOYMENT_VARIABLES = {"AZURE_ENV_NAME", "KEY_VAULT_NAME_SALT", "KEY_VAULT_RECOVER",
                                   "ALWAYS_READY_HTTP_INSTANCES", "ALERT_EMAIL", "NO_DELIVERY_ALERT_HOURS",
                                   "SPEECH_NAME_SALT", "DEPLOY_PUBLISH", "WRITE_SECRETS",
                                   "DEPLOY_CUSTODY", "CUSTODY_IMMUTABILITY_LOCKED"}


def test_bicepparam_sets_only_declared_parameters_and_reads_secrets_from_the_environment():
    text = (BICEP / "main.bicepparam").read_text()
    assert re.search(r"^using '\./main\.bicep'$", text, re.M)
    doc = main()
    assigned = bicepparam_assignments()
    assert set(assigned) <= set(doc["parameters"]), set(assigned) - set(doc["parameters"])
    for name, value in assigned.items():
        if is_secure(doc, name):
            assert value.startswith("readEnvironmentVariable("), f"{name}: secrets come from the environment"
    for variable in re.findall(r"readEnvironmentVariable\('(\w+)'", text):
        assert variable in ALL or variable in BICEPPARAM_DEPLOYMENT_VARIABLES, \
            f"{variable}: use the local setting's name"


def test_there_is_exactly_one_parameter_file():
    """azd prefers main.bicepparam over main.parameters.json, so a second file would be silently ignored
    by azd (and `${VAR}` in a JSON file is substituted only by azd, never by `az deployment`)."""
    candidates = sorted(p.relative_to(BICEP).as_posix() for pattern in ("*.bicepparam", "*parameters*.json")
                        for p in BICEP.rglob(pattern))
    assert candidates == ["main.bicepparam"]
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^  module: main$", azure_yaml, re.M), "azd looks for <module>.bicepparam"
    for doc in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        assert "main.parameters.json" not in doc.read_text()


def test_bicepparam_maps_the_azd_environment_name_to_base_name():
    value = bicepparam_assignments()["baseName"]
    match = re.fullmatch(r"readEnvironmentVariable\('AZURE_ENV_NAME', '([^']*)'\)", value)
    assert match, f"baseName = {value}: take it from AZURE_ENV_NAME"
    # Without azd (AZURE_ENV_NAME unset) the name is main.bicep's own default.
    assert match[1] == main()["parameters"]["baseName"]["default"]
    # The tag azd finds the environment's resources by is baseName itself, not a sanitised form.
    assert main()["variables"]["tags"]["value"]["'azd-env-name'"] == "baseName"


def test_azure_yaml_deploys_the_api_service_from_bicep():
    text = (ROOT / "azure.yaml").read_text()
    assert re.search(r"^infra:\n(?:  .*\n)*  path: bicep$", text, re.M)
    assert re.search(r"^services:\n  api:\n(?:    .*\n)*", text, re.M)
    for line in ("    project: .", "    language: python", "    host: function"):
        assert line in text.splitlines()


def test_delivery_bodies_expire_by_a_lifecycle_rule():
    assert _names(_storage_call_param("expiringContainerNames")) == {settings.DELIVERY_CONTAINER,
                                                                    settings.REJECTED_CONTAINER}
    (policy,) = resources_of(module_doc("storage"), "Microsoft.Storage/storageAccounts/managementPolicies").values()
    (rule,) = policy["config"]["config"]["properties"]["policy"]["rules"]  # under its `if` condition
    assert rule["definition"]["filters"]["prefixMatch"]["loop_type"]["detail"]["array_name"] == "expiringContainerNames"
    assert rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"] == "expireAfterDays"


def test_availability_test_probes_the_health_route_the_app_serves():
    """Bicep's availability test GETs the route handlers/health.py serves, expecting 200, from three regions."""
    from handlers import health
    text = (BICEP / "modules" / "availability.bicep").read_text()
    assert "kind: 'standard'" in text and "ExpectedHttpStatusCode: 200" in text and text.count("{ Id: '") == 3
    assert "HttpVerb: 'GET'" in text and "hidden-link:" in text
    main_text = MAIN.read_text()
    assert f"url: 'https://${{functionApp.outputs.defaultHostName}}/api/{health.ROUTE}'" in main_text
    assert "applicationInsightsId: monitoring.outputs.applicationInsightsId" in main_text


def test_alert_module_is_wired_and_its_optional_parts_are_conditional():
    """What each rule's query matches is tested on the exporter's envelopes in tests/test_telemetry_export.py;
    here: main.bicep calls the module, and the action group and the quiet rule are optional."""
    text = (BICEP / "modules" / "alerts.bicep").read_text()
    main_text = MAIN.read_text()
    assert "module alerts 'modules/alerts.bicep'" in main_text and "alertEmail: alertEmail" in main_text
    assert "noDeliveryHours: noDeliveryHours" in main_text
    assert "if (!empty(alertEmail))" in text and "if (noDeliveryHours > 0)" in text   # optional parts
