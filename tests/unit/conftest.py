"""Tests of pure code: no Azurite, no server, no subprocess; `make test-unit` runs them in seconds.
A fixture that starts anything belongs in tests/conftest.py, and its tests outside this folder."""
