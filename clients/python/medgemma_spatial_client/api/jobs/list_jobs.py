from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.job_page import JobPage
from ...models.job_state import JobState
from ...models.list_jobs_sort import ListJobsSort
from ...models.problem import Problem
from ...models.report_status import ReportStatus
from ...types import UNSET, Unset
from typing import cast
import datetime



def _get_kwargs(
    *,
    state: JobState | None | Unset = UNSET,
    report_status: None | ReportStatus | Unset = UNSET,
    external_sample_id: None | str | Unset = UNSET,
    created_after: datetime.datetime | None | Unset = UNSET,
    created_before: datetime.datetime | None | Unset = UNSET,
    sort: ListJobsSort | Unset = ListJobsSort.VALUE_0,
    cursor: None | str | Unset = UNSET,
    limit: int | Unset = 50,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    json_state: None | str | Unset
    if isinstance(state, Unset):
        json_state = UNSET
    elif isinstance(state, JobState):
        json_state = state.value
    else:
        json_state = state
    params["state"] = json_state

    json_report_status: None | str | Unset
    if isinstance(report_status, Unset):
        json_report_status = UNSET
    elif isinstance(report_status, ReportStatus):
        json_report_status = report_status.value
    else:
        json_report_status = report_status
    params["report_status"] = json_report_status

    json_external_sample_id: None | str | Unset
    if isinstance(external_sample_id, Unset):
        json_external_sample_id = UNSET
    else:
        json_external_sample_id = external_sample_id
    params["external_sample_id"] = json_external_sample_id

    json_created_after: None | str | Unset
    if isinstance(created_after, Unset):
        json_created_after = UNSET
    elif isinstance(created_after, datetime.datetime):
        json_created_after = created_after.isoformat()
    else:
        json_created_after = created_after
    params["created_after"] = json_created_after

    json_created_before: None | str | Unset
    if isinstance(created_before, Unset):
        json_created_before = UNSET
    elif isinstance(created_before, datetime.datetime):
        json_created_before = created_before.isoformat()
    else:
        json_created_before = created_before
    params["created_before"] = json_created_before

    json_sort: str | Unset = UNSET
    if not isinstance(sort, Unset):
        json_sort = sort.value

    params["sort"] = json_sort

    json_cursor: None | str | Unset
    if isinstance(cursor, Unset):
        json_cursor = UNSET
    else:
        json_cursor = cursor
    params["cursor"] = json_cursor

    params["limit"] = limit


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs",
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> JobPage | Problem | None:
    if response.status_code == 200:
        response_200 = JobPage.from_dict(response.json())



        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[JobPage | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    state: JobState | None | Unset = UNSET,
    report_status: None | ReportStatus | Unset = UNSET,
    external_sample_id: None | str | Unset = UNSET,
    created_after: datetime.datetime | None | Unset = UNSET,
    created_before: datetime.datetime | None | Unset = UNSET,
    sort: ListJobsSort | Unset = ListJobsSort.VALUE_0,
    cursor: None | str | Unset = UNSET,
    limit: int | Unset = 50,

) -> Response[JobPage | Problem]:
    """ List Jobs

     Jobs, newest first (or oldest with ``sort=created_at``), filtered; follow
    ``next_cursor`` for the next page (keyset paging: pages hold while jobs arrive).

    Args:
        state (JobState | None | Unset):
        report_status (None | ReportStatus | Unset): preliminary: succeeded and unsigned; final or
            amended: the latest sign-off's status.
        external_sample_id (None | str | Unset):
        created_after (datetime.datetime | None | Unset):
        created_before (datetime.datetime | None | Unset):
        sort (ListJobsSort | Unset): -created_at: newest first (default); created_at: oldest
            first. Default: ListJobsSort.VALUE_0.
        cursor (None | str | Unset):
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[JobPage | Problem]
     """


    kwargs = _get_kwargs(
        state=state,
report_status=report_status,
external_sample_id=external_sample_id,
created_after=created_after,
created_before=created_before,
sort=sort,
cursor=cursor,
limit=limit,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    *,
    client: AuthenticatedClient,
    state: JobState | None | Unset = UNSET,
    report_status: None | ReportStatus | Unset = UNSET,
    external_sample_id: None | str | Unset = UNSET,
    created_after: datetime.datetime | None | Unset = UNSET,
    created_before: datetime.datetime | None | Unset = UNSET,
    sort: ListJobsSort | Unset = ListJobsSort.VALUE_0,
    cursor: None | str | Unset = UNSET,
    limit: int | Unset = 50,

) -> JobPage | Problem | None:
    """ List Jobs

     Jobs, newest first (or oldest with ``sort=created_at``), filtered; follow
    ``next_cursor`` for the next page (keyset paging: pages hold while jobs arrive).

    Args:
        state (JobState | None | Unset):
        report_status (None | ReportStatus | Unset): preliminary: succeeded and unsigned; final or
            amended: the latest sign-off's status.
        external_sample_id (None | str | Unset):
        created_after (datetime.datetime | None | Unset):
        created_before (datetime.datetime | None | Unset):
        sort (ListJobsSort | Unset): -created_at: newest first (default); created_at: oldest
            first. Default: ListJobsSort.VALUE_0.
        cursor (None | str | Unset):
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        JobPage | Problem
     """


    return sync_detailed(
        client=client,
state=state,
report_status=report_status,
external_sample_id=external_sample_id,
created_after=created_after,
created_before=created_before,
sort=sort,
cursor=cursor,
limit=limit,

    ).parsed

async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    state: JobState | None | Unset = UNSET,
    report_status: None | ReportStatus | Unset = UNSET,
    external_sample_id: None | str | Unset = UNSET,
    created_after: datetime.datetime | None | Unset = UNSET,
    created_before: datetime.datetime | None | Unset = UNSET,
    sort: ListJobsSort | Unset = ListJobsSort.VALUE_0,
    cursor: None | str | Unset = UNSET,
    limit: int | Unset = 50,

) -> Response[JobPage | Problem]:
    """ List Jobs

     Jobs, newest first (or oldest with ``sort=created_at``), filtered; follow
    ``next_cursor`` for the next page (keyset paging: pages hold while jobs arrive).

    Args:
        state (JobState | None | Unset):
        report_status (None | ReportStatus | Unset): preliminary: succeeded and unsigned; final or
            amended: the latest sign-off's status.
        external_sample_id (None | str | Unset):
        created_after (datetime.datetime | None | Unset):
        created_before (datetime.datetime | None | Unset):
        sort (ListJobsSort | Unset): -created_at: newest first (default); created_at: oldest
            first. Default: ListJobsSort.VALUE_0.
        cursor (None | str | Unset):
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[JobPage | Problem]
     """


    kwargs = _get_kwargs(
        state=state,
report_status=report_status,
external_sample_id=external_sample_id,
created_after=created_after,
created_before=created_before,
sort=sort,
cursor=cursor,
limit=limit,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    *,
    client: AuthenticatedClient,
    state: JobState | None | Unset = UNSET,
    report_status: None | ReportStatus | Unset = UNSET,
    external_sample_id: None | str | Unset = UNSET,
    created_after: datetime.datetime | None | Unset = UNSET,
    created_before: datetime.datetime | None | Unset = UNSET,
    sort: ListJobsSort | Unset = ListJobsSort.VALUE_0,
    cursor: None | str | Unset = UNSET,
    limit: int | Unset = 50,

) -> JobPage | Problem | None:
    """ List Jobs

     Jobs, newest first (or oldest with ``sort=created_at``), filtered; follow
    ``next_cursor`` for the next page (keyset paging: pages hold while jobs arrive).

    Args:
        state (JobState | None | Unset):
        report_status (None | ReportStatus | Unset): preliminary: succeeded and unsigned; final or
            amended: the latest sign-off's status.
        external_sample_id (None | str | Unset):
        created_after (datetime.datetime | None | Unset):
        created_before (datetime.datetime | None | Unset):
        sort (ListJobsSort | Unset): -created_at: newest first (default); created_at: oldest
            first. Default: ListJobsSort.VALUE_0.
        cursor (None | str | Unset):
        limit (int | Unset):  Default: 50.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        JobPage | Problem
     """


    return (await asyncio_detailed(
        client=client,
state=state,
report_status=report_status,
external_sample_id=external_sample_id,
created_after=created_after,
created_before=created_before,
sort=sort,
cursor=cursor,
limit=limit,

    )).parsed
