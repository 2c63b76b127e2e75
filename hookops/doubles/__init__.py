"""Local stand-ins for the services the app talks to, for the tests, the benchmarks and a developer
trying the app by hand: `preservica` (the REST API pyPreservica calls, webhooks included),
`receivers` (Teams, a catalogue, a Standard Webhooks relay receiver), both on `base.HttpDouble`;
`keyvault` (Key Vault secrets and the managed-identity endpoint), and `deliveries` (Preservica-shaped
webhook bodies). Operator tooling: .funcignore keeps hookops/ out of the deployed package."""
