from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset






T = TypeVar("T", bound="UploadSessionCreate")



@_attrs_define
class UploadSessionCreate:
    """ 
        Attributes:
            size (int): Total size of the file in bytes (at most MGS_MAX_UPLOAD_BYTES).
            filename (str | Unset): Display name only. Default: 'upload'.
     """

    size: int
    filename: str | Unset = 'upload'





    def to_dict(self) -> dict[str, Any]:
        size = self.size

        filename = self.filename


        field_dict: dict[str, Any] = {}

        field_dict.update({
            "size": size,
        })
        if filename is not UNSET:
            field_dict["filename"] = filename

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        size = d.pop("size")

        filename = d.pop("filename", UNSET)

        upload_session_create = cls(
            size=size,
            filename=filename,
        )

        return upload_session_create

