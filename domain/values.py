"""Transitional (issue 12): the names this module held, re-exported from where they now live.

Import from ``domain.primitives``, ``domain.terms``, ``domain.directives`` or
``domain.subscriptions`` (the webhook bodies, no longer here) instead; this module
goes once nothing imports it.
"""

from domain.directives import (
    Basis,
    Classification,
    Correction,
    DirectiveFields,
    DirectivePatch,
    Dispute,
    DisputedField,
    Window,
)
from domain.primitives import ORG_ID, SLUG, EmptyBody, Strict, WholeNumber
from domain.terms import (
    CONFIDENTIALITY_RULE,
    Admission,
    AdmissionEntry,
    Capacity,
    ContractTerms,
    Indicator,
    Money,
    Period,
    Policy,
    Profile,
    Rule,
    ServicePlace,
    StakeholderSpec,
    Standing,
    Weights,
)

__all__ = [
    "CONFIDENTIALITY_RULE",
    "ORG_ID",
    "SLUG",
    "Admission",
    "AdmissionEntry",
    "Basis",
    "Capacity",
    "Classification",
    "ContractTerms",
    "Correction",
    "DirectiveFields",
    "DirectivePatch",
    "Dispute",
    "DisputedField",
    "EmptyBody",
    "Indicator",
    "Money",
    "Period",
    "Policy",
    "Profile",
    "Rule",
    "ServicePlace",
    "StakeholderSpec",
    "Standing",
    "Strict",
    "Weights",
    "WholeNumber",
    "Window",
]
