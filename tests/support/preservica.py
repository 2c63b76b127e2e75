"""A fresh pyPreservica client per test, as in a new process, and the app pointed at the Preservica double."""
from contextlib import contextmanager

from handlers.clients import preservica
from hookops.doubles.preservica import PreservicaDouble


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


@contextmanager
def archive(login: tuple[str, str, str], folder: str, title: str):
    """A PreservicaDouble that `login` (user, password, tenant) signs in to, holding the folder `title`."""
    user, password, tenant = login
    with PreservicaDouble(username=user, password=password, tenant=tenant) as double:
        double.add_folder(folder, title)
        yield double


@contextmanager
def action_env(monkeypatch, tmp_path, double, login: tuple[str, str, str], action, unset: tuple[str, ...] = (),
               **settings: str):
    """What an action's tests run in: the app pointed at the Preservica double (`login`: user, password, tenant)
    and `settings` besides (a service double's), a fresh client (`unset` settings unset), and the action
    module's waits recorded instead of slept. Yields the seconds it would have slept."""
    point_at(monkeypatch, double, *login, **settings)
    with fresh_client(tmp_path, monkeypatch, unset=unset):
        slept: list[float] = []
        monkeypatch.setattr(action, "_sleep", slept.append)
        yield slept
