// Storage account for the public IIIF host (the `publish` action): manifests, access copies and the
// Change Discovery activity stream, read anonymously by viewers and aggregators. A separate account,
// so the pipeline's account keeps allowBlobPublicAccess false and nothing of it can ever be made public.
// Anonymous access is read-only and only on the one container; the only writer is the app's identity
// (Storage Blob Data Contributor on that container); shared keys are disabled, so no key or SAS can
// write either.

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Replication of the public copies (they can be published again from Preservica).')
@allowed([
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
])
param replication string = 'Standard_GRS'

@description('The public-read container (PUBLISH_CONTAINER).')
param containerName string

@description('Principal (object) ID of the app identity: the only writer.')
param principalId string

@description('Tags applied to the account.')
param tags object = {}

resource publicAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:Anonymous readers on the internet are the audience, so the firewall cannot default to Deny; writes need an Entra ID token with the role on the container.
  // checkov:skip=CKV_AZURE_59:This account exists to serve IIIF to anyone: allowBlobPublicAccess is true so the one publish container can be read anonymously (blob level, no listing) and the network is public; writes need Entra ID + RBAC (allowSharedKeyAccess false). The pipeline's own account keeps both off.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: replication
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: true
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource publicBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: publicAccount
  name: 'default'
  properties: {
    // IIIF viewers (Mirador, Universal Viewer) fetch manifests from the browser, on any site.
    cors: {
      corsRules: [
        {
          allowedOrigins: [
            '*'
          ]
          allowedMethods: [
            'GET'
            'HEAD'
            'OPTIONS'
          ]
          allowedHeaders: [
            '*'
          ]
          exposedHeaders: [
            '*'
          ]
          maxAgeInSeconds: 3600
        }
      ]
    }
    // A withdrawal is final (issue 19): no soft-deleted blob or container and no previous version of a
    // withdrawn file may stay restorable. Everything here can be published again from Preservica.
    deleteRetentionPolicy: {
      enabled: false
    }
    containerDeleteRetentionPolicy: {
      enabled: false
    }
    isVersioningEnabled: false
  }
}

resource publicContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  // checkov:skip=CKV_AZURE_34:The IIIF container is public by design: anonymous read of single blobs ('Blob', not 'Container': nobody can list it); only open assets are written to it and they are deleted when closed.
  parent: publicBlobService
  name: containerName
  properties: {
    publicAccess: 'Blob'
  }
}

// Storage Blob Data Contributor (built-in-roles page), on the publish container only: write and delete its blobs, nothing else.
resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(publicContainer.id, principalId, 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
  scope: publicContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = publicAccount.name
output blobEndpoint string = publicAccount.properties.primaryEndpoints.blob
output containerUrl string = '${publicAccount.properties.primaryEndpoints.blob}${containerName}'
