"""Request and response models of API v1."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.enums import JobStage, JobState
from core.options import JobOptions
from core.report.signoff import ReportStatus


def no_nul(v: str | None) -> str | None:
    """Refuse NUL characters: Postgres cannot store them in text or JSON (it would be a 500)."""
    if isinstance(v, str) and "\x00" in v:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return v


NoNulStr = Annotated[str, AfterValidator(no_nul)]

JobSort = Literal["-created_at", "created_at"]


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable and machine-readable."""

    type: str = Field(examples=["https://medgemma-spatial.dev/problems/job_not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["job_not_found"])
    instance: str | None = None
    errors: list[dict[str, object]] | None = Field(
        None, description="Field errors (code validation_error)."
    )


class ReadinessProblem(Problem):
    """``/readyz`` not ready (code ``not_ready``): the problem plus each dependency's check."""

    checks: dict[str, str] = Field(
        description="database, broker, storage: ok, error: <type> or slow: no answer within N s"
    )


class UploadOut(BaseModel):
    id: uuid.UUID
    filename: str = Field(description="The client's file name; display text only.")
    format: Literal["h5ad", "tar.gz", "tar", "zip"]
    size: int
    sha256: str
    created_at: datetime


class UploadSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: NoNulStr = Field("upload", max_length=255, description="Display name only.")
    size: int = Field(
        ge=1, description="Total size of the file in bytes (at most MGS_MAX_UPLOAD_BYTES)."
    )


class UploadSessionOut(BaseModel):
    id: uuid.UUID
    filename: str
    size: int = Field(description="Total size of the file (bytes).")
    chunk_size: int = Field(
        description="Every chunk but the last is exactly this long, starting at a multiple of it."
    )
    received: int = Field(description="Bytes received so far: the next chunk starts here.")
    upload_id: uuid.UUID | None = Field(
        None, description="The upload this session became (after complete)."
    )
    created_at: datetime
    updated_at: datetime


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: uuid.UUID
    external_sample_id: NoNulStr | None = Field(None, max_length=255)
    options: JobOptions = Field(default_factory=lambda: JobOptions())
    callback_url: NoNulStr | None = Field(None, max_length=2048)


class JobError(BaseModel):
    code: str
    detail: str


class JobReport(BaseModel):
    narrative: Literal["written", "withheld"] = Field(
        description="'withheld': the report was written with the computed findings and no "
        "narrative; 'reason' says why."
    )
    reason: JobError | None = Field(
        None,
        description="Why the narrative is missing: code 'prompt_leakage' (the leakage gate "
        "refused the prompt; nothing was sent to any model).",
    )


class JobLinks(BaseModel):
    self: str
    report: str
    artifacts: str
    cancel: str


class JobOut(BaseModel):
    id: uuid.UUID
    state: JobState
    stage: JobStage
    progress: float = Field(ge=0, le=1)
    attempts: int = Field(
        description="Worker claims so far, all stages together (a clean run ends at 2: analysis, "
        "report); each claim writes under jobs/{id}/attempt-{n}/."
    )
    external_sample_id: str | None
    upload_id: uuid.UUID
    options: dict[str, object]
    callback_url: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    report: JobReport | None = Field(
        None,
        description="A succeeded job's report in brief: whether it has a narrative, and why not.",
    )
    report_status: ReportStatus | None = Field(
        None,
        description="The report's sign-off status once the job has succeeded: preliminary "
        "(unsigned), final or amended; null before.",
    )
    provenance: dict[str, object] = Field(
        default_factory=dict,
        description="What the job ran with: validation summary, analysis versions and parameters, "
        "report backend, model id and prompt hash (filled in as stages finish).",
    )
    links: JobLinks


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class ArtifactOut(BaseModel):
    name: str
    size: int
    url: str


class ArtifactList(BaseModel):
    items: list[ArtifactOut]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class SignoffCreate(BaseModel):
    reviewer: str = Field(
        min_length=1, max_length=255, description="The pathologist, by the name the lab knows them."
    )
    status: Literal["final", "amended"] = Field(
        description="'final' signs the preliminary report; 'amended' adds an addendum to a "
        "signed one (needs a comment)."
    )
    comment: str | None = Field(
        None, max_length=4000, description="Free text; for 'amended', the addendum."
    )


class SignoffOut(BaseModel):
    seq: int = Field(description="1, 2, ... in signing order.")
    reviewer: str
    key_id: uuid.UUID = Field(description="The id of the reviewer key that signed.")
    status: Literal["final", "amended"]
    comment: str | None
    content_sha256: str = Field(
        description="sha256 of the signed content: the report.json artifact's bytes."
    )
    signed_at: datetime


class ReportHistory(BaseModel):
    job_id: uuid.UUID
    report_status: ReportStatus
    signoffs: list[SignoffOut]


class CallerLimits(BaseModel):
    max_upload_bytes: int = Field(description="Largest accepted upload (MGS_MAX_UPLOAD_BYTES).")
    upload_idle_timeout_s: float = Field(
        description="An upload body that sends nothing for this long is cut off (408)."
    )
    upload_chunk_bytes: int = Field(
        description="Chunk size of resumable uploads (MGS_UPLOAD_CHUNK_BYTES); a larger file is "
        "best sent through POST /v1/uploads/sessions."
    )


class CallerOut(BaseModel):
    tenant_id: str
    key_id: uuid.UUID
    role: Literal["submitter", "reviewer"] = Field(
        description="reviewer keys may sign reports; submitter keys upload, submit and read."
    )
    limits: CallerLimits
