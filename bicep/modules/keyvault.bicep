// Key Vault (RBAC authorization, soft delete, purge protection) and the app's secrets.
// A secret whose value is empty is not created or changed, so a later deployment without the
// value leaves a secret set or rotated with `az keyvault secret set` as it is.

@description('Key Vault name: 3-24 letters, digits and hyphens, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('default creates or updates the vault; recover brings back a soft-deleted vault of this name (and fails if there is none).')
@allowed([
  'default'
  'recover'
])
param createMode string = 'default'

@description('Days a deleted vault or secret can be recovered (purge protection keeps it that long).')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Secret name -> value. Empty values are skipped.')
@secure()
param secretValues object

@description('Tags applied to the vault.')
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // No VNet in this template: the Flex Consumption app reads secrets over the public endpoint.
  // checkov:skip=CKV_AZURE_109:No VNet integration, so the firewall cannot default to Deny; data-plane access is Entra ID + RBAC only (enableRbacAuthorization, no access policies).
  // checkov:skip=CKV_AZURE_189:Public network access is required without VNet integration; every read needs an Entra ID token with Key Vault Secrets User on this vault.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    createMode: createMode
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource secrets 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in items(secretValues): if(!empty(secret.value)) {
  // checkov:skip=CKV_AZURE_41:The app reads these secrets continuously and rotation is an operator step (README "Deploy to Azure"); an expiry date would stop webhook intake on that date without rotating anything.
  parent: vault
  name: secret.key
  properties: {
    value: secret.value
    contentType: 'text/plain'
  }
}]

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
