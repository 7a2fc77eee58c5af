"""One Settings object for the CLI, the API and the workers (env prefix ``MGS_``).

Grouped by concern; every field is documented in the README's settings table.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration read from the environment (``MGS_*``) and an optional ``.env``."""

    model_config = SettingsConfigDict(env_prefix="MGS_", env_file=".env", extra="ignore")

    # --- analysis -----------------------------------------------------------------
    memory_budget_mb: int = Field(
        8192, description="Refuse samples whose estimated analysis memory exceeds this (MiB)."
    )
    max_image_pixels: int = Field(
        200_000_000, description="Refuse images with more pixels than this (height x width)."
    )
    max_extract_bytes: int = Field(
        20 * 1024**3, description="Largest total size an uploaded archive may unpack to (bytes)."
    )
    max_extract_members: int = Field(10_000, description="Most files an archive may hold.")
    max_extract_ratio: float = Field(
        100.0,
        description="An archive may declare at most this many times its own size unpacked (a "
        "decompression bomb is refused before unpacking); 0 = no ratio bound, only MGS_MAX_EXTRACT_BYTES.",
    )
    default_seed: int = Field(0, description="Seed for every randomised step when none is given.")
    threads: int = Field(0, description="kNN threads; 0 = all cores.")
    blas_threads: int = Field(
        1, description="Dense BLAS threads in the analysis (0 = library default)."
    )

    # --- report -------------------------------------------------------------------
    report_backend: str = Field(
        "template", description="template | transformers | openai: who writes the narrative."
    )
    model_id: str = Field(
        "google/medgemma-1.5-4b-it",
        description="Model id or local path for the transformers backend.",
    )
    model_revision: str | None = Field(None, description="Model revision (commit) to load.")
    max_new_tokens: int = Field(1024, description="Most tokens the model may write.")
    report_backends_allowed: str = Field(
        "",
        description="Comma-separated report backends a job may ask for in options.backend; others "
        "get 422 backend_not_allowed. Empty = template and MGS_REPORT_BACKEND.",
    )
    report_models_allowed: str = Field(
        "",
        description="Comma-separated model ids (transformers) or served names (openai) a job may ask "
        "for in options.model; others get 422 model_not_allowed. Empty = MGS_MODEL_ID and MGS_OPENAI_MODEL.",
    )
    model_allow_download: bool | None = Field(
        None,
        description="May the transformers backend download weights from the Hugging Face Hub? Unset: "
        "the CLI may, workers may not (a model that is not local fails at once with model_unavailable); "
        "true: both; false: neither.",
    )
    openai_base_url: str = Field(
        "http://127.0.0.1:8001/v1", description="Base URL of an OpenAI-compatible server."
    )
    openai_api_key: str = Field("", description="Key for the OpenAI-compatible server.")
    openai_model: str = Field("google/medgemma-1.5-4b-it", description="Model name on that server.")
    openai_timeout_s: float = Field(120.0, description="Per-request timeout (s).")
    openai_max_retries: int = Field(2, description="Retries on connection errors and 5xx.")

    # --- service ------------------------------------------------------------------
    database_url: str = Field(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        description="SQLAlchemy URL of the Postgres database that holds job state.",
    )
    broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker URL (Redis).")
    storage_url: str = Field(
        "file://./var/storage",
        description="file:///dir or s3://bucket/prefix for uploads and results.",
    )
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO).")
    max_upload_bytes: int = Field(5 * 1024**3, description="Largest accepted upload (bytes).")
    upload_chunk_bytes: int = Field(
        8 * 1024**2,
        ge=64 * 1024,
        description="Chunk size of resumable uploads (POST /v1/uploads/sessions): every chunk but "
        "the last is exactly this long (bytes).",
    )
    upload_session_ttl_s: float = Field(
        86400.0,
        description="A resumable upload session with no chunk for this long is deleted with its "
        "chunks by the relay's sweep (s).",
    )
    webhook_allow_private: bool = Field(
        False, description="Allow webhook callbacks to loopback/private/link-local addresses."
    )
    webhook_max_attempts: int = Field(8, description="Webhook deliveries tried before giving up.")
    webhook_timeout_s: float = Field(10.0, description="Timeout of one webhook POST (s).")
    job_max_attempts: int = Field(
        3, description="Claims per job stage before the job fails with attempts_exhausted."
    )
    job_lease_s: int = Field(
        900,
        description="A worker's claim on a job lasts this long (s); renewed at each progress step.",
    )
    job_requeue_after_s: int = Field(
        120,
        description="A queued job nobody claimed for this long is sent to the broker again (s).",
    )
    broker_visibility_timeout_s: int = Field(
        3600,
        description="Redis redelivers an unacknowledged task after this long (s); a duplicate is skipped by the claim.",
    )
    reconcile_interval_s: float = Field(
        5.0, description="How often the relay looks for expired leases and lost queued jobs (s)."
    )
    relay_interval_s: float = Field(
        0.5, description="How often the outbox relay polls Postgres (s)."
    )
    validation_timeout_s: int = Field(
        300, description="Time limit of the validation subprocess (s)."
    )
    validation_memory_mb: int = Field(
        0,
        description="Address-space limit of the validation subprocess (MiB); 0 = memory_budget_mb + 2048.",
    )
    analysis_memory_mb: int = Field(
        0,
        description="Address-space limit of the analysis subprocess (MiB); 0 = analyse in the worker process, unlimited.",
    )
    marker_tables_dir: str | None = Field(
        None,
        description="Folder of marker tables a job may name in options.markers (NAME or NAME.tsv).",
    )
    auth_cache_s: float = Field(
        5.0,
        description="API processes cache a key's tenant this long (s); a revoked key stops within it.",
    )
    status_cache_entries: int = Field(
        10000,
        description="GET /v1/jobs/{id} bodies each API process keeps, dropped by Postgres NOTIFY "
        "on every change of the job row (coherent while the listener is connected); 0 = off.",
    )
    signoff_repeat_window_s: float = Field(
        120.0,
        description="A sign-off without Idempotency-Key that repeats the latest one of the job "
        "(same key, reviewer, status and comment) within this long is a retry: the earlier record "
        "is returned, none is added (s); 0 = only Idempotency-Key makes a retry.",
    )
    rate_limit_per_minute: int = Field(
        1200,
        description="Requests one API key may make per minute (token bucket in Redis, shared by all "
        "API processes; bursts up to this many); 0 = no limit. Over it: 429 with Retry-After.",
    )
    max_concurrent_jobs_per_tenant: int = Field(
        50,
        description="Queued plus running jobs one tenant may have; a submit over it gets 429 with "
        "Retry-After. 0 = no limit.",
    )
    upload_idle_timeout_s: float = Field(
        30.0,
        description="An upload whose body sends nothing for this long is cut off with 408 (s).",
    )
    header_timeout_s: float = Field(
        15.0,
        description="A connection must send a request's complete headers within this long of its "
        "opening (or of the request's first byte on a kept-alive connection), else it is closed (s).",
    )
    body_min_rate_bytes_s: int = Field(
        4096,
        description="After the grace period a request body must have arrived at least this fast on "
        "average (bytes/s); a slower one is cut off with 408 body_too_slow. 0 = no minimum.",
    )
    body_rate_grace_s: float = Field(
        10.0, description="Seconds a request body may take before the minimum rate applies."
    )
    body_timeout_s: float = Field(
        3600.0,
        description="Longest time to receive one request body, uploads included (s); over it: 408 "
        "body_timeout. 0 = no deadline.",
    )
    max_json_bytes: int = Field(
        1024 * 1024,
        description="Largest request body outside uploads (JSON), bytes; over it: 413 body_too_large.",
    )
    metrics_token: str = Field(
        "",
        description="When set, GET /metrics needs 'Authorization: Bearer <this token>'; empty = open.",
    )
    worker_imports: str = Field(
        "",
        description="Comma-separated extra modules the worker, relay and API import at start (they "
        "register job kinds; the test suite's sleep job lives in tests/).",
    )

    # --- reliability ----------------------------------------------------------------
    worker_heartbeat_s: float = Field(
        5.0, description="How often each worker writes its heartbeat row (s)."
    )
    worker_dead_after_s: float = Field(
        30.0,
        description="A running job whose worker sent no heartbeat for this long is taken back (s).",
    )
    transient_max_tries: int = Field(
        12,
        description="Requeues of a job after a database or storage outage (they use no attempt) "
        "before it fails with dependency_unavailable.",
    )
    transient_backoff_max_s: float = Field(
        15.0, description="Longest wait before a job requeued after an outage is sent again (s)."
    )
    release_retry_s: float = Field(
        900.0,
        description="A worker retries writing a job's outcome this long while the database is down (s).",
    )
    db_connect_timeout_s: float = Field(
        5.0, description="Connect timeout of every database connection (s)."
    )
    s3_connect_timeout_s: float = Field(3.0, description="Object storage connect timeout (s).")
    s3_read_timeout_s: float = Field(20.0, description="Object storage read timeout (s).")
    s3_max_attempts: int = Field(
        3, description="Tries of one object storage call (botocore retries)."
    )
    readiness_timeout_s: float = Field(
        1.5, description="/readyz checks its dependencies in parallel within this budget (s)."
    )
    stale_upload_s: float = Field(
        3600.0,
        description="Upload temp files and incomplete multipart uploads older than this are swept (s).",
    )
    sweep_interval_s: float = Field(
        600.0, description="How often the API and the relay sweep stale upload leftovers (s)."
    )

    # --- lab exports (HL7 v2 ORU^R01) -----------------------------------------------
    hl7_sending_application: str = Field(
        "MEDGEMMA-SPATIAL", description="HL7 MSH-3, sending application."
    )
    hl7_sending_facility: str = Field(
        "LAB", description="HL7 MSH-4, sending facility (also PID-3's authority)."
    )
    hl7_receiving_application: str = Field("LIMS", description="HL7 MSH-5, receiving application.")
    hl7_receiving_facility: str = Field("LAB", description="HL7 MSH-6, receiving facility.")
    hl7_patient_id: str = Field(
        "UNKNOWN",
        description="HL7 PID-3 placeholder: the service holds no patient data; the LIMS matches "
        "results on OBR-2 (external_sample_id).",
    )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return Settings()


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def allowed_report_backends(settings: Settings) -> list[str]:
    """The report backends a job may ask for (``MGS_REPORT_BACKENDS_ALLOWED``)."""
    return _csv(settings.report_backends_allowed) or list(
        dict.fromkeys(["template", settings.report_backend])
    )


def allowed_report_models(settings: Settings) -> list[str]:
    """The models a job may name in ``options.model`` (``MGS_REPORT_MODELS_ALLOWED``)."""
    return _csv(settings.report_models_allowed) or list(
        dict.fromkeys([settings.model_id, settings.openai_model])
    )


def analysis_budget(settings: Settings) -> Settings:
    """Settings whose ``memory_budget_mb`` is the analysis worker's memory limit where that is lower.

    The analysis worker's limit (``MGS_ANALYSIS_MEMORY_MB``) is the budget the preflight checks
    against and the budget Visium HD's bin-size choice fits; the validation step uses the same.
    """
    cap = settings.analysis_memory_mb
    if cap and cap < settings.memory_budget_mb:
        return settings.model_copy(update={"memory_budget_mb": cap})
    return settings
