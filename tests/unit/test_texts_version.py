"""The texts fingerprint (``workflows/texts_version.py``) changes exactly when what a reader
of a stored explanation would see changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.directives import Basis
from workflows import explanations, vocabulary
from workflows.texts_version import texts_fingerprint


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    texts_fingerprint.cache_clear()
    yield
    texts_fingerprint.cache_clear()


def test_the_same_texts_give_the_same_fingerprint() -> None:
    first = texts_fingerprint()
    texts_fingerprint.cache_clear()
    assert texts_fingerprint() == first and len(first) == 16


@pytest.mark.parametrize("change", ["a basis's word", "a writer", "a sentence's ending",
                                    "how a directive is named", "what a side asks for"])
def test_a_changed_text_changes_the_fingerprint(change: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    before = texts_fingerprint()
    texts_fingerprint.cache_clear()
    if change == "a basis's word":  # one basis among eight, seen only by rule violations
        monkeypatch.setitem(vocabulary.BASES, Basis.NON_PARTY, "non_party")
    elif change == "a writer":
        monkeypatch.setitem(explanations.WRITERS, "duplicate", lambda details, t: "重复")
    elif change == "how a directive is named":  # by its subject again, not its summary
        monkeypatch.setattr(explanations._Words, "directive",
                            lambda self, details: str(details["subject"]))
    elif change == "what a side asks for":  # its value alone, without its summaries
        monkeypatch.setattr(explanations._Words, "asked",
                            lambda self, value, summaries: self.value(value))
    else:  # what every merged conflict ends with
        real = explanations.gettext
        monkeypatch.setattr(explanations, "gettext", lambda language, message, *a, **k: (
            "Merged." if message.startswith("Merged into") else real(language, message, *a, **k)))
    assert texts_fingerprint() != before
