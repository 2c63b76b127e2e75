// Parameters for `az deployment group create` (README "Deploy to Azure"). azd uses main.parameters.json.
// Secrets are read from environment variables with the same names as the local settings, so
// they never appear in this file or on the command line. An unset variable leaves that Key Vault
// secret as it is (first deployment: PRESERVICA_WEBHOOK_SECRET must be set).
using './main.bicep'

param baseName = 'preservica-hooks'

// Preservica connection (actions and `hookops subscribe`).
param preservicaServer = readEnvironmentVariable('PRESERVICA_SERVER', '')
param preservicaUsername = readEnvironmentVariable('PRESERVICA_USERNAME', '')
param preservicaTenant = readEnvironmentVariable('PRESERVICA_TENANT', '')

// Which actions run for which trigger; actions without their settings are skipped, not failed.
param preservicaRoutes = '*=journal'

// Optional action settings (empty = not used).
param assetUrlTemplate = ''
param catalogueUrlTemplate = ''
param catalogueSchema = ''
param relayUrl = ''

// Scale.
param instanceMemoryMB = 2048
param maximumInstanceCount = 100

// Secrets -> Key Vault.
param webhookSecret = readEnvironmentVariable('PRESERVICA_WEBHOOK_SECRET', '')
param preservicaPassword = readEnvironmentVariable('PRESERVICA_PASSWORD', '')
param teamsWebhookUrl = readEnvironmentVariable('TEAMS_WEBHOOK_URL', '')
param relaySecret = readEnvironmentVariable('RELAY_SECRET', '')
