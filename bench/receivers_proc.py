"""The Teams, catalogue and relay doubles (hookops.doubles.receivers) in their own process, so that
their work (the relay receiver verifies every signature twice, with svix and on its own) does not
share the app's GIL.

    python -m bench.receivers_proc --assets 1000

The catalogue has a record for catalogue_id(i) of every asset i, in namespace SCHEMA. It prints the
settings that point the app at them ({"ready": true, "settings": {...}}). Commands (JSON lines on
stdin): {"cmd": "stats"}: cards, catalogue requests, relay deliveries and signature disagreements so
far. Exits when stdin closes.
"""
from __future__ import annotations

import argparse
import contextlib

from bench.common import catalogue_id, serve_commands
from hookops.doubles.receivers import CatalogueDouble, RelayReceiver, TeamsDouble

SCHEMA = "urn:example:bench-catalogue"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--assets", type=int, required=True)
    a = p.parse_args()
    with contextlib.ExitStack() as stack:
        teams = stack.enter_context(TeamsDouble())
        catalogue = stack.enter_context(CatalogueDouble())
        relay = stack.enter_context(RelayReceiver())
        for i in range(a.assets):
            catalogue.add_record(catalogue_id(i), f"<record xmlns='{SCHEMA}'><id>{i}</id></record>")

        def stats() -> dict:
            return {"teams_cards": len(teams.cards), "teams_requests": len(teams.received),
                    "catalogue_requests": len(catalogue.received), "relay_deliveries": len(relay.deliveries),
                    "relay_requests": len(relay.received), "relay_disagreements": len(relay.disagreements)}

        serve_commands({"stats": stats}, {"settings": {
            "TEAMS_WEBHOOK_URL": teams.url, "CATALOGUE_URL_TEMPLATE": catalogue.url_template,
            "CATALOGUE_SCHEMA": SCHEMA, "RELAY_URL": relay.url, "RELAY_SECRET": relay.secret}})


if __name__ == "__main__":
    main()
