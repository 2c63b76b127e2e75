"""Where the app runs (handlers/core/hosting.py), on the host's own cases: azure-functions-host
`test/WebJobs.Script.Tests/Extensions/EnvironmentExtensionsTests.cs` (IsFlexConsumptionSku,
IsAnyLinuxConsumption, GetInstanceId), and when a local run's console may serve."""
import pytest

from handlers.clients.storage import azurite_connection_string
from handlers.core import hosting


# IsFlexConsumptionSku_ReturnsExpectedResult: (sku, WEBSITE_INSTANCE_ID, CONTAINER_NAME, LEGION_SERVICE_HOST, expected)
@pytest.mark.parametrize("sku, instance, container, legion, expected", [
    ("FlexConsumption", "", "", "", True),
    (None, "", "container-name", "1", True),                 # placeholder mode: no SKU yet
    ("FlexConsumption", "", "container-name", "1", True),    # "expected state when specialized"
    (None, "website-instance-id", "container-name", "1", False),
    ("Dynamic", "", "", "", False),
    ("ElasticPremium", "", "", "", False),
    ("", "", "", "", False),
])
def test_flex_consumption_as_the_host_decides_it(sku, instance, container, legion, expected):
    env = {"WEBSITE_SKU": sku, "WEBSITE_INSTANCE_ID": instance, "CONTAINER_NAME": container,
           "LEGION_SERVICE_HOST": legion}
    env = {k: v for k, v in env.items() if v is not None}
    assert hosting.is_flex_consumption(env) is expected


@pytest.mark.parametrize("env, where", [
    ({"WEBSITE_SKU": "FlexConsumption", "CONTAINER_NAME": "c", "WEBSITE_POD_NAME": "pod-1",
      "LEGION_SERVICE_HOST": "1"}, "pod-1"),                                   # Flex: the pod name
    ({"WEBSITE_POD_NAME": "pod-2", "LEGION_SERVICE_HOST": "1"}, "pod-2"),       # Legion with a pod name only
    ({"CONTAINER_NAME": "linux-consumption-1"}, "linux-consumption-1"),         # Linux Consumption (Atlas)
    ({"WEBSITE_INSTANCE_ID": "e777fde0", "WEBSITE_SKU": "Dynamic"}, "e777fde0"),  # Windows Consumption
    ({"WEBSITE_INSTANCE_ID": "e777fde0", "CONTAINER_NAME": "c"}, "e777fde0"),   # App Service wins (IsAppService)
    ({"MANAGED_ENVIRONMENT": "true"}, ""),                                      # Container Apps
    ({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "POD_NAMESPACE": "fn"}, ""),       # Kubernetes (K8SE)
])
def test_every_hosted_form_is_in_azure_with_the_hosts_instance_id(env, where):
    assert hosting.in_azure(env) and hosting.instance_id(env) == where


@pytest.mark.parametrize("env", [{}, {"WEBSITE_INSTANCE_ID": "  "}, {"WEBSITE_SKU": ""},
                                 {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}])  # a dev container, no namespace
def test_a_developer_machine_is_not_azure(env):
    assert not hosting.in_azure(env) and hosting.instance_id(env) == ""


@pytest.mark.parametrize("value, dev", [
    ("UseDevelopmentStorage=true", True),
    ("UseDevelopmentStorage = TRUE", True),
    (azurite_connection_string(41000, 41001, 41002), True),                      # a custom port, as the tests use
    (azurite_connection_string(host="localhost"), True),
    (azurite_connection_string(host="10.1.2.3"), False),                         # Azurite's account elsewhere
    ("DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=eA==;EndpointSuffix=core.windows.net",
     False),                                                                     # the name on a real account
    ("DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=eA==;BlobEndpoint=http://127.0.0.1:1/prod", False),
    ("", False),
])
def test_development_storage(value, dev):
    assert hosting.development_storage({"AzureWebJobsStorage": value}) is dev


def test_local_console_needs_the_runners_variable_development_storage_and_not_azure():
    local = {hosting.LOCAL_CONSOLE: "1", "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    assert hosting.local_console(local)
    assert not hosting.local_console({**local, hosting.LOCAL_CONSOLE: "true"})   # only the value hookops run sets
    assert not hosting.local_console({**local, "AzureWebJobsStorage": ""})
    for hosted in ({"WEBSITE_INSTANCE_ID": "x"}, {"CONTAINER_NAME": "x"}, {"WEBSITE_SKU": "FlexConsumption"},
                   {"WEBSITE_POD_NAME": "p", "LEGION_SERVICE_HOST": "1"}):
        assert not hosting.local_console({**local, **hosted})


def test_a_container_that_sets_container_name_is_named_as_the_reason():
    """Some CI and dev containers set CONTAINER_NAME: the host reads that as Linux Consumption, so `hookops run`
    says which variable turned the local console off rather than leaving a bare 503."""
    assert hosting.hosted_by({"CONTAINER_NAME": "ci-runner-1", "PATH": "/bin"}) == ["CONTAINER_NAME"]
    assert hosting.hosted_by({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == []   # not hosted: nothing to name
