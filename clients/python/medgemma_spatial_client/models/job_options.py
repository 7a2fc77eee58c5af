from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.job_options_backend_type_0 import JobOptionsBackendType0
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="JobOptions")



@_attrs_define
class JobOptions:
    """ 
        Attributes:
            backend (JobOptionsBackendType0 | None | Unset): Who writes the narrative (default: the server's
                MGS_REPORT_BACKEND); only backends in the server's MGS_REPORT_BACKENDS_ALLOWED (422 backend_not_allowed).
            markers (None | str | Unset): Marker table name (default: shipped table).
            model (None | str | Unset): Model id (transformers) or served model name (openai); default: the server's. Only
                models in the server's MGS_REPORT_MODELS_ALLOWED (422 model_not_allowed).
            prompt_strategy (str | Unset):  Default: 'anti_parroting'.
            resolution (float | Unset): Leiden resolution. Default: 1.0.
            seed (int | Unset):  Default: 0.
     """

    backend: JobOptionsBackendType0 | None | Unset = UNSET
    markers: None | str | Unset = UNSET
    model: None | str | Unset = UNSET
    prompt_strategy: str | Unset = 'anti_parroting'
    resolution: float | Unset = 1.0
    seed: int | Unset = 0





    def to_dict(self) -> dict[str, Any]:
        backend: None | str | Unset
        if isinstance(self.backend, Unset):
            backend = UNSET
        elif isinstance(self.backend, JobOptionsBackendType0):
            backend = self.backend.value
        else:
            backend = self.backend

        markers: None | str | Unset
        if isinstance(self.markers, Unset):
            markers = UNSET
        else:
            markers = self.markers

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        prompt_strategy = self.prompt_strategy

        resolution = self.resolution

        seed = self.seed


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if backend is not UNSET:
            field_dict["backend"] = backend
        if markers is not UNSET:
            field_dict["markers"] = markers
        if model is not UNSET:
            field_dict["model"] = model
        if prompt_strategy is not UNSET:
            field_dict["prompt_strategy"] = prompt_strategy
        if resolution is not UNSET:
            field_dict["resolution"] = resolution
        if seed is not UNSET:
            field_dict["seed"] = seed

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_backend(data: object) -> JobOptionsBackendType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                backend_type_0 = JobOptionsBackendType0(data)



                return backend_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobOptionsBackendType0 | None | Unset, data)

        backend = _parse_backend(d.pop("backend", UNSET))


        def _parse_markers(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        markers = _parse_markers(d.pop("markers", UNSET))


        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))


        prompt_strategy = d.pop("prompt_strategy", UNSET)

        resolution = d.pop("resolution", UNSET)

        seed = d.pop("seed", UNSET)

        job_options = cls(
            backend=backend,
            markers=markers,
            model=model,
            prompt_strategy=prompt_strategy,
            resolution=resolution,
            seed=seed,
        )

        return job_options

