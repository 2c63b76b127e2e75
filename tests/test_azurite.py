"""Two test runs on one machine each get their own Azurite: a port another process took after it was
chosen is never mistaken for ours."""
from __future__ import annotations

import pytest

from hookops import azurite as az


def test_ports_another_azurite_listens_on_are_refused_not_shared(azurite, tmp_path):
    intruder = az.Azurite(tmp_path / "second", azurite.ports)
    with pytest.raises(RuntimeError):
        intruder.start()
    assert intruder.proc is None
    assert az.listening_ports(azurite.proc.pid) >= set(azurite.ports)   # the first one is untouched


def test_a_fresh_azurite_listens_on_the_ports_it_names(tmp_path):
    with az.start_on_free_ports(tmp_path) as store:
        assert az.listening_ports(store.proc.pid) >= set(store.ports)
