"""A fresh pyPreservica client per test, as in a new process."""
from contextlib import contextmanager

from handlers.clients import preservica


@contextmanager
def fresh_client(tmp_path, monkeypatch, unset: tuple[str, ...] = ()):
    """No credentials.properties (pyPreservica reads one from the working directory), no proxy, `unset`
    settings unset, and the app's Preservica client forgotten before and after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    preservica.forget_client()
    try:
        yield
    finally:
        preservica.forget_client()


def point_at(monkeypatch, double, username: str, password: str, tenant: str, **more: str) -> None:
    """The app's Preservica settings for a local PreservicaDouble (plain HTTP), and `more` settings besides."""
    for name, value in {"PRESERVICA_SERVER": double.server, "PRESERVICA_USERNAME": username,
                        "PRESERVICA_PASSWORD": password, "PRESERVICA_TENANT": tenant, "PRESERVICA_PROTOCOL": "http",
                        **more}.items():
        monkeypatch.setenv(name, value)
