"""The transcribe tests' world: the recording and image in the Preservica double, the Speech double's phrases,
and the one action message a test runs. Its fixtures (speech, pres, env) are in tests/transcribe/conftest.py."""
from __future__ import annotations

from hookops.doubles.speech import make_wav
from tests.support.jobs import dispatched

USER, PASSWORD, TENANT = "hook-user", "pres-password", "ARCHIVE"
KEY = "speech-key-value-0123456789abcdef"
AV, IMAGE, FOLDER = ("0d9d4a4e-0000-4000-8000-00000000a001", "0d9d4a4e-0000-4000-8000-00000000a002",
                     "0d9d4a4e-0000-4000-8000-00000000a004")
SCHEMA = "urn:example:transcript"
WAV = make_wav(0.75)
TRICKY = [(0, 1500, "Recorded 1952 --> the harbour"), (1600, 900, "<b>Mr Jones</b> & <script>x</script>"),
          (2600, 400, "line one\n\nline two\x07")]


def job_for(ref: str, entity_type: str = "IO", trigger: str = "FULL_TEXT_INDEXED") -> bytes:
    """Dispatch a delivery routed to transcribe; the one action message, as the queue function gets it."""
    return dispatched("transcribe", ref, entity_type, trigger)
