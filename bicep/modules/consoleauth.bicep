// Built-in authentication (Easy Auth) with Microsoft Entra ID for the operator console
// (/api/console/...). Preservica's webhook and the availability test's health probe are excluded,
// so neither is ever asked to sign in. The app itself refuses the console unless the platform
// reports WEBSITE_AUTH_ENABLED=True, and reads the app roles Console.Reader / Console.Operator
// from the X-MS-CLIENT-PRINCIPAL header the platform writes (README "Operator console").

@description('Name of the function app (already created).')
param siteName string

@description('Application (client) ID of the Entra ID app registration of the console. Empty: built-in authentication is off, and the app does not serve the console.')
param clientId string

@description('Directory (tenant) ID the users sign in with.')
param tenantId string = tenant().tenantId

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

// Sign-in with Entra ID; the webhook and the health probe excluded.
var signIn = {
  platform: {
    enabled: true
  }
  globalValidation: {
    requireAuthentication: true
    unauthenticatedClientAction: 'RedirectToLoginPage'
    redirectToProvider: 'azureactivedirectory'
    // Paths with no sign-in at all: HMAC-signed deliveries, and the anonymous health probe.
    excludedPaths: [
      '/api/preservica/webhook'
      '/api/health'
    ]
  }
  httpSettings: {
    requireHttps: true
    routes: {
      apiPrefix: '/.auth'
    }
    forwardProxy: {
      convention: 'NoProxy'
    }
  }
  identityProviders: {
    azureActiveDirectory: {
      enabled: true
      registration: {
        clientId: clientId
        // No client secret: sign-in uses the ID token (the registration enables ID tokens);
        // there is no secret to store, rotate or leak.
        openIdIssuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
      }
      validation: {
        allowedAudiences: [
          clientId
          'api://${clientId}'
        ]
      }
    }
  }
  login: {
    tokenStore: {
      enabled: false
    }
    preserveUrlFragmentsForLogins: false
  }
}

// Always deployed: with no client id it switches built-in authentication off, so clearing consoleClientId
// removes a sign-in configured before (a resource left out of a deployment would stay as it was).
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13:This resource is the App Service Authentication (authsettingsV2, Entra ID, requireAuthentication); checkov reads it as a site.
  // checkov:skip=CKV_AZURE_56:Sign-in is on (signIn: requireAuthentication, Entra ID) whenever a console is configured (consoleClientId); without one it is off on purpose and the app refuses the console, serving only the HMAC-signed webhook and the anonymous health probe. checkov cannot read the conditional.
  // checkov:skip=CKV_AZURE_222:checkov applies its Microsoft.Web/sites checks to this sites/config child, which has no such property; the site is checked in functionapp.bicep.
  // checkov:skip=CKV_AZURE_66:checkov applies its Microsoft.Web/sites checks to this sites/config child, which has no such property; the site is checked in functionapp.bicep.
  // checkov:skip=CKV_AZURE_63:checkov applies its Microsoft.Web/sites checks to this sites/config child, which has no such property; the site is checked in functionapp.bicep.
  // checkov:skip=CKV_AZURE_65:checkov applies its Microsoft.Web/sites checks to this sites/config child, which has no such property; the site is checked in functionapp.bicep.
  // checkov:skip=CKV_AZURE_80:checkov applies its Microsoft.Web/sites checks to this sites/config child, which has no such property; the site is checked in functionapp.bicep.
  // checkov:skip=CKV_AZURE_88:checkov applies its Microsoft.Web/sites checks to this sites/config child, which has no such property; the site is checked in functionapp.bicep.
  parent: site
  name: 'authsettingsV2'
  properties: empty(clientId) ? {
    platform: {
      enabled: false
    }
  } : signIn
}
