from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, BinaryIO, TextIO, TYPE_CHECKING, Generator

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

from ..models.job_options_species import JobOptionsSpecies
from ..models.prompt_strategy import PromptStrategy
from ..models.report_backend import ReportBackend
from ..types import UNSET, Unset
from typing import cast






T = TypeVar("T", bound="JobOptions")



@_attrs_define
class JobOptions:
    """ Options of a job submitted to the service.

    A subset of :class:`AnalysisOptions` and :class:`ReportOptions`; each field is the very
    ``FieldInfo`` (bounds, allowed values, description) of its stage model, so the API answers
    422 for anything a worker would refuse. ``markers`` names a table the server has.

        Attributes:
            backend (None | ReportBackend | Unset): Who writes the narrative (default: the server's MGS_REPORT_BACKEND);
                only backends in the server's MGS_REPORT_BACKENDS_ALLOWED (422 backend_not_allowed).
            markers (None | str | Unset): Marker table: a path (CLI) or a name the server knows.
            model (None | str | Unset): Model id (transformers) or served model name (openai); default: the server's. Only
                models in the server's MGS_REPORT_MODELS_ALLOWED (422 model_not_allowed).
            n_domains (int | None | Unset): Fix the number of spatial domains (None: chosen automatically).
            organs (list[str] | None | Unset): Organs of a PanglaoDB table to keep (None: all).
            prompt_strategy (PromptStrategy | Unset): How the tissue-blind prompt asks for the narrative (see
                :mod:`core.report.prompts`).
            resolution (float | Unset): Leiden resolution, 0.1 to 2.0. Default: 1.0.
            seed (int | Unset): Seed of every randomised step. Default: 0.
            species (JobOptionsSpecies | Unset): Species rows of a PanglaoDB table to keep. Default: JobOptionsSpecies.HS.
            tiles (int | Unset): Extra high-magnification H&E tiles for the model. Default: 0.
     """

    backend: None | ReportBackend | Unset = UNSET
    markers: None | str | Unset = UNSET
    model: None | str | Unset = UNSET
    n_domains: int | None | Unset = UNSET
    organs: list[str] | None | Unset = UNSET
    prompt_strategy: PromptStrategy | Unset = UNSET
    resolution: float | Unset = 1.0
    seed: int | Unset = 0
    species: JobOptionsSpecies | Unset = JobOptionsSpecies.HS
    tiles: int | Unset = 0





    def to_dict(self) -> dict[str, Any]:
        backend: None | str | Unset
        if isinstance(self.backend, Unset):
            backend = UNSET
        elif isinstance(self.backend, ReportBackend):
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

        n_domains: int | None | Unset
        if isinstance(self.n_domains, Unset):
            n_domains = UNSET
        else:
            n_domains = self.n_domains

        organs: list[str] | None | Unset
        if isinstance(self.organs, Unset):
            organs = UNSET
        elif isinstance(self.organs, list):
            organs = self.organs


        else:
            organs = self.organs

        prompt_strategy: str | Unset = UNSET
        if not isinstance(self.prompt_strategy, Unset):
            prompt_strategy = self.prompt_strategy.value


        resolution = self.resolution

        seed = self.seed

        species: str | Unset = UNSET
        if not isinstance(self.species, Unset):
            species = self.species.value


        tiles = self.tiles


        field_dict: dict[str, Any] = {}

        field_dict.update({
        })
        if backend is not UNSET:
            field_dict["backend"] = backend
        if markers is not UNSET:
            field_dict["markers"] = markers
        if model is not UNSET:
            field_dict["model"] = model
        if n_domains is not UNSET:
            field_dict["n_domains"] = n_domains
        if organs is not UNSET:
            field_dict["organs"] = organs
        if prompt_strategy is not UNSET:
            field_dict["prompt_strategy"] = prompt_strategy
        if resolution is not UNSET:
            field_dict["resolution"] = resolution
        if seed is not UNSET:
            field_dict["seed"] = seed
        if species is not UNSET:
            field_dict["species"] = species
        if tiles is not UNSET:
            field_dict["tiles"] = tiles

        return field_dict



    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        def _parse_backend(data: object) -> None | ReportBackend | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                backend_type_0 = ReportBackend(data)



                return backend_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | ReportBackend | Unset, data)

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


        def _parse_n_domains(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        n_domains = _parse_n_domains(d.pop("n_domains", UNSET))


        def _parse_organs(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                organs_type_0 = cast(list[str], data)

                return organs_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        organs = _parse_organs(d.pop("organs", UNSET))


        _prompt_strategy = d.pop("prompt_strategy", UNSET)
        prompt_strategy: PromptStrategy | Unset
        if isinstance(_prompt_strategy,  Unset):
            prompt_strategy = UNSET
        else:
            prompt_strategy = PromptStrategy(_prompt_strategy)




        resolution = d.pop("resolution", UNSET)

        seed = d.pop("seed", UNSET)

        _species = d.pop("species", UNSET)
        species: JobOptionsSpecies | Unset
        if isinstance(_species,  Unset):
            species = UNSET
        else:
            species = JobOptionsSpecies(_species)




        tiles = d.pop("tiles", UNSET)

        job_options = cls(
            backend=backend,
            markers=markers,
            model=model,
            n_domains=n_domains,
            organs=organs,
            prompt_strategy=prompt_strategy,
            resolution=resolution,
            seed=seed,
            species=species,
            tiles=tiles,
        )

        return job_options

