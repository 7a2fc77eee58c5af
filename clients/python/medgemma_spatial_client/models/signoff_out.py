from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.signoff_out_status import SignoffOutStatus
from typing import cast
from uuid import UUID
import datetime






T = TypeVar("T", bound="SignoffOut")



@_attrs_define
class SignoffOut:
    """ 
        Attributes:
            comment (None | str):
            content_sha256 (str): sha256 of the signed content: the report.json artifact's bytes.
            key_id (UUID): The id of the reviewer key that signed.
            reviewer (str):
            seq (int): 1, 2, ... in signing order.
            signed_at (datetime.datetime):
            status (SignoffOutStatus):
     """

    comment: None | str
    content_sha256: str
    key_id: UUID
    reviewer: str
    seq: int
    signed_at: datetime.datetime
    status: SignoffOutStatus
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        comment: None | str
        comment = self.comment

        content_sha256 = self.content_sha256

        key_id = str(self.key_id)

        reviewer = self.reviewer

        seq = self.seq

        signed_at = self.signed_at.isoformat()

        status = self.status.value


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "comment": comment,
            "content_sha256": content_sha256,
            "key_id": key_id,
            "reviewer": reviewer,
            "seq": seq,
            "signed_at": signed_at,
            "status": status,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_comment(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        comment = _parse_comment(d.pop("comment"))


        content_sha256 = d.pop("content_sha256")

        key_id = UUID(d.pop("key_id"))




        reviewer = d.pop("reviewer")

        seq = d.pop("seq")

        signed_at = datetime.datetime.fromisoformat(d.pop("signed_at"))




        status = SignoffOutStatus(d.pop("status"))




        signoff_out = cls(
            comment=comment,
            content_sha256=content_sha256,
            key_id=key_id,
            reviewer=reviewer,
            seq=seq,
            signed_at=signed_at,
            status=status,
        )


        signoff_out.additional_properties = d
        return signoff_out

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
