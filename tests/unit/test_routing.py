import pytest

from handlers.core import routing

KNOWN = ("journal", "thumbnail", "teams", "catalogue", "relay")


def test_default_routes_everything_to_journal():
    r = routing.parse(None, KNOWN)
    assert r.actions_for("FULL_TEXT_INDEXED") == ("journal",)
    assert r.actions_for("SOMETHING_NEW") == ("journal",)


def test_trigger_entry_wins_over_wildcard():
    r = routing.parse("FULL_TEXT_INDEXED=journal,thumbnail,teams;INGEST_FAILED=journal,teams;*=journal", KNOWN)
    assert r.actions_for("FULL_TEXT_INDEXED") == ("journal", "thumbnail", "teams")
    assert r.actions_for("full_text_indexed") == ("journal", "thumbnail", "teams")
    assert r.actions_for("MOVED") == ("journal",)
    assert r.all_actions() == ("journal", "thumbnail", "teams")


def test_no_wildcard_means_no_actions_for_other_triggers():
    assert routing.parse("MOVED=journal", KNOWN).actions_for("INGEST_FAILED") == ()


def test_whitespace_duplicates_and_trailing_separator_tolerated():
    r = routing.parse(" moved = Journal , journal ; ", KNOWN)
    assert r.actions_for("MOVED") == ("journal",)


@pytest.mark.parametrize("text, token", [
    ("INDEXED=journal", "'INDEXED'"),
    ("MOVED=journal,thumbnails", "'thumbnails'"),
    ("MOVED", "'MOVED'"),
    ("MOVED=", "'MOVED'"),
    ("MOVED=journal;MOVED=teams", "'MOVED'"),
])
def test_bad_setting_names_the_bad_token(text, token):
    with pytest.raises(routing.RoutesError) as err:
        routing.parse(text, KNOWN)
    assert token in str(err.value) and "PRESERVICA_ROUTES" in str(err.value)
