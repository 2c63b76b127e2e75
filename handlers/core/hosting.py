"""Where the app runs, from the variables the Functions host itself reads; and whether a local run's
console may serve. Pure: rules over an environment mapping.

The host's rules are azure-functions-host `src/WebJobs.Script/Environment/EnvironmentExtensions.cs`
(names from `EnvironmentSettingNames.cs`), with the cases of
`test/WebJobs.Script.Tests/Extensions/EnvironmentExtensionsTests.cs`:
- `IsAppService`: `WEBSITE_INSTANCE_ID` set (Windows and Linux dedicated, Premium, Windows Consumption).
- `IsLinuxConsumptionOnAtlas`: no `WEBSITE_INSTANCE_ID`, `CONTAINER_NAME` set (Linux Consumption).
- `IsFlexConsumptionSku`: `WEBSITE_SKU` is `FlexConsumption` (case-insensitive), or, while the host is still a
  placeholder and the SKU is not set yet, no `WEBSITE_INSTANCE_ID`, `CONTAINER_NAME` or `WEBSITE_POD_NAME` set,
  and `LEGION_SERVICE_HOST` set. On Flex `WEBSITE_INSTANCE_ID` is empty (the test's "expected state when
  specialized"), which is why testing it alone says "not in Azure" there.
- `IsManagedAppEnvironment` (`MANAGED_ENVIRONMENT`) and `IsKubernetesManagedHosting` (`KUBERNETES_SERVICE_HOST`
  and `POD_NAMESPACE`): the host's other hosted forms; counted as "in Azure" too, so that no hosted form
  can ever be taken for a developer's machine (the console then needs built-in authentication).
"""
from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

# Set by `hookops run` (hookops/serve.py) and nothing else: a local run's console may serve the local user.
LOCAL_CONSOLE = "HOOKOPS_LOCAL_CONSOLE"
FLEX_SKU = "flexconsumption"  # ScriptConstants.FlexConsumptionSku, compared as the host does (ignoring case)
DEV_ACCOUNT = "devstoreaccount1"  # Azurite's (and the old emulator's) fixed account
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
# Every variable the rules below read as a sign of a hosted instance (for saying why, see hosted_by()).
HOSTED = ("WEBSITE_INSTANCE_ID", "WEBSITE_SKU", "CONTAINER_NAME", "WEBSITE_POD_NAME", "LEGION_SERVICE_HOST",
          "MANAGED_ENVIRONMENT", "KUBERNETES_SERVICE_HOST", "POD_NAMESPACE")


def _set(env: Mapping[str, str], name: str) -> bool:
    return bool((env.get(name) or "").strip())


def is_app_service(env: Mapping[str, str]) -> bool:
    return _set(env, "WEBSITE_INSTANCE_ID")


def is_flex_consumption(env: Mapping[str, str]) -> bool:
    if (env.get("WEBSITE_SKU") or "").strip().lower() == FLEX_SKU:
        return True
    return (not is_app_service(env) and (_set(env, "CONTAINER_NAME") or _set(env, "WEBSITE_POD_NAME"))
            and _set(env, "LEGION_SERVICE_HOST"))


def is_linux_consumption(env: Mapping[str, str]) -> bool:
    return not is_app_service(env) and _set(env, "CONTAINER_NAME")


def in_azure(env: Mapping[str, str]) -> bool:
    """Any form the host recognises as hosted: App Service, Linux or Flex Consumption, a managed
    (Container Apps) or Kubernetes environment."""
    return (is_app_service(env) or is_linux_consumption(env) or is_flex_consumption(env)
            or _set(env, "MANAGED_ENVIRONMENT")
            or (_set(env, "KUBERNETES_SERVICE_HOST") and _set(env, "POD_NAMESPACE")))


def hosted_by(env: Mapping[str, str]) -> list[str]:
    """The variables that make in_azure() true, to name in a message; [] when it is false. A container
    that sets CONTAINER_NAME (some CI and dev containers do) looks like Linux Consumption to the host."""
    return [name for name in HOSTED if _set(env, name)] if in_azure(env) else []


def instance_id(env: Mapping[str, str]) -> str:
    """The instance's id as the host's `GetInstanceId` reads it: the pod or container name on Linux and
    Flex Consumption, `WEBSITE_INSTANCE_ID` elsewhere; "" locally."""
    if is_linux_consumption(env) or is_flex_consumption(env):
        return (env.get("WEBSITE_POD_NAME") or "").strip() or (env.get("CONTAINER_NAME") or "").strip()
    return (env.get("WEBSITE_INSTANCE_ID") or "").strip()


def development_storage(env: Mapping[str, str]) -> bool:
    """`AzureWebJobsStorage` is the storage emulator: `UseDevelopmentStorage=true`, or Azurite's account
    with every endpoint it names on a loopback address (how the tests and a custom port spell it)."""
    value = (env.get("AzureWebJobsStorage") or "").strip()
    if value.lower().replace(" ", "") == "usedevelopmentstorage=true":
        return True
    parts = {}
    for item in value.split(";"):
        name, sep, v = item.partition("=")
        if sep:
            parts[name.strip().lower()] = v.strip()
    if parts.get("accountname") != DEV_ACCOUNT:
        return False
    endpoints = [v for k, v in parts.items() if k.endswith("endpoint")]
    try:
        return bool(endpoints) and all((urlsplit(e).hostname or "").lower() in LOOPBACK for e in endpoints)
    except ValueError:
        return False


def local_console(env: Mapping[str, str]) -> bool:
    """A local run's console may serve: `hookops run` said so, storage is the emulator, and the host's
    rules say this is not Azure (so an app setting of that name changes nothing there)."""
    return (env.get(LOCAL_CONSOLE) or "").strip() == "1" and development_storage(env) and not in_azure(env)
