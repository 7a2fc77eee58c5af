from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.report_history import ReportHistory
from ...models.signoff_create import SignoffCreate
from ...types import UNSET, Unset
from typing import cast
from uuid import UUID



def _get_kwargs(
    job_id: UUID,
    *,
    body: SignoffCreate,
    idempotency_key: None | str | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key



    

    

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/jobs/{job_id}/report/sign".format(job_id=quote(str(job_id), safe=""),),
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | ReportHistory | None:
    if response.status_code == 201:
        response_201 = ReportHistory.from_dict(response.json())



        return response_201

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 403:
        response_403 = Problem.from_dict(response.json())



        return response_403

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())



        return response_409

    if response.status_code == 422:
        response_422 = Problem.from_dict(response.json())



        return response_422

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())



        return response_429

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())



        return response_503

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | ReportHistory]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    body: SignoffCreate,
    idempotency_key: None | str | Unset = UNSET,

) -> Response[Problem | ReportHistory]:
    """ Sign Report

     Sign the report (reviewer keys only): ``final`` once, then ``amended`` with a comment
    (the addendum). Each sign-off is an immutable record; a webhook ``report.signed`` fires.
    A retry (same ``Idempotency-Key`` and body, or without a key the same sign-off again
    within ``MGS_SIGNOFF_REPEAT_WINDOW_S``) adds nothing and answers the same history with
    ``Idempotent-Replayed: true``.

    Args:
        job_id (UUID):
        idempotency_key (None | str | Unset):
        body (SignoffCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ReportHistory]
     """


    kwargs = _get_kwargs(
        job_id=job_id,
body=body,
idempotency_key=idempotency_key,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    body: SignoffCreate,
    idempotency_key: None | str | Unset = UNSET,

) -> Problem | ReportHistory | None:
    """ Sign Report

     Sign the report (reviewer keys only): ``final`` once, then ``amended`` with a comment
    (the addendum). Each sign-off is an immutable record; a webhook ``report.signed`` fires.
    A retry (same ``Idempotency-Key`` and body, or without a key the same sign-off again
    within ``MGS_SIGNOFF_REPEAT_WINDOW_S``) adds nothing and answers the same history with
    ``Idempotent-Replayed: true``.

    Args:
        job_id (UUID):
        idempotency_key (None | str | Unset):
        body (SignoffCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ReportHistory
     """


    return sync_detailed(
        job_id=job_id,
client=client,
body=body,
idempotency_key=idempotency_key,

    ).parsed

async def asyncio_detailed(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    body: SignoffCreate,
    idempotency_key: None | str | Unset = UNSET,

) -> Response[Problem | ReportHistory]:
    """ Sign Report

     Sign the report (reviewer keys only): ``final`` once, then ``amended`` with a comment
    (the addendum). Each sign-off is an immutable record; a webhook ``report.signed`` fires.
    A retry (same ``Idempotency-Key`` and body, or without a key the same sign-off again
    within ``MGS_SIGNOFF_REPEAT_WINDOW_S``) adds nothing and answers the same history with
    ``Idempotent-Replayed: true``.

    Args:
        job_id (UUID):
        idempotency_key (None | str | Unset):
        body (SignoffCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | ReportHistory]
     """


    kwargs = _get_kwargs(
        job_id=job_id,
body=body,
idempotency_key=idempotency_key,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    body: SignoffCreate,
    idempotency_key: None | str | Unset = UNSET,

) -> Problem | ReportHistory | None:
    """ Sign Report

     Sign the report (reviewer keys only): ``final`` once, then ``amended`` with a comment
    (the addendum). Each sign-off is an immutable record; a webhook ``report.signed`` fires.
    A retry (same ``Idempotency-Key`` and body, or without a key the same sign-off again
    within ``MGS_SIGNOFF_REPEAT_WINDOW_S``) adds nothing and answers the same history with
    ``Idempotent-Replayed: true``.

    Args:
        job_id (UUID):
        idempotency_key (None | str | Unset):
        body (SignoffCreate):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | ReportHistory
     """


    return (await asyncio_detailed(
        job_id=job_id,
client=client,
body=body,
idempotency_key=idempotency_key,

    )).parsed
