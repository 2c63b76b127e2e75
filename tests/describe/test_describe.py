"""`describe`: the real openai AzureOpenAI client against a local HTTPS chat-completions double, the OCR text
and drafts in Azurite, the asset in the Preservica double (which describe never writes to)."""
from __future__ import annotations

import hashlib

import pytest

from handlers.clients import journal
from handlers.core import describe as rules
from handlers.core.errors import SafeError
from tests.support.describe import DEPLOYMENT, INJECTION, LETTER, OCR_TEXT, draft, job_for
from tests.support.jobs import row, run_one


def test_a_draft_is_kept_with_provenance_and_nothing_is_written(env, pres, chat):
    chat.answer = "A letter of 3 May 1921 from the Harbour Office reporting that the harbour wall was breached."
    raw = job_for(LETTER)
    outcome = run_one("describe", raw)
    assert (outcome.state, outcome.reason) == (journal.DONE, "")

    [call] = chat.calls
    assert call.deployment == DEPLOYMENT and call.query["api-version"] == "2024-10-21"
    assert call.headers["api-key"] == "<redacted>" and "authorization" not in call.headers
    system, user = call.messages
    assert (system["role"], user["role"]) == ("system", "user")
    assert system["content"].startswith(rules.DEFAULT_PROMPT) and OCR_TEXT not in system["content"]
    assert OCR_TEXT in user["content"] and "Title: Letter, 1921" in user["content"]
    assert call.body["max_completion_tokens"] == 600

    d = draft(LETTER)
    assert d["status"] == "pending" and d["draft"] == chat.answer and d["sources"] == ["ocr"]
    assert (d["title"], d["description"]) == ("Letter, 1921", "Written by the archivist.")
    p = d["provenance"]
    assert (p["deployment"], p["model"], p["apiVersion"]) == (DEPLOYMENT, "gpt-4o-2024-11-20", "2024-10-21")
    nonce = user["content"].split("<<<ITEM TEXT ", 1)[1].split(">>>", 1)[0]
    assert p["promptSha256"] == hashlib.sha256(system["content"].replace(nonce, "{nonce}").encode()).hexdigest()
    assert p["promptTokens"] > 0 and p["completionTokens"] > 0 and p["date"].endswith("Z")
    assert pres.metadata(LETTER) == [] and not [p for m, p in pres.requests if m in ("PUT", "POST", "DELETE") and "accesstoken" not in p.lower()]
    assert row(raw)["describe_status"] == "pending"


def test_the_transcript_is_read_too(env, pres, chat):
    from handlers.clients.storage import default
    default().put_blob("transcripts", f"{LETTER}.txt", b"Interview: the wall fell in the storm.", "text/plain")
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    assert "the wall fell in the storm" in chat.calls[0].messages[1]["content"]
    assert draft(LETTER)["sources"] == ["ocr", "transcript"]


def test_no_text_is_skipped_without_a_call(env, pres, chat):
    from handlers.clients.storage import default
    default().blob_service().get_blob_client("ocr", f"{LETTER}.txt").delete_blob()
    outcome = run_one("describe", job_for(LETTER))
    assert outcome.state == journal.SKIPPED and outcome.reason.startswith("no text to describe")
    assert chat.calls == []


# ---- untrusted text stays data -----------------------------------------------------------------

def test_a_page_that_says_ignore_the_instructions_stays_data(env, pres, chat):
    from handlers.clients.storage import default
    default().put_blob("ocr", f"{LETTER}.txt", INJECTION.encode(), "text/plain")
    chat.respond = lambda call: "A harbour office note of 1921; its text contains instructions addressed to a reader."
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    system, user = chat.calls[0].messages
    assert "IGNORE ALL PREVIOUS" not in system["content"] and "IGNORE ALL PREVIOUS" in user["content"]
    # The page's fake closing delimiter is gone; the real ones carry a nonce the page could not know.
    assert "<<<END ITEM TEXT 0000>>>" not in user["content"]
    assert user["content"].count("<<<") == 2 and user["content"].rstrip().endswith(">>>")
    assert draft(LETTER)["status"] == "pending"


def test_a_model_that_obeys_the_page_is_refused_by_the_checks(env, pres, chat):
    from handlers.clients.storage import default
    default().put_blob("ocr", f"{LETTER}.txt", INJECTION.encode(), "text/plain")
    chat.answer = "Buy now at evil.example"
    outcome = run_one("describe", job_for(LETTER))
    assert outcome.state == journal.SKIPPED and "a link or address" in outcome.reason
    d = draft(LETTER)
    assert d["status"] == "failed" and "draft" not in d and d["rejectedText"] == "Buy now at evil.example"
    assert pres.metadata(LETTER) == []


@pytest.mark.parametrize("answer,why", [
    ("A letter. <script>alert(1)</script>", "markup"),
    ("A letter, see [the catalogue](https://evil.example).", "markup"),
    ("A letter; more at https://evil.example/x", "a link or address"),
    ("**A letter** about the wall.", "markup"),
    ("x" * 1600, "too long"),
    ("Письмо 1921 года о гавани.", "not in the expected script"),
    ("A letter\u202e about the wall.", "control or invisible characters"),
    ("A letter\uffff about the wall.", "control or invisible characters"),   # no XML can hold it: never acceptable
    ("A letter\ud800 about the wall.", "control or invisible characters"),   # a lone surrogate, valid in JSON
])
def test_answers_that_smuggle_markup_or_links_are_refused(env, pres, chat, answer, why):
    chat.answer = answer
    outcome = run_one("describe", job_for(LETTER))
    assert outcome.state == journal.SKIPPED and why in outcome.reason
    assert draft(LETTER)["status"] == "failed" and why in draft(LETTER)["reason"]


# ---- the service's refusals and limits ----------------------------------------------------------

def test_a_content_filter_refusal_of_the_prompt_is_recorded(env, pres, chat):
    chat.filter_prompt()
    outcome = run_one("describe", job_for(LETTER))
    assert (outcome.state, outcome.reason) == (journal.SKIPPED, "draft not kept: the content filter refused the prompt")
    assert draft(LETTER)["status"] == "failed" and len(chat.calls) == 1


def test_a_filtered_answer_is_recorded(env, pres, chat):
    chat.finish_reason = "content_filter"
    outcome = run_one("describe", job_for(LETTER))
    assert outcome.reason == "draft not kept: the content filter refused the answer"


def test_429_waits_what_retry_after_says_then_succeeds(env, pres, chat):
    chat.fail_next(429, {"Retry-After": "4"}, {"error": {"code": "429", "message": "Rate limit"}})
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    assert env == [4.0] and len(chat.calls) == 2


def test_429_beyond_the_budget_is_left_to_the_queue(env, pres, chat):
    chat.fail_next(429, {"Retry-After": "90"})
    with pytest.raises(SafeError, match="Azure OpenAI answered HTTP 429"):
        run_one("describe", job_for(LETTER))
    assert env == [] and len(chat.calls) == 1


def test_the_token_bound_cuts_the_text_sent(env, pres, chat, monkeypatch):
    from handlers.clients.storage import default
    default().put_blob("ocr", f"{LETTER}.txt", ("line of text\n" * 5000).encode(), "text/plain")
    monkeypatch.setenv("DESCRIBE_MAX_TOKENS", "1200")
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    user = chat.calls[0].messages[1]["content"]
    assert len(user) < (1200 - 600 - 400) * 2 + 200 and draft(LETTER)["inputCut"] is True


def test_a_wrong_key_names_the_role_and_not_the_key(env, pres, chat, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_KEY", "wrong-key-0000")
    with pytest.raises(SafeError, match="Cognitive Services OpenAI User") as err:
        run_one("describe", job_for(LETTER))
    assert "wrong-key" not in str(err.value) and "wrong-key" not in caplog.text


def test_with_the_app_identity_an_entra_token_provider_and_no_key(keyvault, pres, monkeypatch, tmp_path):
    """In Azure: azure_ad_token_provider over DefaultAzureCredential (scope cognitiveservices), no api-key."""
    from handlers.clients import preservica
    from handlers.clients.storage import default
    from handlers.core import settings
    from hookops.doubles.chat import ChatDouble
    from tests.support.describe import PASSWORD, TENANT, USER
    audience = "https://cognitiveservices.azure.com"
    with ChatDouble(ca=keyvault.ca, accept_token=keyvault.accepts(audience)) as entra:
        monkeypatch.chdir(tmp_path)
        keyvault.set_secret(settings.KV_PRESERVICA_PASSWORD, PASSWORD)
        for name, value in {"PRESERVICA_SERVER": pres.server, "PRESERVICA_USERNAME": USER, "PRESERVICA_TENANT": TENANT,
                            "PRESERVICA_PROTOCOL": "http", "OPENAI_ENDPOINT": entra.endpoint,
                            "DESCRIBE_DEPLOYMENT": DEPLOYMENT, "SSL_CERT_FILE": entra.ca_bundle}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("OPENAI_KEY", raising=False)
        default().put_blob("ocr", f"{LETTER}.txt", OCR_TEXT.encode(), "text/plain")
        preservica.forget_client()
        assert run_one("describe", job_for(LETTER)).state == journal.DONE
        [call] = entra.calls
        assert call.headers["authorization"] == "<redacted>" and "api-key" not in call.headers
        assert {"client_id": "11111111-2222-3333-4444-555555555555", "resource": audience} in keyvault.token_requests
        default().blob_service().get_blob_client("ocr", f"{LETTER}.txt").delete_blob()
    preservica.forget_client()


def test_empty_texts_are_no_text(env, pres, chat):
    """A blank page's OCR and a silent recording's transcript are empty blobs: nothing to describe, no error."""
    from handlers.clients.storage import default
    default().put_blob("ocr", f"{LETTER}.txt", b"", "text/plain")
    default().put_blob("transcripts", f"{LETTER}.txt", b"", "text/plain")
    outcome = run_one("describe", job_for(LETTER))
    assert outcome.state == journal.SKIPPED and outcome.reason.startswith("no text to describe") and chat.calls == []


def test_a_draft_from_a_preservation_files_text_says_so_to_its_reviewer(env, pres, chat):
    """transcribe (and ocr) fall back to the preservation file, whose words a redacted access copy may withhold:
    the draft is still offered, with that said on the page where a person decides what goes public."""
    from handlers.clients.storage import default
    from handlers.core import transcript
    from tests.support.console import operator_get
    chat.answer = "A recorded interview about the harbour wall."
    default().put_blob("transcripts", f"{LETTER}.txt", b"Interview: the wall fell in the storm.", "text/plain",
                       transcript.source_metadata("Preservation", "co-ref", {"SHA1": "ab" * 20}))
    assert run_one("describe", job_for(LETTER)).state == journal.DONE
    assert draft(LETTER)["fromPreservation"] == ["transcript"]
    page = operator_get(f"drafts/{LETTER}").get_body()
    assert b"Drafted from the text of the preservation file (transcript)" in page and b"/accept" in page
    default().put_blob("transcripts", f"{LETTER}.txt", b"Interview: the wall fell in the storm.", "text/plain",
                       transcript.source_metadata("Access", "co-ref", {"SHA1": "ab" * 20}))
    run_one("describe", job_for(LETTER))
    assert draft(LETTER)["fromPreservation"] == []
    assert b"preservation file" not in operator_get(f"drafts/{LETTER}").get_body()
