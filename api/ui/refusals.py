"""Why the dashboard refused, in the reader's language.

The API's problem documents say what was refused in English, with ids, for a
program or an engineer (``api/problems.py``).  A page says it to a person: one
sentence per refusal code, from the ``messages`` catalogue, and the English
detail kept below it for whoever asks an engineer.  A decision refused for lack
of authority names who issued the directive and the level its override needs
(SPEC §6), and a version asked for before it exists names the latest, from the
error's own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REFUSALS: dict[str, str] = {
    "validation_failed": "Some of what was entered is not valid; the details below say what.",
    "not_found": "It does not exist, or your key may not see it.",
    "forbidden": "Your organisation or role may not do this.",
    "insufficient_authority": "Your level in the escalation chain may not override that "
                              "directive; escalate the conflict.",
    "form_expired": "This form has expired; reload the page and try again.",
    "already_exists": "It already exists.",
    "illegal_transition": "The contract's status does not allow this change.",
    "contract_not_active": "The contract is not in force, so it takes no directives now.",
    "contract_finished": "The contract is terminated or closed: it takes no more changes.",
    "directive_not_active": "That directive has been withdrawn or is no longer in force.",
    "conflict_not_open": "The conflict has already been decided or has dissolved.",
    "level_mismatch": "The conflict has moved to another level since this page was opened; "
                      "reload it.",
    "no_higher_level": "The conflict is at the last level of the escalation chain: it cannot "
                       "go higher.",
    "not_lapsed": "The conflict's deadline has not passed yet.",
    "proposal_pending": "A decision is awaiting joint approval: answer it, or escalate the "
                        "conflict to withdraw it.",
    "no_pending_proposal": "No decision is awaiting approval.",
    "version_mismatch": "Someone changed it meanwhile; reload the page and try again.",
    "idempotency_key_reused": "This request was already sent with other content.",
    "rate_limited": "Several of your requests are still under way; wait a moment, then try "
                    "again.",
    "contention": "The service is busy; try again in a moment.",
    "projection_lagging": "The service is busy; try again in a moment.",
    "views_unavailable": "The service is busy; try again in a moment.",
}
REFUSED = "The request was refused."
"""What a page says of a refusal code with no sentence of its own."""

OVERRIDE_NEEDS = ("The directive was issued by %(org)s, at level %(level)s of the escalation "
                  "chain: only a decision at level %(level)s or above may override it. "
                  "Escalate the conflict, or uphold that directive.")


NO_VERSION_YET = "The contract has no version %(version)s yet: its latest is version %(latest)s."
NOT_YET_DRAFTED = "The contract had not been drafted yet at %(moment)s."


def refusal(labels: Any, code: str, extra: Mapping[str, Any] | None = None) -> str:
    """The sentence a page shows for a refusal (``labels``: ``api.ui.render.Labels``)."""
    if code == "insufficient_authority" and extra and "org_needed" in extra:
        return labels._(OVERRIDE_NEEDS, org=labels.org(str(extra["org_needed"])),
                        level=extra.get("level_needed"))
    if code == "not_found" and extra and "latest" in extra:  # (``domain.errors.NotYet``)
        return labels._(NO_VERSION_YET, version=extra.get("version"), latest=extra["latest"])
    if code == "not_found" and extra and "as_of" in extra:
        return labels._(NOT_YET_DRAFTED, moment=labels.when(extra["as_of"]))
    return labels._(REFUSALS.get(code, REFUSED))
