// Alerts on the telemetry the app emits (tests/test_telemetry_export.py runs each query on what the
// Azure Monitor exporter makes of the app's spans and logs):
//  - a message moved to a poison queue (the Functions host logs "Moving message to queue '<q>-poison'");
//  - 401s or 5xx on the webhook route above a threshold (a wrong secret after a rotation shows as 401s);
//  - optionally, no accepted delivery at all for N hours;
//  - the app's alert signals (handlers/clients/telemetry.py SIGNALS, sent as custom events, never sampled):
//    the reconciler found events the webhooks missed, the reconciler stalled, the public sweep withdrew;
//  - the availability test of /api/health failing from two or more locations.
// An action group mails alertEmail; with no address the rules still fire and show in the portal.
// Log alerts use Microsoft.Insights/scheduledQueryRules 2023-12-01 (GA).

@description('Region of the rules (that of Application Insights).')
param location string

@description('Resource ID of the Application Insights component the rules query.')
param applicationInsightsId string

@description('Resource ID of the availability test (availability.bicep) the availability alert watches.')
param webTestId string

@description('Locations the availability test probes from; the alert fires when the test fails in two of them (all, if fewer).')
@minValue(1)
param webTestLocations int = 3

@description('Name prefix of the rules and the action group.')
param namePrefix string

@description('Address the action group mails; empty: no action group.')
param alertEmail string = ''

@description('Failed webhook requests (401 or 5xx) in 15 minutes above which the rule fires.')
@minValue(1)
param webhookFailureThreshold int = 5

// A log alert's window must be one of 5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440 or 2880 minutes
// (the service's own error text, quoted in Azure/azure-rest-api-specs#21258), so only these hours are admitted.
@description('Hours without any accepted delivery after which a rule fires: 1-6, 24 or 48; 0 turns the rule off.')
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

param tags object = {}

var actions = empty(alertEmail) ? [] : [actionGroup.id]

// The window of each admitted noDeliveryHours, written as that issue lists the accepted values.
var noDeliveryWindows = {
  '0': 'PT1H'
  '1': 'PT1H'
  '2': 'PT2H'
  '3': 'PT3H'
  '4': 'PT4H'
  '5': 'PT5H'
  '6': 'PT6H'
  '24': 'P1D'
  '48': 'P2D'
}

// One rule per alert signal; `signal` is a key of SIGNALS in handlers/clients/telemetry.py and the custom
// event's name is 'ALERT <signal>' (telemetry.alert_event). `rule` names the resource: reconcile-missed keeps
// the name its rule had before the signals, so a redeployment updates that rule instead of adding a second.
var signalRules = [
  {
    signal: 'reconcile-missed'
    rule: 'webhooks-missed'
    severity: 3
    displayName: 'Preservica webhooks: the reconciler found events the webhooks missed'
    description: 'They are queued now. Webhooks are being lost: check the subscriptions (hookops subscriptions), 401s and 503s at the webhook, and recent deployments.'
  }
  {
    signal: 'reconcile-stalled'
    rule: 'reconcile-stalled'
    severity: 2
    displayName: 'Preservica webhooks: the reconciler ended incomplete several runs in a row'
    description: 'Events the webhooks missed are not being found: read the reconciler\'s gap report in the console, check Preservica (hookops eventlog-types) and raise RECONCILE_MAX_REQUESTS if each run runs out of requests.'
  }
  {
    signal: 'sweep-withdrew'
    rule: 'sweep-withdrew'
    severity: 1
    displayName: 'Preservica webhooks: the public sweep withdrew assets that should not have been public'
    description: 'Something was public that Preservica says is closed, hidden or deleted, and is withdrawn now: read the sweep report in the console, and find why the webhook and the reconciler did not withdraw it.'
  }
  {
    signal: 'custody-audit'
    rule: 'custody-audit'
    severity: 1
    displayName: 'Preservica webhooks: the custody audit found a copy that does not match its inventory, or is missing'
    description: 'A file of the archive\'s independent OCFL copy changed or went missing: read the audit report, run hookops custody verify on the asset, and re-run custody for it (it copies again from Preservica after checking fixity).'
  }
  {
    signal: 'closed-text-kept'
    rule: 'closed-text-kept'
    severity: 2
    displayName: 'Preservica webhooks: a fragment a person edited may hold a closed file\'s text on an open asset'
    description: 'ocr or transcribe would have taken the text of a file that is not public out of the asset\'s fragment, but a person edited that fragment since the app wrote it, so it was left as the archive\'s own record: check it in Preservica (the message names the asset and the schema).'
  }
  {
    signal: 'routes-unsafe'
    rule: 'routes-unsafe'
    severity: 1
    displayName: 'Preservica webhooks: PRESERVICA_ROUTES run publish, ocr or transcribe without the triggers that change access'
    description: 'Without publish, an asset Preservica closes or hides that way stays public until the daily sweep; without ocr or transcribe, a closed file\'s text stays in the fragment of an asset opened that way: route them for CHANGED_SECURITY_DESCRIPTOR and CHANGE_ASSET_VISIBILITY too (the alert\'s message names what is missing; hookops settings --check says the same).'
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: 'ag-${namePrefix}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'preservica'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource poison 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-poison'
  location: location
  tags: tags
  properties: {
    displayName: 'Preservica webhooks: a message went to a poison queue'
    description: 'Every attempt failed; run hookops poison list, fix the cause, then hookops poison replay (within 7 days).'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "Moving message to queue" and message has "-poison"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actions
    }
  }
}

resource webhookFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${namePrefix}-webhook-failures'
  location: location
  tags: tags
  properties: {
    displayName: 'Preservica webhooks: deliveries refused (401) or failing (5xx)'
    description: '401s: the webhook secret in Key Vault and the one Preservica signs with differ (a rotation?). 5xx/503: storage or Key Vault unreachable; Preservica retries.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | where name == "intake" | where toint(resultCode) == 401 or toint(resultCode) >= 500'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: webhookFailureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actions
    }
  }
}

resource quiet 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (noDeliveryHours > 0) {
  name: 'alert-${namePrefix}-no-delivery'
  location: location
  tags: tags
  properties: {
    displayName: 'Preservica webhooks: no delivery for ${noDeliveryHours} hours'
    description: 'Preservica sent nothing: check the subscriptions (hookops subscriptions) and the webhook URL.'
    severity: 3
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: noDeliveryWindows[string(noDeliveryHours)]
    criteria: {
      allOf: [
        {
          query: 'requests | where name == "intake" | where toint(resultCode) == 200 and isnotempty(customDimensions["delivery.id"])'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actions
    }
  }
}

resource signals 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in signalRules: {
  name: 'alert-${namePrefix}-${rule.rule}'
  location: location
  tags: tags
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    // Every 15 minutes over the last hour: a record ingested late is still seen; the alert is stateful
    // (autoMitigate, the default), so one signal notifies once.
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: 'customEvents | where name == "ALERT ${rule.signal}"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actions
    }
  }
}]

// The availability test (availability.bicep) failing: Microsoft's pattern for a standard test, a metric
// alert with WebtestLocationAvailabilityCriteria scoped to the test and the component ("Create and run a
// standard test", learn.microsoft.com azure-monitor/app/availability; resource-manager-alerts-metric,
// "Availability test with metric alert").
resource availability 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${namePrefix}-availability'
  location: 'global'
  tags: union(tags, {
    'hidden-link:${applicationInsightsId}': 'Resource'
    'hidden-link:${webTestId}': 'Resource'
  })
  properties: {
    description: '/api/health failed from two or more locations: the app cannot reach its storage or read its webhook secret, or is down. Its traces say which (message startswith "health:").'
    severity: 1
    enabled: true
    scopes: [
      webTestId
      applicationInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: webTestId
      componentId: applicationInsightsId
      failedLocationCount: min(2, webTestLocations)
    }
    actions: [for id in actions: {
      actionGroupId: id
    }]
  }
}
