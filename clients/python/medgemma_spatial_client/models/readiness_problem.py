from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..types import UNSET, Unset
from typing import cast

if TYPE_CHECKING:
  from ..models.readiness_problem_checks import ReadinessProblemChecks
  from ..models.readiness_problem_errors_type_0_item import ReadinessProblemErrorsType0Item





T = TypeVar("T", bound="ReadinessProblem")



@_attrs_define
class ReadinessProblem:
    """ ``/readyz`` not ready (code ``not_ready``): the problem plus each dependency's check.

        Attributes:
            checks (ReadinessProblemChecks): database, broker, storage: ok, error: <type> or slow: no answer within N s
            code (str):
            detail (str):
            status (int):
            title (str):
            type_ (str):
            errors (list[ReadinessProblemErrorsType0Item] | None | Unset): Field errors (code validation_error).
            instance (None | str | Unset):
     """

    checks: ReadinessProblemChecks
    code: str
    detail: str
    status: int
    title: str
    type_: str
    errors: list[ReadinessProblemErrorsType0Item] | None | Unset = UNSET
    instance: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)





    def to_dict(self) -> dict[str, Any]:
        from ..models.readiness_problem_checks import ReadinessProblemChecks # noqa: PLC0415
        from ..models.readiness_problem_errors_type_0_item import ReadinessProblemErrorsType0Item # noqa: PLC0415
        checks = self.checks.to_dict()

        code = self.code

        detail = self.detail

        status = self.status

        title = self.title

        type_ = self.type_

        errors: list[dict[str, Any]] | None | Unset
        if isinstance(self.errors, Unset):
            errors = UNSET
        elif isinstance(self.errors, list):
            errors = []
            for errors_type_0_item_data in self.errors:
                errors_type_0_item = errors_type_0_item_data.to_dict()
                errors.append(errors_type_0_item)


        else:
            errors = self.errors

        instance: None | str | Unset
        if isinstance(self.instance, Unset):
            instance = UNSET
        else:
            instance = self.instance


        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({
            "checks": checks,
            "code": code,
            "detail": detail,
            "status": status,
            "title": title,
            "type": type_,
        })
        if errors is not UNSET:
            field_dict["errors"] = errors
        if instance is not UNSET:
            field_dict["instance"] = instance

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.readiness_problem_checks import ReadinessProblemChecks # noqa: PLC0415
        from ..models.readiness_problem_errors_type_0_item import ReadinessProblemErrorsType0Item # noqa: PLC0415
        d = dict(src_dict)
        checks = ReadinessProblemChecks.from_dict(d.pop("checks"))




        code = d.pop("code")

        detail = d.pop("detail")

        status = d.pop("status")

        title = d.pop("title")

        type_ = d.pop("type")

        def _parse_errors(data: object) -> list[ReadinessProblemErrorsType0Item] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                errors_type_0 = []
                _errors_type_0 = data
                for errors_type_0_item_data in (_errors_type_0):
                    errors_type_0_item = ReadinessProblemErrorsType0Item.from_dict(errors_type_0_item_data)



                    errors_type_0.append(errors_type_0_item)

                return errors_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[ReadinessProblemErrorsType0Item] | None | Unset, data)

        errors = _parse_errors(d.pop("errors", UNSET))


        def _parse_instance(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        instance = _parse_instance(d.pop("instance", UNSET))


        readiness_problem = cls(
            checks=checks,
            code=code,
            detail=detail,
            status=status,
            title=title,
            type_=type_,
            errors=errors,
            instance=instance,
        )


        readiness_problem.additional_properties = d
        return readiness_problem

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
