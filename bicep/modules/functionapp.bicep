// Flex Consumption plan (FC1) and the Linux Python function app. The app runs as the
// user-assigned identity: deployment package, storage, Key Vault and telemetry all use it.

@description('Function app name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Resource ID of the user-assigned identity.')
param identityId string

@description('Blob endpoint of the storage account, e.g. https://<account>.blob.core.windows.net/')
param blobEndpoint string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Python version of the worker (functionAppConfig.runtime).')
param pythonVersion string

// 512, 2048 and 4096 MB: azure-docs articles/azure-functions/flex-consumption-plan.md, "Instance memory".
@description('Memory per instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// 1 to 1000: azure-docs articles/azure-functions/event-driven-scaling.md, "Limit scale-out" (the preview's floor was 40).
@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances of the http function group (every HTTP-triggered function); 0 = none.')
@minValue(0)
@maxValue(1000)
param alwaysReadyHttpInstances int = 1

@description('Spread instances over availability zones (needs a region with zones; keeps at least two always-ready instances).')
param zoneRedundant bool = false

@description('App settings, name -> value.')
param appSettings object

@description('Tags applied to the plan and the app.')
param tags object = {}

// Always ready (Flex Consumption): instances kept running for a per-function scale group; the
// HTTP triggers form the group `http` (azure-docs flex-consumption-plan.md, "Per-function scaling"). A zone-redundant app may not configure fewer than two per
// group (the platform keeps two anyway, billed as always ready), and always-ready instances cannot
// exceed the scale-out limit.
var httpAlwaysReady = min(maximumInstanceCount, zoneRedundant ? max(alwaysReadyHttpInstances, 2) : alwaysReadyHttpInstances)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Zone redundancy is a parameter (zoneRedundant, default false): on Flex Consumption it bills at least two always-ready instances per function group and needs a region with availability zones.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Preservica does not present client certificates; every webhook request is authenticated by its HMAC-SHA256 signature (Preservica-Signature), checked in constant time by the app.
  // checkov:skip=CKV_AZURE_222:The webhook endpoint must be reachable by the Preservica service over the internet; it only accepts signed requests.
  // checkov:skip=CKV_AZURE_212:numberOfWorkers is a dedicated-plan setting; Flex Consumption allocates instances on demand up to maximumInstanceCount.
  // checkov:skip=CKV_AZURE_213:Flex Consumption does not support the App Service health check; the app is monitored through Application Insights.
  // checkov:skip=CKV_AZURE_78:siteConfig.ftpsState is on the Flex Consumption deprecation list ("FTPS not supported", learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations) and regions that enforce it reject the site; FTP stays off through basicPublishingCredentialsPolicies ftp and scm (allow false) below.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    // Only properties Flex Consumption accepts: its deprecation list ("Flex Consumption plan
    // deprecations" in the Functions app settings reference) names ftpsState, alwaysOn,
    // use32BitWorkerProcess, linuxFxVersion and others, and regions that enforce the list reject
    // the whole site. tests/test_bicep.py holds this resource to that list.
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: [for setting in items(appSettings): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        alwaysReady: (httpAlwaysReady > 0) ? [
          {
            name: 'http'
            instanceCount: httpAlwaysReady
          }
        ] : []
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// Publishing with user name and password is off: az CLI, Core Tools and azd deploy with Entra ID.
// These two policies are also what keeps FTP off: Flex Consumption rejects siteConfig.ftpsState.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
