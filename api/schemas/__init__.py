"""Request and response models of API v1."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.options import JobOptions

JobStateName = Literal["queued", "running", "succeeded", "failed", "canceled"]
JobStageName = Literal["validating", "analyzing", "reporting"]


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is stable and machine-readable."""

    type: str = Field(examples=["https://medgemma-spatial.dev/problems/job_not_found"])
    title: str
    status: int
    detail: str
    code: str = Field(examples=["job_not_found"])
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="Field errors (code validation_error)."
    )


class UploadOut(BaseModel):
    id: uuid.UUID
    filename: str = Field(description="The client's file name; display text only.")
    format: Literal["h5ad", "tar.gz", "tar", "zip"]
    size: int
    sha256: str
    created_at: datetime


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    upload_id: uuid.UUID
    external_sample_id: str | None = Field(None, max_length=255)
    options: JobOptions = Field(default_factory=lambda: JobOptions())
    callback_url: str | None = Field(None, max_length=2048)


class JobError(BaseModel):
    code: str
    detail: str


class JobLinks(BaseModel):
    self: str
    report: str
    artifacts: str
    cancel: str


class JobOut(BaseModel):
    id: uuid.UUID
    state: JobStateName
    stage: JobStageName
    progress: float = Field(ge=0, le=1)
    attempts: int = Field(
        description="Worker claims so far, all stages together (a clean run ends at 2: analysis, "
        "report); each claim writes under jobs/{id}/attempt-{n}/."
    )
    external_sample_id: str | None
    upload_id: uuid.UUID
    options: dict[str, Any]
    callback_url: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: JobError | None
    provenance: dict[str, Any] = Field(
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
