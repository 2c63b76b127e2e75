"""Pure code, no I/O: the HMAC scheme, the delivery envelope and its rules, routing, settings.
Imports nothing from handlers outside this package."""
