from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.problem import Problem
from ...models.upload_session_out import UploadSessionOut
from ...types import File, FileTypes
from io import BytesIO
from typing import cast
from uuid import UUID



def _get_kwargs(
    session_id: UUID,
    *,
    body: File,
    content_range: str,

) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    headers["Content-Range"] = content_range



    

    

    _kwargs: dict[str, Any] = {
        "method": "put",
        "url": "/v1/uploads/sessions/{session_id}".format(session_id=quote(str(session_id), safe=""),),
    }

    _kwargs["content"] = body.payload
    headers["Content-Type"] = "application/octet-stream"

    _kwargs["headers"] = headers
    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Problem | UploadSessionOut | None:
    if response.status_code == 200:
        response_200 = UploadSessionOut.from_dict(response.json())



        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())



        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())



        return response_404

    if response.status_code == 408:
        response_408 = Problem.from_dict(response.json())



        return response_408

    if response.status_code == 409:
        response_409 = Problem.from_dict(response.json())



        return response_409

    if response.status_code == 416:
        response_416 = Problem.from_dict(response.json())



        return response_416

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[Problem | UploadSessionOut]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    session_id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,

) -> Response[Problem | UploadSessionOut]:
    """ Put Upload Chunk

     Send one chunk, in order; re-sending a received chunk is harmless.

    Args:
        session_id (UUID):
        content_range (str):  Example: bytes 0-8388607/20000000.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | UploadSessionOut]
     """


    kwargs = _get_kwargs(
        session_id=session_id,
body=body,
content_range=content_range,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    session_id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,

) -> Problem | UploadSessionOut | None:
    """ Put Upload Chunk

     Send one chunk, in order; re-sending a received chunk is harmless.

    Args:
        session_id (UUID):
        content_range (str):  Example: bytes 0-8388607/20000000.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | UploadSessionOut
     """


    return sync_detailed(
        session_id=session_id,
client=client,
body=body,
content_range=content_range,

    ).parsed

async def asyncio_detailed(
    session_id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,

) -> Response[Problem | UploadSessionOut]:
    """ Put Upload Chunk

     Send one chunk, in order; re-sending a received chunk is harmless.

    Args:
        session_id (UUID):
        content_range (str):  Example: bytes 0-8388607/20000000.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[Problem | UploadSessionOut]
     """


    kwargs = _get_kwargs(
        session_id=session_id,
body=body,
content_range=content_range,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    session_id: UUID,
    *,
    client: AuthenticatedClient,
    body: File,
    content_range: str,

) -> Problem | UploadSessionOut | None:
    """ Put Upload Chunk

     Send one chunk, in order; re-sending a received chunk is harmless.

    Args:
        session_id (UUID):
        content_range (str):  Example: bytes 0-8388607/20000000.
        body (File):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Problem | UploadSessionOut
     """


    return (await asyncio_detailed(
        session_id=session_id,
client=client,
body=body,
content_range=content_range,

    )).parsed
