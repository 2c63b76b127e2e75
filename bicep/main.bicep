// Preservica webhooks on Azure Functions (Flex Consumption): everything the app needs in one
// resource group. Deploy with `az deployment group create` (README "Deploy to Azure") or `azd up`.
//
// Names that the Python code also knows (queues, containers, table, Key Vault secrets, app
// settings) are checked against handlers/settings.py by tests/test_bicep.py.
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Parameters: deployment
// ---------------------------------------------------------------------------------------------

@description('Short name used in resource names and the azd-env-name tag; main.bicepparam passes the azd environment name (AZURE_ENV_NAME).')
@minLength(2)
param baseName string = 'preservica-hooks'

@description('Azure region of every resource; it must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Memory per function app instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Most instances the function app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Instances of the HTTP function group (the webhook endpoint) kept always ready, so Preservica\'s challenge and the first deliveries after a quiet period do not wait for a cold start. 0 turns it off. Billed for their idle baseline too (README "Cold starts: always-ready instances"). With zoneRedundant at least 2.')
@minValue(0)
@maxValue(1000)
param alwaysReadyHttpInstances int = 1

@description('Spread app instances over availability zones (region must have zones; bills at least two always-ready instances). Also makes the storage account zone-redundant (see storageSku).')
param zoneRedundant bool = false

@description('Storage replication. Geo-redundant by default: acknowledged deliveries wait in these queues. With zoneRedundant the zone-redundant counterpart is deployed: LRS becomes ZRS, GRS GZRS, RAGRS RAGZRS.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_GRS'

@description('Days a delivery body kept in the deliveries (claim check) and rejected-deliveries containers is kept before it is deleted.')
@minValue(1)
@maxValue(3650)
param deliveryRetentionDays int = 90

@description('Any text changes the Key Vault name, and nothing else. Purge protection keeps a deleted vault, and its name, for 90 days: after `azd down` or deleting the resource group, a new salt deploys the same environment again at once (or recover the old vault with keyVaultRecover). Empty keeps the name earlier deployments used.')
@maxLength(64)
param keyVaultNameSalt string = ''

@description('true: bring back the soft-deleted vault of this name, with its secrets, instead of creating one (createMode recover; fails if there is none, so deploy with false afterwards). false: create or update it (fails while a deleted vault of this name is kept).')
param keyVaultRecover bool = false

@description('Any text changes the Speech account\'s name (and custom subdomain), and nothing else. A deleted Cognitive Services account keeps its name for 48 hours: after `azd down` without --purge or deleting the resource group, a new salt deploys at once (or purge it: README "Tear down"). Empty keeps the name earlier deployments used.')
@maxLength(64)
param speechNameSalt string = ''

@description('Create the public IIIF storage account of the publish action. Its anonymous read (allowBlobPublicAccess) is denied where the built-in policy "Storage account public access should be disallowed" (4fa4b6c0-31ca-4c0d-b10d-24b96f62a751) is assigned with Deny: exempt the resource group first, or deploy with false (publish then fails with "PUBLISH_BLOB_SERVICE_URI is not set").')
param deployPublish bool = true

@description('Create the custody storage account of the custody action (issue 23; docs/deploy.md "The custody account"): geo-redundant, version-level WORM. Its write role is a custom role, so the deployer needs Microsoft.Authorization/roleDefinitions/write (Owner or User Access Administrator). false: no account, and CUSTODY_ACCOUNT_URL is empty.')
param deployCustody bool = true

@description('Replication of the custody account: Standard_GZRS where the region offers it (az storage sku list), else Standard_GRS.')
@allowed([
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_GRS'
  'Standard_RAGRS'
])
param custodySku string = 'Standard_GZRS'

@description('Access tier of the custody content: Cold (cheapest at rest, dearer to read) or Cool.')
@allowed([
  'Cold'
  'Cool'
])
param custodyAccessTier string = 'Cold'

@description('Days every custody blob version is WORM-protected from its creation. Once the policy is locked it can only be raised.')
@minValue(1)
@maxValue(146000)
param custodyRetentionDays int = 3650

@description('Lock the custody account\'s immutability policy: irreversible. Only on a deployment after the one that created the account and before custody is routed (versions written earlier stay unlocked), then true on every later deployment.')
param custodyImmutabilityLocked bool = false

@description('true: write the non-empty secret parameters into Key Vault (first deployment, or a deliberate overwrite). false (default): leave the vault\'s secrets as they are, so a deployment never reverts a secret rotated in Key Vault.')
param writeSecrets bool = false

@description('Days Log Analytics keeps logs and telemetry.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// ---------------------------------------------------------------------------------------------
// Parameters: app settings (defaults equal those in handlers/settings.py)
// ---------------------------------------------------------------------------------------------

@description('PRESERVICA_ROUTES: which actions run for which trigger, e.g. FULL_TEXT_INDEXED=journal,thumbnail,teams;*=journal')
param preservicaRoutes string = '*=journal'

@description('MAX_BODY_BYTES: largest delivery body accepted (413 above it).')
@minValue(1)
param maxBodyBytes int = 4194304

@description('SECRET_CACHE_SECONDS: how long a secret read from Key Vault is reused.')
@minValue(0)
param secretCacheSeconds int = 300

@description('Address the alerts mail (poison messages, refused or failing deliveries); empty: alerts show in the portal only.')
param alertEmail string = ''

@description('Refused (401) or failing (5xx) webhook requests in 15 minutes above which an alert fires.')
@minValue(1)
param webhookFailureThreshold int = 5

// Only hours whose window a log alert accepts (modules/alerts.bicep).
@description('Hours without any accepted delivery after which an alert fires: 1-6, 24 or 48; 0 (default) turns it off.')
@allowed([
  0
  1
  2
  3
  4
  5
  6
  24
  48
])
param noDeliveryHours int = 0

@description('MAX_EVENTS_PER_DELIVERY: page size: most events of one delivery one dispatcher invocation works through (larger deliveries are dispatched a page at a time).')
@minValue(1)
param maxEventsPerDelivery int = 1000

@description('STORAGE_TIMEOUT_SECONDS: how long one storage call may wait for an answer before it is retried.')
@minValue(1)
param storageTimeoutSeconds int = 20

@description('PRESERVICA_SERVER: Preservica host name, e.g. eu.preservica.com (needed by the actions and hookops subscribe).')
param preservicaServer string = ''

@description('PRESERVICA_USERNAME: Preservica user for the actions.')
param preservicaUsername string = ''

@description('PRESERVICA_TENANT: Preservica tenant.')
param preservicaTenant string = ''

@description('PRESERVICA_PROTOCOL: https (http only for a local test double).')
@allowed([
  'https'
  'http'
])
param preservicaProtocol string = 'https'

@description('THUMBNAIL_SIZE: thumbnail size the thumbnail action keeps.')
@allowed([
  'large'
  'medium'
  'small'
])
param thumbnailSize string = 'large'

@description('Application (client) ID of the Entra ID app registration the operator console signs in with (README "Operator console"). Empty: no built-in authentication, and the app refuses to serve the console.')
param consoleClientId string = ''

@description('THUMBNAIL_CONTAINER: blob container the thumbnail action writes to (created here).')
param thumbnailContainer string = 'thumbnails'

@description('TEAMS_DIGEST_THRESHOLD: a delivery with more events than this posts one digest card.')
@minValue(0)
param teamsDigestThreshold int = 10

@description('TEAMS_LIST_FILES: true lists an asset\'s files on its ingest card (4+ Preservica requests per asset).')
@allowed([
  'true'
  'false'
])
param teamsListFiles string = 'false'

@description('ACTION_BATCH_SIZE: most events of one delivery one action message carries.')
@minValue(1)
param actionBatchSize int = 50

@description('ACTION_WAIT_SECONDS: longest an action that runs after others (describe after ocr) waits for them per event.')
@minValue(0)
param actionWaitSeconds int = 3600

@description('PRESERVICA_MAX_RPS: most requests per second the whole app sends to Preservica, shared by its live instances.')
@minValue(1)
param preservicaMaxRps int = 10

@description('ASSET_URL_TEMPLATE: link to an asset for cards, e.g. https://host/explorer/{ref}')
param assetUrlTemplate string = ''

@description('RECONCILE_SCHEDULE: NCRONTAB schedule of the reconciler (Preservica event log); empty turns it off.')
param reconcileSchedule string = '0 */15 * * * *'

@description('RECONCILE_EVENT_TYPES: Preservica event-log types and the webhook trigger each stands for.')
param reconcileEventTypes string = 'Ingest=FULL_TEXT_INDEXED,Moved=MOVED,Modified=CHANGED_SECURITY_DESCRIPTOR'

@description('RECONCILE_DELAY_MINUTES: the reconciler looks only at events older than this.')
@minValue(0)
param reconcileDelayMinutes int = 60

@description('RECONCILE_TOLERANCE_MINUTES: how close Preservica\'s two times for one event are.')
@minValue(0)
param reconcileToleranceMinutes int = 30

@description('RECONCILE_FIRST_HOURS: how far back the first reconciliation run looks.')
@minValue(1)
param reconcileFirstHours int = 24

@description('RECONCILE_STALL_RUNS: incomplete reconciliation runs in a row before the reconcile-stalled alert signal.')
@minValue(1)
param reconcileStallRuns int = 3

@description('RECONCILE_MAX_REQUESTS: most Preservica requests one reconciliation run makes.')
@minValue(1)
param reconcileMaxRequests int = 300

@description('CATALOGUE_URL_TEMPLATE: catalogue record URL, e.g. https://catalogue.example.org/records/{identifier}')
param catalogueUrlTemplate string = ''

@description('CATALOGUE_IDENTIFIER_TYPE: identifier type looked up in the catalogue.')
param catalogueIdentifierType string = 'catalogue'

@description('CATALOGUE_SCHEMA: schema URI of the metadata fragment the catalogue action attaches.')
param catalogueSchema string = ''

@description('RELAY_URL: receiver the relay action POSTs Standard Webhooks to.')
param relayUrl string = ''

@description('PUBLISH_CONTAINER: the public-read IIIF container of the publish action (created in its own storage account).')
@minLength(3)
param publishContainer string = 'iiif'

@description('PUBLISH_BASE_URL: public URL of the IIIF container (e.g. a CDN in front of it); empty: the container\'s own URL.')
param publishBaseUrl string = ''

@description('PUBLIC_SECURITY_TAGS: comma-separated security tags whose assets the publish action makes public.')
param publicSecurityTags string = 'open'

@description('PUBLISH_RIGHTS: IIIF rights URI of published manifests (Creative Commons or RightsStatements.org).')
param publishRights string = ''

@description('PUBLISH_REQUIRED_STATEMENT: attribution text shown with every published manifest.')
param publishRequiredStatement string = ''

@description('PUBLISH_MAX_FILES: most files of one access representation the publish action copies.')
@minValue(1)
param publishMaxFiles int = 500

@description('PUBLISH_IDENTIFIER_TYPES: comma-separated identifier types the publish action puts in public manifests; empty: none.')
param publishIdentifierTypes string = ''

@description('PUBLISH_MAX_BYTES: largest access file the publish action copies; an asset with a larger one is skipped.')
@minValue(1)
param publishMaxBytes int = 1073741824

@description('PUBLISH_SWEEP_SCHEDULE: NCRONTAB schedule of the public sweep (withdraws what is no longer public); empty turns it off.')
param publishSweepSchedule string = '0 30 3 * * *'

@description('PUBLISH_SWEEP_MAX_REQUESTS: most Preservica requests one public sweep run makes.')
@minValue(1)
param publishSweepMaxRequests int = 5000

@description('Region of the Speech resource (transcribe action): one that offers fast transcription. Default: the resource group\'s.')
param speechLocation string = location

@description('TRANSCRIBE_LOCALES: candidate locales of the speech, e.g. en-US,cy-GB (more than one: language identification; empty: the service detects it).')
param transcribeLocales string = ''

@description('TRANSCRIBE_MAX_BYTES: largest file the transcribe action sends to Speech (fast transcription takes up to 250 MB); larger ones are skipped.')
@minValue(1)
param transcribeMaxBytes int = 250000000

@description('TRANSCRIBE_CONCURRENCY: most transcriptions one instance runs at once (temporary disk and Speech calls).')
@minValue(1)
param transcribeConcurrency int = 2

@description('TRANSCRIPT_SCHEMA: schema URI of the transcript metadata fragment.')
param transcriptSchema string = 'urn:preservica-webhooks-azure:transcript:v1'

@description('TRANSCRIBE_CONTAINER: blob container for captions (.vtt) and transcripts (.txt), created here.')
param transcribeContainer string = 'transcripts'

@description('OCR_REPRESENTATION: which representation the ocr action reads first (Access or Preservation).')
@allowed([
  'Access'
  'Preservation'
])
param ocrRepresentation string = 'Access'

@description('OCR_MAX_PAGES: most pages the ocr action reads per asset.')
@minValue(1)
param ocrMaxPages int = 100

@description('OCR_MAX_BYTES: most bytes the ocr action sends per asset.')
@minValue(1)
param ocrMaxBytes int = 50000000

@description('OCR_SCHEMA: schema URI of the OCR text metadata fragment.')
param ocrSchema string = 'urn:preservica-webhooks-azure:ocr:v1'

@description('OCR_CONTAINER: blob container for the full OCR text, created here.')
param ocrContainer string = 'ocr'

@description('Azure OpenAI model the describe action uses (deployed only when routed), e.g. gpt-4o-mini.')
param describeModelName string = 'gpt-4o-mini'

@description('Version of that model.')
param describeModelVersion string = '2024-07-18'

@description('Deployment type of that model: GlobalStandard (any region processes) or Standard (this region).')
@allowed([
  'GlobalStandard'
  'Standard'
  'DataZoneStandard'
])
param describeDeploymentSku string = 'GlobalStandard'

@description('Capacity of that deployment, in thousands of tokens per minute.')
@minValue(1)
param describeCapacity int = 10

@description('OPENAI_API_VERSION: Azure OpenAI data-plane API version the describe action uses.')
param openAiApiVersion string = '2024-10-21'

@description('DESCRIBE_PROMPT: what the describe action asks for; empty: the built-in archival prompt.')
param describePrompt string = ''

@description('DESCRIBE_LANGUAGE: language tag of the drafts.')
param describeLanguage string = 'en'

@description('DESCRIBE_MAX_CHARS: longest draft kept, in characters.')
@minValue(100)
param describeMaxChars int = 1500

@description('DESCRIBE_MAX_TOKENS: most tokens one asset\'s draft may use, prompt and answer together.')
@minValue(1100)
param describeMaxTokens int = 6000

@description('DESCRIBE_CONTAINER: blob container for the drafts, created here.')
param describeContainer string = 'drafts'

@description('DESCRIBE_WRITE: what accepting a draft writes: description or fragment.')
@allowed([
  'description'
  'fragment'
])
param describeWrite string = 'description'

@description('DESCRIBE_SCHEMA: schema URI of the reviewed-description fragment.')
param describeSchema string = 'urn:preservica-webhooks-azure:description:v1'

@description('CUSTODY_AUDIT_SCHEDULE: NCRONTAB schedule of the custody audit (re-reads a share of the stored objects each run).')
param custodyAuditSchedule string = '0 0 2 * * *'

@description('CUSTODY_AUDIT_DAYS: every custody object is audited within this many days.')
@minValue(1)
param custodyAuditDays int = 90

@description('CUSTODY_AUDIT_MAX_REQUESTS: most Preservica requests one custody audit run makes to read current fixity (about 7 per asset of one file).')
@minValue(1)
param custodyAuditMaxRequests int = 5000

@description('CUSTODY_MAX_BYTES: most bytes the custody action copies for one asset (a larger one fails, nothing committed).')
@minValue(1)
param custodyMaxBytes int = 10737418240

// ---------------------------------------------------------------------------------------------
// Parameters: secrets (written to Key Vault only with writeSecrets; an empty value leaves the secret as it is)
// ---------------------------------------------------------------------------------------------

@description('Webhook HMAC secret shared with Preservica. Required on the first deployment; generate with: python -c "import secrets; print(secrets.token_urlsafe(32))"')
@secure()
param webhookSecret string = ''

@description('Previous webhook secret, still accepted during a rotation. Usually set with az keyvault secret set instead.')
@secure()
param webhookSecretPrevious string = ''

@description('Password of PRESERVICA_USERNAME (thumbnail, teams, catalogue actions and subscribe).')
@secure()
param preservicaPassword string = ''

@description('Teams Workflows webhook URL (teams action). The URL is a credential.')
@secure()
param teamsWebhookUrl string = ''

@description('Standard Webhooks secret (whsec_...) for the relay action.')
@secure()
param relaySecret string = ''

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var pythonVersion = '3.11'
var token = uniqueString(subscription().id, resourceGroup().id, baseName)
// azd environment names may also hold '_', '.', '(' and ')', which resource names do not accept.
var prefix = toLower(replace(replace(replace(replace(take(baseName, 20), '_', '-'), '.', '-'), '(', '-'), ')', '-'))
var tags = {
  'azd-env-name': baseName
  app: 'preservica-webhooks'
}
var functionAppName = 'func-${prefix}-${token}'
// Without a salt the vault keeps the name it always had ('kv-' + token): 16 characters, the limit is 24.
var keyVaultToken = empty(keyVaultNameSalt) ? token : uniqueString(token, keyVaultNameSalt)
var keyVaultName = 'kv-${keyVaultToken}'
// Speech likewise: 'spch-' + prefix + token without a salt, as before.
var speechToken = empty(speechNameSalt) ? token : uniqueString(token, speechNameSalt)
var speechName = 'spch-${prefix}-${speechToken}'
var deploymentContainerName = 'app-package'
// The AI accounts exist only when PRESERVICA_ROUTES routes to their action: a deployment without AI costs nothing.
var ocrRouted = contains(preservicaRoutes, 'ocr')
var describeRouted = contains(preservicaRoutes, 'describe')
// The OCFL storage root of the custody action, in its own account (CUSTODY_CONTAINER).
var custodyContainer = 'custody'

// A zone-redundant Flex Consumption app needs a zone-redundant storage account ("Reliability in
// Azure Functions", Flex Consumption prerequisites: with other storage, Functions can behave
// unexpectedly during a zonal outage). Derive it from zoneRedundant instead of trusting the pair of
// parameters to agree; the chosen geo-replication is kept.
var zoneRedundantStorageSku = {
  Standard_LRS: 'Standard_ZRS'
  Standard_ZRS: 'Standard_ZRS'
  Standard_GRS: 'Standard_GZRS'
  Standard_GZRS: 'Standard_GZRS'
  Standard_RAGRS: 'Standard_RAGZRS'
  Standard_RAGZRS: 'Standard_RAGZRS'
}
var storageAccountSku = zoneRedundant ? zoneRedundantStorageSku[storageSku] : storageSku

// Storage names fixed in handlers/settings.py (queues of ACTIONS, containers, table).
var queueNames = [
  'preservica-deliveries'
  'preservica-deliveries-poison'
  'action-journal'
  'action-journal-poison'
  'action-thumbnail'
  'action-thumbnail-poison'
  'action-teams'
  'action-teams-poison'
  'action-catalogue'
  'action-catalogue-poison'
  'action-relay'
  'action-relay-poison'
  'action-publish'
  'action-publish-poison'
  'action-transcribe'
  'action-transcribe-poison'
  'action-ocr'
  'action-ocr-poison'
  'action-describe'
  'action-describe-poison'
  'action-custody'
  'action-custody-poison'
]
var containerNames = [
  'deliveries'
  'rejected-deliveries'
  'console'
  'publish-locks'
  thumbnailContainer
  transcribeContainer
  ocrContainer
  describeContainer
  deploymentContainerName
]
var tableNames = [
  'journal'
  'reconcile'
]

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${prefix}-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${prefix}-${token}'
    applicationInsightsName: 'appi-${prefix}-${token}'
    location: location
    retentionInDays: logRetentionDays
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: 'st${token}'
    location: location
    skuName: storageAccountSku
    containerNames: containerNames
    expiringContainerNames: [
      'deliveries'
      'rejected-deliveries'
    ]
    expireAfterDays: deliveryRetentionDays
    queueNames: queueNames
    tableNames: tableNames
    tags: tags
  }
}

// The public IIIF host of the publish action: its own account, so the pipeline's stays private.
module publicStorage 'modules/publicstorage.bicep' = if (deployPublish) {
  name: 'publicstorage'
  params: {
    name: 'stiiif${token}'
    location: location
    containerName: publishContainer
    principalId: identity.outputs.principalId
    tags: tags
  }
}

// The custody copy (issue 23): its own account, WORM, the app identity may add versions but not delete.
module custodyStorage 'modules/custodystorage.bicep' = if (deployCustody) {
  name: 'custodystorage'
  params: {
    name: 'stcust${token}'
    location: location
    skuName: custodySku
    accessTier: custodyAccessTier
    containerName: custodyContainer
    retentionDays: custodyRetentionDays
    locked: custodyImmutabilityLocked
    principalId: identity.outputs.principalId
    tags: tags
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: keyVaultName
    createMode: keyVaultRecover ? 'recover' : 'default'
    location: location
    tags: tags
    // Without writeSecrets nothing is written: azd keeps its environment's values and would otherwise
    // write the old webhook secret back over a rotated one on every provision.
    secretValues: writeSecrets ? {
      'preservica-webhook-secret': webhookSecret
      'preservica-webhook-secret-previous': webhookSecretPrevious
      'preservica-password': preservicaPassword
      'teams-webhook-url': teamsWebhookUrl
      'relay-secret': relaySecret
    } : {}
  }
}

// Speech for the transcribe action, with its role for the app identity (modules/speech.bicep).
module speech 'modules/speech.bicep' = {
  name: 'speech'
  params: {
    name: speechName
    location: speechLocation
    principalId: identity.outputs.principalId
    tags: tags
  }
}

// Document Intelligence (ocr) and Azure OpenAI (describe), each with its role for the app identity.
module docintel 'modules/docintel.bicep' = if (ocrRouted) {
  name: 'docintel'
  params: {
    name: 'di-${prefix}-${token}'
    location: location
    principalId: identity.outputs.principalId
    tags: tags
  }
}

module openai 'modules/openai.bicep' = if (describeRouted) {
  name: 'openai'
  params: {
    name: 'oai-${prefix}-${token}'
    location: location
    deploymentName: 'describe'
    modelName: describeModelName
    modelVersion: describeModelVersion
    deploymentSku: describeDeploymentSku
    capacity: describeCapacity
    principalId: identity.outputs.principalId
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

// Every app setting the code reads in Azure (handlers/settings.py, where "app"), plus the two
// Application Insights settings the host reads. FUNCTIONS_WORKER_RUNTIME is not set: Flex
// Consumption takes the runtime from functionAppConfig. Secrets are not app settings: the code
// reads them from Key Vault (KEY_VAULT_URI) with the app identity.
var appSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AZURE_CLIENT_ID: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: monitoring.outputs.connectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identity.outputs.clientId}'
  KEY_VAULT_URI: keyVault.outputs.uri
  WEBHOOK_SECRET_NAME: 'preservica-webhook-secret'
  SECRET_CACHE_SECONDS: string(secretCacheSeconds)
  MAX_BODY_BYTES: string(maxBodyBytes)
  MAX_EVENTS_PER_DELIVERY: string(maxEventsPerDelivery)
  STORAGE_TIMEOUT_SECONDS: string(storageTimeoutSeconds)
  PRESERVICA_ROUTES: preservicaRoutes
  PRESERVICA_SERVER: preservicaServer
  PRESERVICA_USERNAME: preservicaUsername
  PRESERVICA_TENANT: preservicaTenant
  PRESERVICA_PROTOCOL: preservicaProtocol
  THUMBNAIL_SIZE: thumbnailSize
  THUMBNAIL_CONTAINER: thumbnailContainer
  TEAMS_DIGEST_THRESHOLD: string(teamsDigestThreshold)
  TEAMS_LIST_FILES: teamsListFiles
  ACTION_BATCH_SIZE: string(actionBatchSize)
  ACTION_WAIT_SECONDS: string(actionWaitSeconds)
  PRESERVICA_MAX_RPS: string(preservicaMaxRps)
  MAXIMUM_INSTANCE_COUNT: string(maximumInstanceCount)   // the floor of each one's Preservica share: PRESERVICA_MAX_RPS / this
  ASSET_URL_TEMPLATE: assetUrlTemplate
  RECONCILE_SCHEDULE: reconcileSchedule
  RECONCILE_EVENT_TYPES: reconcileEventTypes
  RECONCILE_DELAY_MINUTES: string(reconcileDelayMinutes)
  RECONCILE_TOLERANCE_MINUTES: string(reconcileToleranceMinutes)
  RECONCILE_FIRST_HOURS: string(reconcileFirstHours)
  RECONCILE_MAX_REQUESTS: string(reconcileMaxRequests)
  RECONCILE_STALL_RUNS: string(reconcileStallRuns)
  CATALOGUE_URL_TEMPLATE: catalogueUrlTemplate
  CATALOGUE_IDENTIFIER_TYPE: catalogueIdentifierType
  CATALOGUE_SCHEMA: catalogueSchema
  RELAY_URL: relayUrl
  PUBLISH_CONTAINER: publishContainer
  PUBLISH_BLOB_SERVICE_URI: deployPublish ? publicStorage.outputs.blobEndpoint : ''
  PUBLISH_BASE_URL: publishBaseUrl
  PUBLIC_SECURITY_TAGS: publicSecurityTags
  PUBLISH_RIGHTS: publishRights
  PUBLISH_REQUIRED_STATEMENT: publishRequiredStatement
  PUBLISH_MAX_FILES: string(publishMaxFiles)
  PUBLISH_IDENTIFIER_TYPES: publishIdentifierTypes
  PUBLISH_MAX_BYTES: string(publishMaxBytes)
  PUBLISH_SWEEP_SCHEDULE: publishSweepSchedule
  PUBLISH_SWEEP_MAX_REQUESTS: string(publishSweepMaxRequests)
  SPEECH_ENDPOINT: speech.outputs.endpoint
  TRANSCRIBE_LOCALES: transcribeLocales
  TRANSCRIBE_MAX_BYTES: string(transcribeMaxBytes)
  TRANSCRIBE_CONCURRENCY: string(transcribeConcurrency)
  TRANSCRIPT_SCHEMA: transcriptSchema
  TRANSCRIBE_CONTAINER: transcribeContainer
  DOCINTEL_ENDPOINT: ocrRouted ? docintel.outputs.endpoint : ''
  OCR_REPRESENTATION: ocrRepresentation
  OCR_MAX_PAGES: string(ocrMaxPages)
  OCR_MAX_BYTES: string(ocrMaxBytes)
  OCR_SCHEMA: ocrSchema
  OCR_CONTAINER: ocrContainer
  OPENAI_ENDPOINT: describeRouted ? openai.outputs.endpoint : ''
  OPENAI_API_VERSION: openAiApiVersion
  DESCRIBE_DEPLOYMENT: describeRouted ? openai.outputs.deploymentName : ''
  DESCRIBE_PROMPT: describePrompt
  DESCRIBE_LANGUAGE: describeLanguage
  DESCRIBE_MAX_CHARS: string(describeMaxChars)
  DESCRIBE_MAX_TOKENS: string(describeMaxTokens)
  DESCRIBE_CONTAINER: describeContainer
  DESCRIBE_WRITE: describeWrite
  DESCRIBE_SCHEMA: describeSchema
  CUSTODY_ACCOUNT_URL: deployCustody ? custodyStorage.outputs.blobEndpoint : ''
  CUSTODY_CONTAINER: custodyContainer
  CUSTODY_AUDIT_SCHEDULE: custodyAuditSchedule
  CUSTODY_AUDIT_DAYS: string(custodyAuditDays)
  CUSTODY_AUDIT_MAX_REQUESTS: string(custodyAuditMaxRequests)
  CUSTODY_MAX_BYTES: string(custodyMaxBytes)
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: functionAppName
    planName: 'plan-${prefix}-${token}'
    location: location
    identityId: identity.outputs.id
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    zoneRedundant: zoneRedundant
    appSettings: appSettings
    tags: tags
  }
  // The host needs its roles before it first starts.
  dependsOn: [
    roles
    speech
  ]
}

// The operator console signs in with Entra ID; without an app registration it is not served.
module consoleAuth 'modules/consoleauth.bicep' = {
  name: 'consoleauth'
  params: {
    siteName: functionApp.outputs.name
    clientId: consoleClientId
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    webTestId: availability.outputs.id
    webTestLocations: availability.outputs.locationCount
    namePrefix: '${prefix}-${token}'
    alertEmail: alertEmail
    webhookFailureThreshold: webhookFailureThreshold
    noDeliveryHours: noDeliveryHours
    tags: tags
  }
}

module availability 'modules/availability.bicep' = {
  name: 'availability'
  params: {
    name: 'avail-${prefix}-${token}'
    location: location
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    url: 'https://${functionApp.outputs.defaultHostName}/api/health'
    tags: tags
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs (azd stores them in the environment)
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output consoleUrl string = 'https://${functionApp.outputs.defaultHostName}/api/console/overview'
output webhookUrl string = 'https://${functionApp.outputs.defaultHostName}/api/preservica/webhook'
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output storageAccountName string = storage.outputs.name
output publicIiifUrl string = deployPublish ? (empty(publishBaseUrl) ? publicStorage.outputs.containerUrl : publishBaseUrl) : ''
output custodyAccountName string = deployCustody ? custodyStorage.outputs.name : ''
output speechName string = speech.outputs.name
output applicationInsightsName string = monitoring.outputs.applicationInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.workspaceName
