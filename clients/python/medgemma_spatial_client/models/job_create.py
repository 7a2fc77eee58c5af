from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
from uuid import UUID

if TYPE_CHECKING:
  from ..models.job_options import JobOptions





T = TypeVar("T", bound="JobCreate")



@_attrs_define
class JobCreate:
    """ 
        Attributes:
            upload_id (UUID):
            callback_url (None | str | Unset):
            external_sample_id (None | str | Unset):
            options (JobOptions | Unset): Options of a job submitted to the service.

                A subset of :class:`AnalysisOptions` and :class:`ReportOptions`; each field is the very
                ``FieldInfo`` (bounds, allowed values, description) of its stage model, so the API answers
                422 for anything a worker would refuse. ``markers`` names a table the server has.
     """

    upload_id: UUID
    callback_url: None | str | Unset = UNSET
    external_sample_id: None | str | Unset = UNSET
    options: JobOptions | Unset = UNSET





    def to_dict(self) -> dict[str, Any]:
        from ..models.job_options import JobOptions # noqa: PLC0415
        upload_id = str(self.upload_id)

        callback_url: None | str | Unset
        if isinstance(self.callback_url, Unset):
            callback_url = UNSET
        else:
            callback_url = self.callback_url

        external_sample_id: None | str | Unset
        if isinstance(self.external_sample_id, Unset):
            external_sample_id = UNSET
        else:
            external_sample_id = self.external_sample_id

        options: dict[str, Any] | Unset = UNSET
        if not isinstance(self.options, Unset):
            options = self.options.to_dict()


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "upload_id": upload_id,
        })
        if callback_url is not UNSET:
            field_dict["callback_url"] = callback_url
        if external_sample_id is not UNSET:
            field_dict["external_sample_id"] = external_sample_id
        if options is not UNSET:
            field_dict["options"] = options

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.job_options import JobOptions # noqa: PLC0415
        d = dict(src_dict)
        upload_id = UUID(d.pop("upload_id"))




        def _parse_callback_url(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        callback_url = _parse_callback_url(d.pop("callback_url", UNSET))


        def _parse_external_sample_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        external_sample_id = _parse_external_sample_id(d.pop("external_sample_id", UNSET))


        _options = d.pop("options", UNSET)
        options: JobOptions | Unset
        if isinstance(_options,  Unset):
            options = UNSET
        else:
            options = JobOptions.from_dict(_options)




        job_create = cls(
            upload_id=upload_id,
            callback_url=callback_url,
            external_sample_id=external_sample_id,
            options=options,
        )

        return job_create

