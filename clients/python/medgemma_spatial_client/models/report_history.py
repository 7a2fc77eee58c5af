from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.report_status import ReportStatus
from typing import cast
from uuid import UUID

if TYPE_CHECKING:
  from ..models.signoff_out import SignoffOut





T = TypeVar("T", bound="ReportHistory")



@_attrs_define
class ReportHistory:
    """ 
        Attributes:
            job_id (UUID):
            report_status (ReportStatus): The status of a report: preliminary until a reviewer signs it final, then amended.
            signoffs (list[SignoffOut]):
     """

    job_id: UUID
    report_status: ReportStatus
    signoffs: list[SignoffOut]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.signoff_out import SignoffOut # noqa: PLC0415
        job_id = str(self.job_id)

        report_status = self.report_status.value

        signoffs = []
        for signoffs_item_data in self.signoffs:
            signoffs_item = signoffs_item_data.to_dict()
            signoffs.append(signoffs_item)




        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "job_id": job_id,
            "report_status": report_status,
            "signoffs": signoffs,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.signoff_out import SignoffOut # noqa: PLC0415
        d = dict(src_dict)
        job_id = UUID(d.pop("job_id"))




        report_status = ReportStatus(d.pop("report_status"))




        signoffs = []
        _signoffs = d.pop("signoffs")
        for signoffs_item_data in (_signoffs):
            signoffs_item = SignoffOut.from_dict(signoffs_item_data)



            signoffs.append(signoffs_item)


        report_history = cls(
            job_id=job_id,
            report_status=report_status,
            signoffs=signoffs,
        )


        report_history.additional_properties = d
        return report_history

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
