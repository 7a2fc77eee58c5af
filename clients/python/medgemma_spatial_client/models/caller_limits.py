from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset







T = TypeVar("T", bound="CallerLimits")



@_attrs_define
class CallerLimits:
    """ 
        Attributes:
            max_upload_bytes (int): Largest accepted upload (MGS_MAX_UPLOAD_BYTES).
            upload_chunk_bytes (int): Chunk size of resumable uploads (MGS_UPLOAD_CHUNK_BYTES); a larger file is best sent
                through POST /v1/uploads/sessions.
            upload_idle_timeout_s (float): An upload body that sends nothing for this long is cut off (408).
     """

    max_upload_bytes: int
    upload_chunk_bytes: int
    upload_idle_timeout_s: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        max_upload_bytes = self.max_upload_bytes

        upload_chunk_bytes = self.upload_chunk_bytes

        upload_idle_timeout_s = self.upload_idle_timeout_s


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "max_upload_bytes": max_upload_bytes,
            "upload_chunk_bytes": upload_chunk_bytes,
            "upload_idle_timeout_s": upload_idle_timeout_s,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        max_upload_bytes = d.pop("max_upload_bytes")

        upload_chunk_bytes = d.pop("upload_chunk_bytes")

        upload_idle_timeout_s = d.pop("upload_idle_timeout_s")

        caller_limits = cls(
            max_upload_bytes=max_upload_bytes,
            upload_chunk_bytes=upload_chunk_bytes,
            upload_idle_timeout_s=upload_idle_timeout_s,
        )


        caller_limits.additional_properties = d
        return caller_limits

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
