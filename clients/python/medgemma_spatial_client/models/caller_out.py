from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.caller_out_role import CallerOutRole
from typing import cast
from uuid import UUID

if TYPE_CHECKING:
  from ..models.caller_limits import CallerLimits





T = TypeVar("T", bound="CallerOut")



@_attrs_define
class CallerOut:
    """ 
        Attributes:
            key_id (UUID):
            limits (CallerLimits):
            role (CallerOutRole): reviewer keys may sign reports; submitter keys upload, submit and read.
            tenant_id (str):
     """

    key_id: UUID
    limits: CallerLimits
    role: CallerOutRole
    tenant_id: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.caller_limits import CallerLimits # noqa: PLC0415
        key_id = str(self.key_id)

        limits = self.limits.to_dict()

        role = self.role.value

        tenant_id = self.tenant_id


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "key_id": key_id,
            "limits": limits,
            "role": role,
            "tenant_id": tenant_id,
        })

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.caller_limits import CallerLimits # noqa: PLC0415
        d = dict(src_dict)
        key_id = UUID(d.pop("key_id"))




        limits = CallerLimits.from_dict(d.pop("limits"))




        role = CallerOutRole(d.pop("role"))




        tenant_id = d.pop("tenant_id")

        caller_out = cls(
            key_id=key_id,
            limits=limits,
            role=role,
            tenant_id=tenant_id,
        )


        caller_out.additional_properties = d
        return caller_out

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
