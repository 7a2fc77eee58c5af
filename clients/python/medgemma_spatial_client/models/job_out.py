from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.job_stage import JobStage
from ..models.job_state import JobState
from ..models.report_status import ReportStatus
from ..types import UNSET, Unset
from typing import cast
from uuid import UUID
import datetime

if TYPE_CHECKING:
  from ..models.job_error import JobError
  from ..models.job_links import JobLinks
  from ..models.job_out_options import JobOutOptions
  from ..models.job_out_provenance import JobOutProvenance
  from ..models.job_report import JobReport





T = TypeVar("T", bound="JobOut")



@_attrs_define
class JobOut:
    """ 
        Attributes:
            attempts (int): Worker claims so far, all stages together (a clean run ends at 2: analysis, report); each claim
                writes under jobs/{id}/attempt-{n}/.
            callback_url (None | str):
            created_at (datetime.datetime):
            error (JobError | None):
            external_sample_id (None | str):
            finished_at (datetime.datetime | None):
            id (UUID):
            links (JobLinks):
            options (JobOutOptions):
            progress (float):
            stage (JobStage): The stage a job is in: validating its input, analyzing, reporting.
            started_at (datetime.datetime | None):
            state (JobState): The state of a job: queued, running, then succeeded, failed or canceled (terminal).
            updated_at (datetime.datetime):
            upload_id (UUID):
            provenance (JobOutProvenance | Unset): What the job ran with: validation summary, analysis versions and
                parameters, report backend, model id and prompt hash (filled in as stages finish).
            report (JobReport | None | Unset): A succeeded job's report in brief: whether it has a narrative, and why not.
            report_status (None | ReportStatus | Unset): The report's sign-off status once the job has succeeded:
                preliminary (unsigned), final or amended; null before.
     """

    attempts: int
    callback_url: None | str
    created_at: datetime.datetime
    error: JobError | None
    external_sample_id: None | str
    finished_at: datetime.datetime | None
    id: UUID
    links: JobLinks
    options: JobOutOptions
    progress: float
    stage: JobStage
    started_at: datetime.datetime | None
    state: JobState
    updated_at: datetime.datetime
    upload_id: UUID
    provenance: JobOutProvenance | Unset = UNSET
    report: JobReport | None | Unset = UNSET
    report_status: None | ReportStatus | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.job_error import JobError # noqa: PLC0415
        from ..models.job_links import JobLinks # noqa: PLC0415
        from ..models.job_out_options import JobOutOptions # noqa: PLC0415
        from ..models.job_out_provenance import JobOutProvenance # noqa: PLC0415
        from ..models.job_report import JobReport # noqa: PLC0415
        attempts = self.attempts

        callback_url: None | str
        callback_url = self.callback_url

        created_at = self.created_at.isoformat()

        error: dict[str, Any] | None
        if isinstance(self.error, JobError):
            error = self.error.to_dict()
        else:
            error = self.error

        external_sample_id: None | str
        external_sample_id = self.external_sample_id

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = str(self.id)

        links = self.links.to_dict()

        options = self.options.to_dict()

        progress = self.progress

        stage = self.stage.value

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        state = self.state.value

        updated_at = self.updated_at.isoformat()

        upload_id = str(self.upload_id)

        provenance: dict[str, Any] | Unset = UNSET
        if not isinstance(self.provenance, Unset):
            provenance = self.provenance.to_dict()

        report: dict[str, Any] | None | Unset
        if isinstance(self.report, Unset):
            report = UNSET
        elif isinstance(self.report, JobReport):
            report = self.report.to_dict()
        else:
            report = self.report

        report_status: None | str | Unset
        if isinstance(self.report_status, Unset):
            report_status = UNSET
        elif isinstance(self.report_status, ReportStatus):
            report_status = self.report_status.value
        else:
            report_status = self.report_status


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "attempts": attempts,
            "callback_url": callback_url,
            "created_at": created_at,
            "error": error,
            "external_sample_id": external_sample_id,
            "finished_at": finished_at,
            "id": id,
            "links": links,
            "options": options,
            "progress": progress,
            "stage": stage,
            "started_at": started_at,
            "state": state,
            "updated_at": updated_at,
            "upload_id": upload_id,
        })
        if provenance is not UNSET:
            field_dict["provenance"] = provenance
        if report is not UNSET:
            field_dict["report"] = report
        if report_status is not UNSET:
            field_dict["report_status"] = report_status

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_error import JobError # noqa: PLC0415
        from ..models.job_links import JobLinks # noqa: PLC0415
        from ..models.job_out_options import JobOutOptions # noqa: PLC0415
        from ..models.job_out_provenance import JobOutProvenance # noqa: PLC0415
        from ..models.job_report import JobReport # noqa: PLC0415
        d = dict(src_dict)
        attempts = d.pop("attempts")

        def _parse_callback_url(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        callback_url = _parse_callback_url(d.pop("callback_url"))


        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        def _parse_error(data: object) -> JobError | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = JobError.from_dict(data)



                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobError | None, data)

        error = _parse_error(d.pop("error"))


        def _parse_external_sample_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        external_sample_id = _parse_external_sample_id(d.pop("external_sample_id"))


        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)



                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))


        id = UUID(d.pop("id"))




        links = JobLinks.from_dict(d.pop("links"))




        options = JobOutOptions.from_dict(d.pop("options"))




        progress = d.pop("progress")

        stage = JobStage(d.pop("stage"))




        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)



                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))


        state = JobState(d.pop("state"))




        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        upload_id = UUID(d.pop("upload_id"))




        _provenance = d.pop("provenance", UNSET)
        provenance: JobOutProvenance | Unset
        if isinstance(_provenance,  Unset):
            provenance = UNSET
        else:
            provenance = JobOutProvenance.from_dict(_provenance)




        def _parse_report(data: object) -> JobReport | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                report_type_0 = JobReport.from_dict(data)



                return report_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobReport | None | Unset, data)

        report = _parse_report(d.pop("report", UNSET))


        def _parse_report_status(data: object) -> None | ReportStatus | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                report_status_type_0 = ReportStatus(data)



                return report_status_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ReportStatus | Unset, data)

        report_status = _parse_report_status(d.pop("report_status", UNSET))


        job_out = cls(
            attempts=attempts,
            callback_url=callback_url,
            created_at=created_at,
            error=error,
            external_sample_id=external_sample_id,
            finished_at=finished_at,
            id=id,
            links=links,
            options=options,
            progress=progress,
            stage=stage,
            started_at=started_at,
            state=state,
            updated_at=updated_at,
            upload_id=upload_id,
            provenance=provenance,
            report=report,
            report_status=report_status,
        )


        job_out.additional_properties = d
        return job_out

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
