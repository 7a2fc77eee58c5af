from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.job_out import JobOut
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast
from uuid import UUID



def _get_kwargs(
    job_id: UUID,
    *,
    wait: int | Unset = 0,
    if_none_match: None | str | Unset = UNSET,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(if_none_match, Unset):
        headers["If-None-Match"] = if_none_match



    

    params: dict[str, Any] = {}

    params["wait"] = wait


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs/{job_id}".format(job_id=quote(str(job_id), safe=""),),
        "params": params,
    }


    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Any | JobOut | Problem | None:
    if response.status_code == 200:
        response_200 = JobOut.from_dict(response.json())



        return response_200

    if response.status_code == 304:
        response_304 = cast(Any, None)
        return response_304

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Any | JobOut | Problem]:
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
    wait: int | Unset = 0,
    if_none_match: None | str | Unset = UNSET,

) -> Response[Any | JobOut | Problem]:
    """ Get Job

     State, stage, progress, attempts, timestamps and error of one job.

    Answers an ``ETag``; with ``If-None-Match`` of the current one, 304. With ``?wait=N``
    it returns as soon as the state or stage changes (or after N s: 304 if nothing did).

    Args:
        job_id (UUID):
        wait (int | Unset): Long poll: hold the request up to this many seconds until the job's
            state or stage changes (answers at once if the If-None-Match ETag is stale or the job has
            finished). Default: 0.
        if_none_match (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | JobOut | Problem]
     """


    kwargs = _get_kwargs(
        job_id=job_id,
wait=wait,
if_none_match=if_none_match,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    wait: int | Unset = 0,
    if_none_match: None | str | Unset = UNSET,

) -> Any | JobOut | Problem | None:
    """ Get Job

     State, stage, progress, attempts, timestamps and error of one job.

    Answers an ``ETag``; with ``If-None-Match`` of the current one, 304. With ``?wait=N``
    it returns as soon as the state or stage changes (or after N s: 304 if nothing did).

    Args:
        job_id (UUID):
        wait (int | Unset): Long poll: hold the request up to this many seconds until the job's
            state or stage changes (answers at once if the If-None-Match ETag is stale or the job has
            finished). Default: 0.
        if_none_match (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | JobOut | Problem
     """


    return sync_detailed(
        job_id=job_id,
client=client,
wait=wait,
if_none_match=if_none_match,

    ).parsed

async def asyncio_detailed(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    wait: int | Unset = 0,
    if_none_match: None | str | Unset = UNSET,

) -> Response[Any | JobOut | Problem]:
    """ Get Job

     State, stage, progress, attempts, timestamps and error of one job.

    Answers an ``ETag``; with ``If-None-Match`` of the current one, 304. With ``?wait=N``
    it returns as soon as the state or stage changes (or after N s: 304 if nothing did).

    Args:
        job_id (UUID):
        wait (int | Unset): Long poll: hold the request up to this many seconds until the job's
            state or stage changes (answers at once if the If-None-Match ETag is stale or the job has
            finished). Default: 0.
        if_none_match (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Any | JobOut | Problem]
     """


    kwargs = _get_kwargs(
        job_id=job_id,
wait=wait,
if_none_match=if_none_match,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    wait: int | Unset = 0,
    if_none_match: None | str | Unset = UNSET,

) -> Any | JobOut | Problem | None:
    """ Get Job

     State, stage, progress, attempts, timestamps and error of one job.

    Answers an ``ETag``; with ``If-None-Match`` of the current one, 304. With ``?wait=N``
    it returns as soon as the state or stage changes (or after N s: 304 if nothing did).

    Args:
        job_id (UUID):
        wait (int | Unset): Long poll: hold the request up to this many seconds until the job's
            state or stage changes (answers at once if the If-None-Match ETag is stale or the job has
            finished). Default: 0.
        if_none_match (None | str | Unset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Any | JobOut | Problem
     """


    return (await asyncio_detailed(
        job_id=job_id,
client=client,
wait=wait,
if_none_match=if_none_match,

    )).parsed
