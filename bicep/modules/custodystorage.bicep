// Storage account for the custody copy (issue 23): one OCFL storage root in one container, an
// independent copy of what Preservica holds that nobody can quietly alter. Separate from the
// pipeline's account (whose queues and bodies the app may delete) and from the public IIIF account.
//
// Schema: Microsoft.Storage@2023-05-01 as generated in Azure/bicep-types-az
// (generated/storage/microsoft.storage/2023-05-01/types.md). Behaviour of version-level WORM:
// MicrosoftDocs/azure-docs articles/storage/blobs/immutable-version-level-worm-policies.md.
//   - immutableStorageWithVersioning can only be set at account creation (types.md, ImmutableStorageAccount):
//     enabling it later is impossible, so a deployment that had custody off creates a new account.
//   - Every blob version inherits the account's default policy and cannot be deleted, nor its metadata
//     set, until its own retention ends; an overwrite (Put Blob / Put Block List) makes a new version
//     and keeps the old one (azure-docs, "Scenarios"). So the OCFL inventory can be replaced; its
//     earlier versions stay.
//   - Storage account and container deletion fail while the container holds any blob (same page,
//     "Deletion"), whether the policy is locked or not.

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

// Geo-redundant only: this is the copy meant to survive the loss of a region. GZRS is not offered in
// every region (check: az storage sku list, docs/deploy.md "The custody account"); choose GRS there.
@description('Replication of the custody copy: geo-redundant; Standard_GZRS (zones and a second region) where the region offers it, else Standard_GRS.')
@allowed([
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param skuName string = 'Standard_GZRS'

// 'Cold' is an account default tier from API 2023-05-01 on (types.md: accessTier 'Cold' | 'Cool' |
// 'Hot' | 'Premium'). Blobs uploaded without a tier take the account's; the container holds nothing else.
@description('Access tier the custody content is stored in (the account default). Cold: cheapest at rest, dearer to read (the audit reads everything every CUSTODY_AUDIT_DAYS), 90-day minimum. Cool: 30-day minimum.')
@allowed([
  'Cold'
  'Cool'
])
param accessTier string = 'Cold'

@description('The OCFL storage root container (CUSTODY_CONTAINER).')
param containerName string

// 1-146000 days (types.md, AccountImmutabilityPolicyProperties).
@description('Days every blob version is protected (WORM) from its creation: no one can delete or change it before.')
@minValue(1)
@maxValue(146000)
param retentionDays int

// Locked is irreversible: afterwards the retention can only be extended, and a policy can only be
// created Disabled or Unlocked (types.md, AccountImmutabilityPolicyProperties.state), so lock on a
// deployment after the first, and keep true on every later one. Lock before the action writes: a version
// keeps the policy it was written under when the default changes (azure-docs, "Configure a policy on the current version").
@description('Lock the account\'s immutability policy: irreversible; the retention can then only be extended. Only on an account that exists (a policy is created unlocked).')
param locked bool = false

@description('Days a deleted blob (after its retention ended) or a deleted container can be restored.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 30

@description('Principal (object) ID of the app identity: the only writer.')
param principalId string

@description('Tags applied to the account.')
param tags object = {}

resource custodyAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35:No VNet integration (the Flex Consumption app reaches storage over its public endpoint), so the firewall cannot default to Deny; shared keys are disabled and every request needs an Entra ID token with a role on the custody container.
  // checkov:skip=CKV_AZURE_59:Public network access is required without VNet integration; access is Entra ID + RBAC only (allowSharedKeyAccess false, no anonymous access), and the data is WORM.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: accessTier
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowedCopyScope: 'AAD'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    immutableStorageWithVersioning: {
      enabled: true
      immutabilityPolicy: {
        immutabilityPeriodSinceCreationInDays: retentionDays
        state: locked ? 'Locked' : 'Unlocked'
        // OCFL writes block blobs only; no protected blob may grow.
        allowProtectedAppendWrites: false
      }
    }
  }
}

resource custodyBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: custodyAccount
  name: 'default'
  properties: {
    // Version-level immutability requires versioning (azure-docs, "Version dependency").
    isVersioningEnabled: true
    // Protected versions cannot be deleted at all; soft delete catches what can: a version whose
    // retention has ended, and the container. allowPermanentDelete false: no one purges a soft-deleted one.
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
      allowPermanentDelete: false
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource custodyContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: custodyBlobService
  name: containerName
  properties: {
    publicAccess: 'None'
    // Inherited from the account already; explicit so the container says what it is.
    immutableStorageWithVersioning: {
      enabled: true
    }
  }
}

// The app's role here: a custom role that can read, list and write blobs and nothing else.
// Storage Blob Data Contributor was the alternative: WORM makes its blobs/delete fail on a protected
// version, but it still deletes every version whose retention has ended, moves blobs, and deletes the
// container (containers/delete), and Microsoft adds data actions to built-in roles over time, so what it
// grants tomorrow is not reviewed here. An allow-list says exactly what the custody action may do:
//   blobs/read                 Get Blob, Get Blob Properties, List Blobs (fixity audit, verify, convergence)
//   blobs/write, blobs/add     Put Block + Put Block List (streamed uploads) and replacing the inventory
//   containers/read            Get Container Properties (that the container is version-level immutable)
// Not granted: blobs/delete, blobs/move, blobs/tags/*, blobs/immutableStorage/runAsSuperUser (set or delete a
// blob's immutability policy: it could shorten retention), containers/write or delete, user delegation keys.
// Permissions per operation: MicrosoftDocs/azure-docs-rest-apis
// docs-ref-conceptual/storageservices/authorize-with-azure-active-directory.md. A custom role needs
// Microsoft.Authorization/roleDefinitions/write from the deployer (docs/deploy.md "Prerequisites"). Defined
// at resource-group scope as Azure/ResourceModules modules/authorization/role-definition/resource-group does;
// roleName is unique per tenant, hence the account name in it.
resource custodyWriterRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, custodyAccount.name, 'custody-writer')
  properties: {
    roleName: 'Custody writer (${custodyAccount.name})'
    description: 'Read, list and add blob versions in the custody container; no delete, move, tags or immutability policy changes.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/read'
        ]
        notActions: []
        dataActions: [
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'
          'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action'
        ]
        notDataActions: []
      }
    ]
  }
}

// On the custody container only.
resource custodyWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(custodyContainer.id, principalId, custodyWriterRole.name)
  scope: custodyContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', custodyWriterRole.name)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = custodyAccount.name
output blobEndpoint string = custodyAccount.properties.primaryEndpoints.blob
output containerName string = custodyContainer.name
