"""Pure code, no I/O: the HMAC scheme, the delivery envelope and its rules, routing, settings, cards.
Imports nothing from handlers outside this package."""
