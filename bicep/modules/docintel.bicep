// Azure AI Document Intelligence for the ocr action (deployed only when PRESERVICA_ROUTES routes to ocr).
// Keys are disabled: the app reaches it with its identity only (Entra ID needs the custom subdomain),
// holding Cognitive Services User on this resource alone. Billed per page read; S0 has no standing charge.
// kind FormRecognizer: Document Intelligence's account kind (it was Form Recognizer; inferred from the
// templates Microsoft publishes, not a reference page read here).

@description('Document Intelligence resource name, also its custom subdomain: globally unique, 2-64 letters, digits and hyphens.')
@minLength(2)
@maxLength(64)
param name string

@description('Azure region: one that offers Document Intelligence.')
param location string

@description('Pricing tier. F0 (free) reads only the first two pages of a document and files up to 4 MB.')
@allowed([
  'S0'
  'F0'
])
param docIntelSku string = 'S0'

@description('Principal (object) ID of the app identity.')
param principalId string

@description('Tags applied to the resource.')
param tags object = {}

resource docintel 'Microsoft.CognitiveServices/accounts@2024-10-01' = {
  // checkov:skip=CKV_AZURE_134:Public network access is required without VNet integration; keys are disabled (disableLocalAuth), so every call needs an Entra ID token with a role on this resource.
  // checkov:skip=CKV_AZURE_238:The account reaches no other resource (no bring-your-own storage, no customer-managed key); an identity of its own would hold no role.
  name: name
  location: location
  tags: tags
  kind: 'FormRecognizer'
  sku: {
    name: docIntelSku
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

// Cognitive Services User (built-in role a97b65f3-...: learn.microsoft.com role-based-access-control/built-in-roles,
// "Lets you read and list keys of Cognitive Services"): the data-plane role Document Intelligence documents for
// Entra ID. It may also list keys, which disableLocalAuth makes useless.
resource docintelUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(docintel.id, principalId, 'a97b65f3-24c7-4388-baec-2e87135dc908')
  scope: docintel
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'a97b65f3-24c7-4388-baec-2e87135dc908')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = docintel.name
output endpoint string = docintel.properties.endpoint
