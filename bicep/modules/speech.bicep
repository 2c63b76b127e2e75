// Azure AI Speech for the transcribe action. Keys are disabled: the app reaches it with its
// identity only (Entra ID needs the custom subdomain), holding Cognitive Services Speech User on
// this resource alone - the least role that may call transcription (it cannot list keys or change
// custom models). Billed per audio hour transcribed; S0 has no standing charge.

@description('Speech resource name, also its custom subdomain (<name>.cognitiveservices.azure.com): globally unique, 2-64 letters, digits and hyphens.')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region: one that offers fast transcription.')
param location string

// Not named skuName: checkov resolves parameters across modules by name, and storage.bicep has one.
@description('Pricing tier. F0 (free) has one per subscription and small quotas.')
@allowed([
  'S0'
  'F0'
])
param speechSku string = 'S0'

@description('Principal (object) ID of the app identity.')
param principalId string

@description('Tags applied to the resource.')
param tags object = {}

resource speech 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134:Public network access is required without VNet integration; keys are disabled (disableLocalAuth), so every call needs an Entra ID token with a Speech role on this resource.
  // checkov:skip=CKV_AZURE_238:The account reaches no other resource (no bring-your-own storage, no customer-managed key); an identity of its own would hold no role.
  name: name
  location: location
  tags: tags
  kind: 'SpeechServices'
  sku: {
    name: speechSku
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

// Cognitive Services Speech User (learn.microsoft.com/azure/role-based-access-control/built-in-roles)
resource speechUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(speech.id, principalId, 'f2dc8367-1007-4938-bd23-fe263f013447')
  scope: speech
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'f2dc8367-1007-4938-bd23-fe263f013447')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = speech.name
output endpoint string = speech.properties.endpoint
