"""A local Preservica that the real pyPreservica clients (EntityAPI, WebHooksAPI) talk to unchanged.

Paths, XML namespaces and response shapes follow what pyPreservica 4.2 parses (common.py,
entityAPI.py, webHooksAPI.py): every later hop (representations -> content objects ->
generations -> bitstreams, metadata fragments) is an absolute URL taken from the previous
response, exactly as the SDK follows it.

    with PreservicaDouble(username="u", password="p", tenant="T") as pres:
        pres.add_asset("io-1", "Title", thumbnail=make_png(), bitstreams=[("a.tif", 1234)])
        client = EntityAPI(username="u", password="p", tenant="T", server=pres.server, protocol="http")
"""
from .double import PreservicaDouble
from .model import bitstream_bytes, make_png

__all__ = ["PreservicaDouble", "bitstream_bytes", "make_png"]
