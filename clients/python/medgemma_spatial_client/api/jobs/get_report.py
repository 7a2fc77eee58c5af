from http import HTTPStatus
from typing import Any, cast
from urllib.parse import quote

import httpx

from ...client import AuthenticatedClient, Client
from ...types import Response, UNSET
from ... import errors

from ...models.get_report_format import GetReportFormat
from ...models.get_report_response_200 import GetReportResponse200
from ...models.problem import Problem
from ...types import UNSET, Unset
from typing import cast
from uuid import UUID



def _get_kwargs(
    job_id: UUID,
    *,
    format_: GetReportFormat | Unset = GetReportFormat.JSON,

) -> dict[str, Any]:
    

    

    params: dict[str, Any] = {}

    json_format_: str | Unset = UNSET
    if not isinstance(format_, Unset):
        json_format_ = format_.value

    params["format"] = json_format_


    params = {k: v for k, v in params.items() if v is not UNSET and v is not None}


    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/v1/jobs/{job_id}/report".format(job_id=quote(str(job_id), safe=""),),
        "params": params,
    }


    return _kwargs



def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> GetReportResponse200 | Problem | None:
    if response.status_code == 200:
        response_200 = GetReportResponse200.from_dict(response.json())



        return response_200

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())



        return response_401

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


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[GetReportResponse200 | Problem]:
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
    format_: GetReportFormat | Unset = GetReportFormat.JSON,

) -> Response[GetReportResponse200 | Problem]:
    """ Get Report

     The report of a succeeded job: JSON, ``markdown``, ``html``, ``pdf`` (the document a lab
    attaches to a case), ``fhir`` (a FHIR R4 DiagnosticReport) or ``hl7`` (an HL7 v2.5.1
    ORU^R01 message); the text formats show the report status (preliminary, final, amended).

    Args:
        job_id (UUID):
        format_ (GetReportFormat | Unset):  Default: GetReportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GetReportResponse200 | Problem]
     """


    kwargs = _get_kwargs(
        job_id=job_id,
format_=format_,

    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)

def sync(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    format_: GetReportFormat | Unset = GetReportFormat.JSON,

) -> GetReportResponse200 | Problem | None:
    """ Get Report

     The report of a succeeded job: JSON, ``markdown``, ``html``, ``pdf`` (the document a lab
    attaches to a case), ``fhir`` (a FHIR R4 DiagnosticReport) or ``hl7`` (an HL7 v2.5.1
    ORU^R01 message); the text formats show the report status (preliminary, final, amended).

    Args:
        job_id (UUID):
        format_ (GetReportFormat | Unset):  Default: GetReportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GetReportResponse200 | Problem
     """


    return sync_detailed(
        job_id=job_id,
client=client,
format_=format_,

    ).parsed

async def asyncio_detailed(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    format_: GetReportFormat | Unset = GetReportFormat.JSON,

) -> Response[GetReportResponse200 | Problem]:
    """ Get Report

     The report of a succeeded job: JSON, ``markdown``, ``html``, ``pdf`` (the document a lab
    attaches to a case), ``fhir`` (a FHIR R4 DiagnosticReport) or ``hl7`` (an HL7 v2.5.1
    ORU^R01 message); the text formats show the report status (preliminary, final, amended).

    Args:
        job_id (UUID):
        format_ (GetReportFormat | Unset):  Default: GetReportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GetReportResponse200 | Problem]
     """


    kwargs = _get_kwargs(
        job_id=job_id,
format_=format_,

    )

    response = await client.get_async_httpx_client().request(
        **kwargs
    )

    return _build_response(client=client, response=response)

async def asyncio(
    job_id: UUID,
    *,
    client: AuthenticatedClient,
    format_: GetReportFormat | Unset = GetReportFormat.JSON,

) -> GetReportResponse200 | Problem | None:
    """ Get Report

     The report of a succeeded job: JSON, ``markdown``, ``html``, ``pdf`` (the document a lab
    attaches to a case), ``fhir`` (a FHIR R4 DiagnosticReport) or ``hl7`` (an HL7 v2.5.1
    ORU^R01 message); the text formats show the report status (preliminary, final, amended).

    Args:
        job_id (UUID):
        format_ (GetReportFormat | Unset):  Default: GetReportFormat.JSON.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GetReportResponse200 | Problem
     """


    return (await asyncio_detailed(
        job_id=job_id,
client=client,
format_=format_,

    )).parsed
