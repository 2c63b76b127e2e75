"""A large media file is streamed, never held whole: Preservica -> temporary file -> Speech.
bench/transcribe_memory.py runs the same measurement at 500 MB (docs/actions.md, "The transcribe action")."""
from __future__ import annotations

from bench.transcribe_memory import measure

SIZE = 64 * 1024 * 1024
BOUND = 16 * 1024 * 1024   # holding the file once would be 64 MiB; requests' own multipart would be 128


def test_peak_memory_stays_far_below_the_file_size(app_env):
    result = measure(SIZE, app_env.connection_string)
    assert result["state"] == "done"
    assert result["audio_size"] == SIZE and result["same_bytes"]   # every byte reached Speech, in order
    assert result["peak"] < BOUND, f"peak {result['peak'] / 2**20:.1f} MiB for a {SIZE / 2**20:.0f} MiB file"
