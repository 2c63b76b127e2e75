// Azure OpenAI for the describe action (deployed only when PRESERVICA_ROUTES routes to describe), with
// one model deployment. Keys are disabled: the app reaches it with its identity only (Entra ID needs the
// custom subdomain), holding Cognitive Services OpenAI User on this resource alone (chat completions,
// no key listing or deployment changes). Billed per token; no standing charge for a Standard deployment.

@description('Azure OpenAI resource name, also its custom subdomain: globally unique, 2-64 letters, digits and hyphens.')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region: one that offers the model below.')
param location string

@description('Deployment name (DESCRIBE_DEPLOYMENT).')
param deploymentName string

@description('Model name, e.g. gpt-4o-mini.')
param modelName string

@description('Model version, e.g. 2024-07-18.')
param modelVersion string

@description('Deployment type: GlobalStandard or Standard (data processed in the resource\'s region), etc.')
param deploymentSku string

@description('Capacity in thousands of tokens per minute.')
@minValue(1)
param capacity int

@description('Principal (object) ID of the app identity.')
param principalId string

@description('Tags applied to the resource.')
param tags object = {}

resource openai 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134:Public network access is required without VNet integration; keys are disabled (disableLocalAuth), so every call needs an Entra ID token with a role on this resource.
  // checkov:skip=CKV_AZURE_238:The account reaches no other resource (no bring-your-own storage, no customer-managed key); an identity of its own would hold no role.
  name: name
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: name
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
    }
  }
}

resource deployment 'Microsoft.CognitiveServices/accounts/deployments@2024-10-01' = {
  parent: openai
  name: deploymentName
  sku: {
    name: deploymentSku
    capacity: capacity
  }
  properties: {
    model: {
      format: 'OpenAI'
      name: modelName
      version: modelVersion
    }
  }
}

// Cognitive Services OpenAI User (built-in role 5e0bd9bd-...: learn.microsoft.com role-based-access-control/
// built-in-roles): calls the deployments' inference APIs; no keys, no deployment changes.
resource openaiUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(openai.id, principalId, '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd')
  scope: openai
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = openai.name
output endpoint string = openai.properties.endpoint
output deploymentName string = deployment.name
