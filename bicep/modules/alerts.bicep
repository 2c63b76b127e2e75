// Alerts on the telemetry the app emits (names held to the code by tests/test_bicep.py):
//  - a message moved to a poison queue (the Functions host logs "Moving message to queue '<q>-poison'");
//  - 401s or 5xx on the webhook route above a threshold (a wrong secret after a rotation shows as 401s);
//  - optionally, no delivery at all for N hours;
//  - the reconciler found events the webhooks missed (its gap report's warning).
// An action group mails alertEmail; with no address the rules still fire and show in the portal.

@description('Region of the rules (that of Application Insights).')
param location string

@description('Resource ID of the Application Insights component the rules query.')
param applicationInsightsId string

@description('Name prefix of the rules and the action group.')
param namePrefix string

@description('Address the action group mails; empty: no action group.')
param alertEmail string = ''

@description('Failed webhook requests (401 or 5xx) in 15 minutes above which the rule fires.')
@minValue(1)
param webhookFailureThreshold int = 5

@description('Hours without any delivery after which a rule fires; 0 turns the rule off (a log alert looks back 48 h at most).')
@minValue(0)
@maxValue(48)
param noDeliveryHours int = 0

param tags object = {}

var actions = empty(alertEmail) ? [] : [actionGroup.id]

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

resource poison 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
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

resource webhookFailures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
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

resource quiet 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = if (noDeliveryHours > 0) {
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
    windowSize: 'PT${noDeliveryHours}H'
    criteria: {
      allOf: [
        {
          query: 'requests | where name == "intake" | where isnotempty(customDimensions["delivery.id"])'
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

resource missed 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${namePrefix}-webhooks-missed'
  location: location
  tags: tags
  properties: {
    displayName: 'Preservica webhooks: the reconciler found events the webhooks missed'
    description: 'They are queued now. Webhooks are being lost: check the subscriptions (hookops subscriptions), 401s and 503s at the webhook, and recent deployments.'
    severity: 3
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "the webhooks missed"'
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
