// An Application Insights standard availability test of the app's health endpoint (GET /api/health):
// it says whether the app can reach its storage and read its webhook secret, from three regions.

@description('Name of the availability test.')
param name string

@description('Region of the test resource (that of Application Insights).')
param location string

@description('Resource ID of the Application Insights component the results go to.')
param applicationInsightsId string

@description('The URL to probe, e.g. https://<app>.azurewebsites.net/api/health.')
param url string

@description('Seconds between probes from each location (300, 600 or 900).')
@allowed([
  300
  600
  900
])
param frequencySeconds int = 300

param tags object = {}

var locations = [
  { Id: 'emea-nl-ams-azr' } // West Europe
  { Id: 'us-va-ash-azr' } // East US
  { Id: 'apac-sg-sin-azr' } // Southeast Asia
]

resource webTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: name
  location: location
  kind: 'standard'
  // The hidden-link tag is how the portal lists the test under its Application Insights resource.
  tags: union(tags, {
    'hidden-link:${applicationInsightsId}': 'Resource'
  })
  properties: {
    SyntheticMonitorId: name
    Name: name
    Enabled: true
    Kind: 'standard'
    Frequency: frequencySeconds
    Timeout: 30
    RetryEnabled: true
    Locations: locations
    Request: {
      RequestUrl: url
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

output id string = webTest.id
output locationCount int = length(locations)
