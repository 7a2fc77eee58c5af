"""The shape of ``report.json`` (schema ``mgs.report/1``), as the modules that pass it share it.

:func:`core.report.render.build_report` builds a :class:`ReportDocument`; the renderings
(:mod:`core.report.document`, Markdown, HTML, PDF), the sign-off and the LIMS exports read
one. Keys are not required (``total=False``): readers meet report.json files written by
older versions and read them with ``.get``. Blocks whose content is the analysis' or a
backend's own (the analysis provenance, decoding settings, the image preparation) are
:data:`core.jsonable.JSONObject`.
"""

from __future__ import annotations

import json
from typing import NotRequired, TypedDict, cast

from core.jsonable import JSONObject, JSONValue


class NumberCheck(TypedDict):
    """A number written in the narrative and whether it matches a computed value."""

    text: str
    value: float
    percent: bool
    start: int
    end: int
    verified: bool


class Claim(TypedDict):
    kind: str
    text: str
    verdict: str
    reason: str


class CheckedSentence(TypedDict):
    """A sentence of the narrative, its claims and their verdict (``section`` once placed)."""

    sentence: str
    verdict: str
    claims: list[Claim]
    section: NotRequired[str]


class WithheldClaim(TypedDict):
    claim: str
    reason: str
    value: float | None
    threshold: float | None


class NotAssessed(TypedDict, total=False):
    claims: list[WithheldClaim]
    notes: list[str]


class NarrativeSource(TypedDict, total=False):
    backend: str | None
    model: str | None
    written_by_language_model: bool | None
    label: str


class Section(TypedDict, total=False):
    id: str
    title: str
    computed: JSONObject
    narrative: str
    unverified_numbers: list[str]
    narrative_checked: str


class NarrativeUnassigned(TypedDict, total=False):
    text: str
    text_checked: str
    unverified_numbers: list[str]


class ClaimCheck(TypedDict, total=False):
    counts: dict[str, int]
    sentences: list[CheckedSentence]


class LeakageFinding(TypedDict):
    """One finding of the leakage gate, as ``leakage_findings.json`` and provenance list it."""

    category: str
    match: str
    start: int
    reason: str


class LeakageGate(TypedDict):
    passed: bool
    findings: int
    lexicon: dict[str, int]
    context_strings: int
    findings_list: NotRequired[list[LeakageFinding]]


class Parroting(TypedDict):
    score: float | None
    prompt_numbers: int
    copied_verbatim: int


class ReportProvenance(TypedDict, total=False):
    """How the report was made: backend, prompt, leakage gate, checks, options, timings."""

    created_at: str
    backend: str | None
    model: str | None
    model_revision: str | None
    written_by_language_model: bool
    decoding: JSONObject | None
    prompt_strategy: str
    prompt_sha256: str
    prompt_file: str | None
    prompt_chars: int
    images_sent: int
    image: JSONObject
    leakage_gate: LeakageGate
    timings: dict[str, float]
    backend_details: JSONObject
    options: JSONObject
    analysis_provenance: JSONObject
    narrative_withheld: str
    narrative_withheld_code: str
    claims: dict[str, int]
    numbers_in_narrative: int
    unverified_numbers: int
    parroting: Parroting
    # a job's summary only: what its report says of the narrative (core.jobs.execute)
    narrative: NarrativeOutcome | None


class PdfOutcome(TypedDict):
    written: bool
    file: NotRequired[str]
    reason: NotRequired[str]


class NarrativeOutcome(TypedDict):
    """``written``, or ``withheld`` with a stable ``code`` and the ``detail``."""

    status: str
    code: NotRequired[str]
    detail: NotRequired[str]


class SignoffEntry(TypedDict):
    """One sign-off as ``report.json``'s ``signoffs`` lists it."""

    seq: int
    reviewer: str
    key_id: str
    status: str
    comment: str | None
    content_sha256: str
    signed_at: str


class ReportDocument(TypedDict, total=False):
    """``report.json``."""

    schema: str
    disclaimer: str
    not_assessed: NotAssessed
    narrative_source: NarrativeSource
    sections: list[Section]
    narrative_unassigned: NarrativeUnassigned
    narrative_raw: str
    claim_check: ClaimCheck
    figures: list[str]
    provenance: ReportProvenance
    pdf: PdfOutcome
    status: str
    narrative: NarrativeOutcome
    # a signed report (core.report.signoff.with_status_json)
    report_status: str
    signoffs: list[SignoffEntry]
    # a failed report stage (core.report.record_failure)
    error: dict[str, str]
    failed_at: str


def parse_report(raw: str | bytes) -> ReportDocument:
    """``report.json`` as written by :func:`core.report.render.build_report`.

    Parameters
    ----------
    raw
        The file's text or bytes.

    Returns
    -------
    ReportDocument
        The document; not validated beyond being a JSON object (``{}`` otherwise): readers
        take every key with ``.get``, as report.json files of older versions lack some.
    """
    doc: JSONValue = json.loads(raw)
    return cast(ReportDocument, doc) if isinstance(doc, dict) else {}
