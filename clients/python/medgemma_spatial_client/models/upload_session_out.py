from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast
from uuid import UUID
import datetime






T = TypeVar("T", bound="UploadSessionOut")



@_attrs_define
class UploadSessionOut:
    """ 
        Attributes:
            chunk_size (int): Every chunk but the last is exactly this long, starting at a multiple of it.
            created_at (datetime.datetime):
            filename (str):
            id (UUID):
            received (int): Bytes received so far: the next chunk starts here.
            size (int): Total size of the file (bytes).
            updated_at (datetime.datetime):
            upload_id (None | Unset | UUID): The upload this session became (after complete).
     """

    chunk_size: int
    created_at: datetime.datetime
    filename: str
    id: UUID
    received: int
    size: int
    updated_at: datetime.datetime
    upload_id: None | Unset | UUID = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        chunk_size = self.chunk_size

        created_at = self.created_at.isoformat()

        filename = self.filename

        id = str(self.id)

        received = self.received

        size = self.size

        updated_at = self.updated_at.isoformat()

        upload_id: None | str | Unset
        if isinstance(self.upload_id, Unset):
            upload_id = UNSET
        elif isinstance(self.upload_id, UUID):
            upload_id = str(self.upload_id)
        else:
            upload_id = self.upload_id


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "chunk_size": chunk_size,
            "created_at": created_at,
            "filename": filename,
            "id": id,
            "received": received,
            "size": size,
            "updated_at": updated_at,
        })
        if upload_id is not UNSET:
            field_dict["upload_id"] = upload_id

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        chunk_size = d.pop("chunk_size")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))




        filename = d.pop("filename")

        id = UUID(d.pop("id"))




        received = d.pop("received")

        size = d.pop("size")

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))




        def _parse_upload_id(data: object) -> None | Unset | UUID:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                upload_id_type_0 = UUID(data)



                return upload_id_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | Unset | UUID, data)

        upload_id = _parse_upload_id(d.pop("upload_id", UNSET))


        upload_session_out = cls(
            chunk_size=chunk_size,
            created_at=created_at,
            filename=filename,
            id=id,
            received=received,
            size=size,
            updated_at=updated_at,
            upload_id=upload_id,
        )


        upload_session_out.additional_properties = d
        return upload_session_out

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
