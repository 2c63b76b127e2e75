// User-assigned managed identity: the function app's only credential for Storage, Key Vault
// and Application Insights. Its client ID goes into AzureWebJobsStorage__clientId and AZURE_CLIENT_ID.

@description('Name of the identity.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to the identity.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
