"""The AI accounts of `ocr` and `describe` in Bicep: optional (deployed only when routed), keyless with a
custom subdomain, a parameterised model deployment, and the least role for the app identity each."""
from __future__ import annotations

import json

import pytest

from tests.support.bicep import app_settings, body, main, module_call, module_doc, resources_of

ROLE_OF = {"docintel": "a97b65f3-24c7-4388-baec-2e87135dc908",   # Cognitive Services User
           "openai": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"}      # Cognitive Services OpenAI User


@pytest.mark.parametrize("symbol,kind,setting", [("docintel", "FormRecognizer", "DOCINTEL_ENDPOINT"),
                                                 ("openai", "OpenAI", "OPENAI_ENDPOINT")])
def test_ai_accounts_are_keyless_optional_and_grant_one_role(symbol, kind, setting):
    doc = module_doc(symbol)
    (account,) = resources_of(doc, "Microsoft.CognitiveServices/accounts").values()
    config = body(account)
    assert config["kind"] == kind
    assert config["properties"]["disableLocalAuth"] is True and config["properties"]["customSubDomainName"] == "name"
    (role,) = resources_of(doc, "Microsoft.Authorization/roleAssignments").values()
    assert ROLE_OF[symbol] in json.dumps(body(role)["properties"]["roleDefinitionId"])
    call = main()["modules"][symbol]["config"]
    assert "condition" in call and "Routed" in json.dumps(call["condition"])   # off unless routed
    assert module_call(symbol)["params"]["principalId"] == main()["modules"]["roles"]["config"]["params"]["principalId"]
    shown = json.dumps(app_settings()[setting])
    assert "Routed" in shown and symbol in shown and "endpoint" in shown


def test_the_model_deployment_is_parameterised():
    (deployment,) = resources_of(module_doc("openai"), "Microsoft.CognitiveServices/accounts/deployments").values()
    model = body(deployment)["properties"]["model"]
    assert (model["name"], model["version"], model["format"]) == ("modelName", "modelVersion", "OpenAI")
    params = module_call("openai")["params"]
    assert (params["modelName"], params["modelVersion"]) == ("describeModelName", "describeModelVersion")
    assert "deploymentName" in json.dumps(app_settings()["DESCRIBE_DEPLOYMENT"])
