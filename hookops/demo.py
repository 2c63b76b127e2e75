"""`hookops doubles`: a local Preservica, Azure AI Speech, Document Intelligence and Azure OpenAI (the test
doubles) seeded with a small demo collection, for trying the actions with `make run` and no cloud account.

    .venv/bin/hookops doubles --write     # terminal 1: doubles up, settings into local.settings.json
    make run                              # terminal 2 (started after: it reads the settings at start)
    .venv/bin/hookops send-test-event --trigger FULL_TEXT_INDEXED --ref <the AV asset> --ref <the image asset>
    .venv/bin/hookops events              # ... transcribe:done, ocr:done, publish:done; then describe:done
                                          # (the draft is on the console's Drafts page)

`describe` waits for `ocr` on the same event (its `after`, docs/actions.md), so it is done about half a minute
after `ocr`: its first look finds the OCR text not yet there and puts the event back for 30 s.
The Document Intelligence double reads every page as DEMO_PAGE; the chat double answers DEMO_DRAFT whatever
it is sent (a double, not a model). Accepting the draft in the console queues `publish`, which puts it in
the manifest's summary.

The HTTPS doubles share one throw-away CA. The app trusts it through REQUESTS_CA_BUNDLE (read by `requests`,
the Speech and Document Intelligence clients' transport) and SSL_CERT_FILE (read by httpx, the `openai`
client's): a bundle written to `.doubles/ca-bundle.pem` holding the usual public CAs (certifi's) plus that
one CA, so every other HTTPS peer still verifies as before. The doubles' keys are random per run and are
written only into the local settings file (keys are for local runs only: in Azure the app's identity).
Registered on the `hookops` group (hookops/cli.py).
"""
from __future__ import annotations

import json
import secrets
import signal
import threading
from pathlib import Path

import click

from hookops import localsettings

AV_ASSET = "d0d0a001-5eed-4a11-9a7e-000000000001"      # an oral history: a WAV in the access representation
IMAGE_ASSET = "d0d0a001-5eed-4a11-9a7e-000000000002"   # a map: PNG access copy and thumbnail, TIFF master
CLOSED_ASSET = "d0d0a001-5eed-4a11-9a7e-000000000003"  # a closed file: security tag "closed"
FOLDER = "d0d0a001-5eed-4a11-9a7e-0000000000f0"
ROUTES = ("FULL_TEXT_INDEXED=journal,thumbnail,transcribe,ocr,describe,publish,custody;"
          "MOVED=journal,custody;CHANGED_SECURITY_DESCRIPTOR=journal,publish,ocr,transcribe,custody;"
          "CHANGE_ASSET_VISIBILITY=journal,publish,ocr,transcribe;*=journal")
DEPLOYMENT = "demo-describer"
DEMO_PAGE = ["HARBOUR OF ST. AUBIN", "Surveyed for the Harbour Board, 1887", "Scale: one inch to two hundred feet"]
DEMO_DRAFT = ("A survey plan of the harbour of St Aubin, made for the Harbour Board in 1887 at a scale of one inch "
              "to two hundred feet.")
PHRASES = [(0, 1800, "This is the harbour master, recorded in nineteen fifty-two."),
           (1900, 1500, "The ships came in at dawn.")]


class Demo:
    """The doubles, seeded; `settings` are what the app needs to use them."""

    def __init__(self, ca_dir: Path):
        import trustme

        from hookops.doubles.chat import ChatDouble
        from hookops.doubles.docintel import DocIntelDouble
        from hookops.doubles.preservica import PreservicaDouble
        from hookops.doubles.speech import SpeechDouble
        self.ca_dir = Path(ca_dir)
        self.password, self.key = secrets.token_urlsafe(12), secrets.token_urlsafe(24)
        self.docintel_key, self.openai_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.preservica = PreservicaDouble(username="demo", password=self.password, tenant="DEMO")
        ca = trustme.CA()   # one CA for the HTTPS doubles: one certificate in the bundle
        self.speech = SpeechDouble(key=self.key, ca=ca)
        self.docintel = DocIntelDouble(key=self.docintel_key, ca=ca)
        self.chat = ChatDouble(key=self.openai_key, ca=ca)

    def start(self) -> Demo:
        from hookops.doubles.preservica import make_png
        from hookops.doubles.speech import make_wav
        self.preservica.start()
        self.speech.start()
        self.docintel.start()
        self.chat.start()
        p = self.preservica
        p.add_folder(FOLDER, "Demo collection")
        p.add_asset(AV_ASSET, "Oral history: the harbour master, 1952", parent=FOLDER,
                    bitstreams=[("harbour-master.wav", make_wav(3.5), "Access")])
        p.add_asset(IMAGE_ASSET, "Harbour map, 1887", parent=FOLDER, thumbnail=make_png(8, 8, (30, 90, 160)),
                    bitstreams=[("map.tif", 4096), ("map.png", make_png(8, 8, (30, 90, 160)), "Access")])
        p.add_asset(CLOSED_ASSET, "Personnel file (closed)", parent=FOLDER, security_tag="closed",
                    bitstreams=[("file.pdf", 2048)])
        self.speech.set_phrases(PHRASES)
        self.docintel.set_pages([DEMO_PAGE])
        self.chat.answer = DEMO_DRAFT
        self.ca_dir.mkdir(parents=True, exist_ok=True)
        self.ca_bundle.write_bytes(_public_cas() + b"\n" + self.speech.ca_pem)
        return self

    def stop(self) -> None:
        self.chat.stop()
        self.docintel.stop()
        self.speech.stop()
        self.preservica.stop()

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def ca_bundle(self) -> Path:
        return self.ca_dir / "ca-bundle.pem"

    @property
    def settings(self) -> dict[str, str]:
        return {"PRESERVICA_SERVER": self.preservica.server, "PRESERVICA_USERNAME": "demo",
                "PRESERVICA_PASSWORD": self.password, "PRESERVICA_TENANT": "DEMO", "PRESERVICA_PROTOCOL": "http",
                "SPEECH_ENDPOINT": self.speech.endpoint, "SPEECH_KEY": self.key, "PRESERVICA_ROUTES": ROUTES,
                "DOCINTEL_ENDPOINT": self.docintel.endpoint, "DOCINTEL_KEY": self.docintel_key,
                "OPENAI_ENDPOINT": self.chat.endpoint, "OPENAI_KEY": self.openai_key, "DESCRIBE_DEPLOYMENT": DEPLOYMENT,
                "REQUESTS_CA_BUNDLE": str(self.ca_bundle), "SSL_CERT_FILE": str(self.ca_bundle),
                "NO_PROXY": "127.0.0.1,localhost"}


def _public_cas() -> bytes:
    import certifi
    return Path(certifi.where()).read_bytes()


def write_settings(values: dict[str, str], path: Path) -> None:
    """Merge `values` into local.settings.json's Values (created from the example if missing)."""
    localsettings.ensure(path)
    doc = json.loads(path.read_text())
    doc.setdefault("Values", {}).update(values)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    path.chmod(0o600)  # it holds secrets


@click.command("doubles")
@click.option("--write", is_flag=True, help="Also write the settings into local.settings.json.")
@click.option("--settings-file", type=click.Path(dir_okay=False, path_type=Path), default=localsettings.PATH,
              show_default=True, help="The local.settings.json --write merges into.")
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), default=localsettings.ROOT / ".doubles",
              show_default=True, help="Where the CA bundle the app must trust is written.")
def doubles(write, settings_file, ca_dir):
    """Run a local Preservica, Azure AI Speech, Document Intelligence and Azure OpenAI (the test doubles) with
    a demo collection until Ctrl-C, and print the settings that point the app at them."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Demo(ca_dir) as demo:
        values = demo.settings
        click.echo("Settings for local.settings.json (Values); `make run` must start after they are in place:")
        click.echo(json.dumps(values, indent=2))
        if write:
            write_settings(values, settings_file)
            click.echo(f"Written to {settings_file}.")
        click.echo(f"\nAV asset (transcribe):        {AV_ASSET}\nImage asset (thumbnail, ocr): {IMAGE_ASSET}\n"
                   f"Closed asset:                 {CLOSED_ASSET}\nFolder:                       {FOLDER}\n"
                   f"\nTry: .venv/bin/hookops send-test-event --trigger FULL_TEXT_INDEXED --ref {AV_ASSET} "
                   f"--ref {IMAGE_ASSET}\n     .venv/bin/hookops events\n"
                   f"     describe:done about 30 s after ocr:done (it waits for ocr),\n"
                   f"     then the console's Drafts page to review the draft\n\nDoubles running; Ctrl-C stops them.")
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    click.echo("Doubles stopped.")
