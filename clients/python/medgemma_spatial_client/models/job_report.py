from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.job_report_narrative import JobReportNarrative
from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.job_error import JobError





T = TypeVar("T", bound="JobReport")



@_attrs_define
class JobReport:
    """ 
        Attributes:
            narrative (JobReportNarrative): 'withheld': the report was written with the computed findings and no narrative;
                'reason' says why.
            reason (JobError | None | Unset): Why the narrative is missing: code 'prompt_leakage' (the leakage gate refused
                the prompt; nothing was sent to any model).
     """

    narrative: JobReportNarrative
    reason: JobError | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.job_error import JobError # noqa: PLC0415
        narrative = self.narrative.value

        reason: dict[str, Any] | None | Unset
        if isinstance(self.reason, Unset):
            reason = UNSET
        elif isinstance(self.reason, JobError):
            reason = self.reason.to_dict()
        else:
            reason = self.reason


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "narrative": narrative,
        })
        if reason is not UNSET:
            field_dict["reason"] = reason

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_error import JobError # noqa: PLC0415
        d = dict(src_dict)
        narrative = JobReportNarrative(d.pop("narrative"))




        def _parse_reason(data: object) -> JobError | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                reason_type_0 = JobError.from_dict(data)



                return reason_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobError | None | Unset, data)

        reason = _parse_reason(d.pop("reason", UNSET))


        job_report = cls(
            narrative=narrative,
            reason=reason,
        )


        job_report.additional_properties = d
        return job_report

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
