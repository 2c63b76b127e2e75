"""The platform: Azure Storage, Key Vault, identity, HTTP, Preservica and the journal store.
Each client is process-wide, built on first use (shared.Shared). Imports only from handlers.core."""
