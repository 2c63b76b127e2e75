"""The publish tests' world: the Preservica double's assets, and reading what publish wrote to Azurite.
Its fixtures (isolated, pres, env) are in tests/publish/conftest.py."""
from __future__ import annotations

import json

from azure.storage.blob import BlobServiceClient

from handlers import dispatch
from handlers.core import envelope, messages, settings
from hookops.doubles import speech
from hookops.doubles.deliveries import delivery, encode

USER, PASSWORD, TENANT = "pub-user", "pub-password", "ARCHIVE"
ASSET = "3b1f8a52-5d0c-4c4e-9a49-0c1d2e3f4a5b"
AV = "9c2e6f10-7a1b-4b7c-8d2e-1f2a3b4c5d6e"
RIGHTS = "http://creativecommons.org/licenses/by/4.0/"
# The colours of the fixture ASSET's images (one colour each): which file a thumbnail shows.
SHEET_1, SHEET_2, PRESERVICA_THUMBNAIL = (200, 30, 30), (1, 2, 3), (9, 99, 199)


def colour(image: bytes) -> tuple[int, ...]:
    """The colour at the centre of an image (a one-colour test image: the colour it was made with)."""
    import io

    from PIL import Image
    with Image.open(io.BytesIO(image)) as img:
        return img.convert("RGB").getpixel((img.width // 2, img.height // 2))


def shows(image: bytes, rgb: tuple[int, int, int]) -> bool:
    """Whether an image is (a JPEG of) one of that colour: a made thumbnail shows the file it was made from."""
    return all(abs(a - b) <= 4 for a, b in zip(colour(image), rgb, strict=True))


def make_wav(seconds: float, rate: int = 8000) -> bytes:
    return speech.make_wav(seconds, rate)


def dispatched(ref: str, trigger: str = "FULL_TEXT_INDEXED", action: str = "publish", entity_type: str = "IO") -> bytes:
    """Dispatch a delivery of one event (naming an asset, or `entity_type`) and take the action's message off its queue."""
    from handlers.clients.storage import default
    body = encode(delivery(trigger=trigger, refs=[ref], entity_type=entity_type))
    dispatch.dispatch(messages.intake_message(envelope.delivery_id(body), "2026-11-30T10:00:00Z", body.decode()).encode())
    q = default().queue(settings.action_queue(action))
    [msg] = q.receive_messages(max_messages=32)
    q.delete_message(msg)
    return msg.content


def container(env, name: str = "iiif"):
    return BlobServiceClient.from_connection_string(env.connection_string).get_container_client(name)


def blobs(env, prefix: str = "") -> dict[str, bytes]:
    c = container(env)
    if not c.exists():
        return {}
    return {b.name: c.download_blob(b.name).readall() for b in c.list_blobs(name_starts_with=prefix)}


def base(env) -> str:
    return container(env).url.rstrip("/")


def load_manifest(env, ref: str):
    from iiif_prezi3 import Manifest
    raw = blobs(env, f"{ref}/")[f"{ref}/manifest.json"]
    return raw, Manifest(**json.loads(raw))


def activities(env) -> list[dict]:
    """Every activity, oldest first, walking the stream from the collection's last page back by `prev`."""
    got = blobs(env, "activity/")
    if not got:
        return []
    prefix = base(env) + "/"
    url = json.loads(got["activity/collection.json"])["last"]["id"]
    pages = []
    while url:
        page = json.loads(got[url.removeprefix(prefix)])
        pages.insert(0, page)
        url = page.get("prev", {}).get("id")
    return [item for page in pages for item in page["orderedItems"]]


def write_transcript(env, pres, ref: str, vtt: bytes, rep_type: str, index: int = 0) -> None:
    """`<ref>.vtt` as `transcribe` leaves it: with the metadata naming the file it was made from."""
    from handlers.core import transcript
    co_ref, fixity = pres.source_of(ref, rep_type, index)
    store = BlobServiceClient.from_connection_string(env.connection_string)
    if not store.get_container_client("transcripts").exists():
        store.create_container("transcripts")
    store.get_blob_client("transcripts", f"{ref}.vtt").upload_blob(
        vtt, overwrite=True, metadata=transcript.source_metadata(rep_type, co_ref, fixity))
