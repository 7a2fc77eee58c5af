from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.signoff_create_status import SignoffCreateStatus
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="SignoffCreate")



@_attrs_define
class SignoffCreate:
    """ 
        Attributes:
            reviewer (str): The pathologist, by the name the lab knows them.
            status (SignoffCreateStatus): 'final' signs the preliminary report; 'amended' adds an addendum to a signed one
                (needs a comment).
            comment (None | str | Unset): Free text; for 'amended', the addendum.
     """

    reviewer: str
    status: SignoffCreateStatus
    comment: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        reviewer = self.reviewer

        status = self.status.value

        comment: None | str | Unset
        if isinstance(self.comment, Unset):
            comment = UNSET
        else:
            comment = self.comment


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "reviewer": reviewer,
            "status": status,
        })
        if comment is not UNSET:
            field_dict["comment"] = comment

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        reviewer = d.pop("reviewer")

        status = SignoffCreateStatus(d.pop("status"))




        def _parse_comment(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        comment = _parse_comment(d.pop("comment", UNSET))


        signoff_create = cls(
            reviewer=reviewer,
            status=status,
            comment=comment,
        )


        signoff_create.additional_properties = d
        return signoff_create

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
