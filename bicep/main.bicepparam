// The one parameter file, for both `azd up` and `az deployment group create` (README "Deploy to
// Azure"). It is a .bicepparam rather than main.parameters.json because azd prefers main.bicepparam
// when both exist, and because ${VAR} substitution in a JSON file happens only under azd: `az`
// would deploy the literal text. readEnvironmentVariable works for both: azd sets the variables of
// the selected azd environment (.azure/<name>/.env, `azd env set`), `az` reads the shell's.
//
// Secrets use the same names as the local settings, so they never appear in this file or on the
// command line. They are written only with WRITE_SECRETS=true (first deployment: with
// PRESERVICA_WEBHOOK_SECRET set); an unset variable leaves that Key Vault secret as it is.
using './main.bicep'

// Resource names and the azd-env-name tag follow the azd environment name; without azd, export
// AZURE_ENV_NAME or keep the default.
param baseName = readEnvironmentVariable('AZURE_ENV_NAME', 'preservica-hooks')

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

// The operator console's Entra ID app registration (README "Operator console"); empty: no console.
param consoleClientId = ''

// Key Vault after a tear-down (README "Tear down"): a new salt gives the vault a new name, or
// KEY_VAULT_RECOVER=true brings the deleted vault back (for one deployment). Per azd
// environment: azd env set KEY_VAULT_NAME_SALT 2
param keyVaultNameSalt = readEnvironmentVariable('KEY_VAULT_NAME_SALT', '')
param keyVaultRecover = bool(readEnvironmentVariable('KEY_VAULT_RECOVER', 'false'))
// Speech keeps a deleted account's name for 48 hours: a new salt, or purge it (README "Tear down").
param speechNameSalt = readEnvironmentVariable('SPEECH_NAME_SALT', '')

// The public IIIF account of the publish action; false where policy denies anonymous blob access
// (README "Deploy to Azure": the policy exemption). azd env set DEPLOY_PUBLISH false
param deployPublish = bool(readEnvironmentVariable('DEPLOY_PUBLISH', 'true'))

// The custody account (docs/deploy.md "The custody account"): WORM, geo-redundant. Its custom write role
// needs a deployer who may create role definitions; azd env set DEPLOY_CUSTODY false to leave it out.
// Locking its immutability policy is irreversible: once the account exists and before custody is routed, then
// keep it true.
param deployCustody = bool(readEnvironmentVariable('DEPLOY_CUSTODY', 'true'))
param custodyImmutabilityLocked = bool(readEnvironmentVariable('CUSTODY_IMMUTABILITY_LOCKED', 'false'))

// Scale. Always-ready HTTP instances spare Preservica's first requests a cold start and are billed
// while idle (README); per azd environment: azd env set ALWAYS_READY_HTTP_INSTANCES 0
param instanceMemoryMB = 2048
param maximumInstanceCount = 100
param alwaysReadyHttpInstances = int(readEnvironmentVariable('ALWAYS_READY_HTTP_INSTANCES', '1'))

// Secrets -> Key Vault, only when WRITE_SECRETS is true (the first deployment, or a deliberate
// overwrite): otherwise the vault keeps what it has, and a secret rotated there is never reverted by
// the values azd keeps in its environment. Once: WRITE_SECRETS=true azd provision (or az deployment ...).
param writeSecrets = bool(readEnvironmentVariable('WRITE_SECRETS', 'false'))
param webhookSecret = readEnvironmentVariable('PRESERVICA_WEBHOOK_SECRET', '')
param preservicaPassword = readEnvironmentVariable('PRESERVICA_PASSWORD', '')
param teamsWebhookUrl = readEnvironmentVariable('TEAMS_WEBHOOK_URL', '')
param relaySecret = readEnvironmentVariable('RELAY_SECRET', '')

// Alerts (README "Alerts"): who is mailed, and the optional "no delivery for N hours" rule.
param alertEmail = readEnvironmentVariable('ALERT_EMAIL', '')
param noDeliveryHours = int(readEnvironmentVariable('NO_DELIVERY_ALERT_HOURS', '0'))
