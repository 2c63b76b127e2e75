import hashlib
import hmac

from hypothesis import given, strategies as st

from handlers.core import signature

SECRET = "test-secret"


def reference(secret: str, body: bytes) -> str:
    # Independent statement of Preservica's scheme from the protocol notes.
    return hmac.new(secret.encode(), b"preservica-webhook-auth" + body, hashlib.sha256).hexdigest()


def test_challenge_is_hmac_of_code():
    assert signature.challenge_response(SECRET, "abc123") == hmac.new(b"test-secret", b"abc123", hashlib.sha256).hexdigest()


def test_sign_matches_reference_and_verifies():
    body = b'{"events": []}'
    assert signature.sign(SECRET, body) == reference(SECRET, body)
    assert signature.verify([SECRET], body, reference(SECRET, body))


def test_non_ascii_body_verifies_over_raw_bytes():
    body = '{"events": [{"entityRef": "Łódź – 東京 🗂"}]}'.encode()
    assert signature.verify([SECRET], body, reference(SECRET, body))


def test_hex_case_and_whitespace_do_not_matter():
    body = b"{}"
    assert signature.verify([SECRET], body, "  " + reference(SECRET, body).upper() + " ")


def test_rejects_missing_short_non_hex_and_wrong():
    body = b"{}"
    good = reference(SECRET, body)
    for bad in (None, "", good[:-1], "z" * 64, reference("other", body), good + "0"):
        assert not signature.verify([SECRET], body, bad)


def test_previous_secret_accepted_during_rotation():
    body = b"{}"
    assert signature.verify(["new", "old"], body, reference("old", body))
    assert not signature.verify(["new"], body, reference("old", body))


@given(st.binary(max_size=2048), st.text(min_size=1, max_size=64))
def test_any_body_round_trips(body, secret):
    assert signature.verify([secret], body, signature.sign(secret, body))
    assert not signature.verify([secret], body + b"x", signature.sign(secret, body))
