""" Contains all the data models used in inputs/outputs """

from .artifact_list import ArtifactList
from .artifact_out import ArtifactOut
from .caller_limits import CallerLimits
from .caller_out import CallerOut
from .caller_out_role import CallerOutRole
from .get_overlay_response_200 import GetOverlayResponse200
from .get_report_format import GetReportFormat
from .get_report_response_200 import GetReportResponse200
from .health import Health
from .health_checks import HealthChecks
from .health_status import HealthStatus
from .job_create import JobCreate
from .job_error import JobError
from .job_links import JobLinks
from .job_options import JobOptions
from .job_options_species import JobOptionsSpecies
from .job_out import JobOut
from .job_out_options import JobOutOptions
from .job_out_provenance import JobOutProvenance
from .job_page import JobPage
from .job_report import JobReport
from .job_report_narrative import JobReportNarrative
from .job_stage import JobStage
from .job_state import JobState
from .list_jobs_sort import ListJobsSort
from .problem import Problem
from .problem_errors_type_0_item import ProblemErrorsType0Item
from .prompt_strategy import PromptStrategy
from .readiness_problem import ReadinessProblem
from .readiness_problem_checks import ReadinessProblemChecks
from .readiness_problem_errors_type_0_item import ReadinessProblemErrorsType0Item
from .report_backend import ReportBackend
from .report_history import ReportHistory
from .report_status import ReportStatus
from .signoff_create import SignoffCreate
from .signoff_create_status import SignoffCreateStatus
from .signoff_out import SignoffOut
from .signoff_out_status import SignoffOutStatus
from .upload_out import UploadOut
from .upload_out_format import UploadOutFormat
from .upload_session_create import UploadSessionCreate
from .upload_session_out import UploadSessionOut

__all__ = (
    "ArtifactList",
    "ArtifactOut",
    "CallerLimits",
    "CallerOut",
    "CallerOutRole",
    "GetOverlayResponse200",
    "GetReportFormat",
    "GetReportResponse200",
    "Health",
    "HealthChecks",
    "HealthStatus",
    "JobCreate",
    "JobError",
    "JobLinks",
    "JobOptions",
    "JobOptionsSpecies",
    "JobOut",
    "JobOutOptions",
    "JobOutProvenance",
    "JobPage",
    "JobReport",
    "JobReportNarrative",
    "JobStage",
    "JobState",
    "ListJobsSort",
    "Problem",
    "ProblemErrorsType0Item",
    "PromptStrategy",
    "ReadinessProblem",
    "ReadinessProblemChecks",
    "ReadinessProblemErrorsType0Item",
    "ReportBackend",
    "ReportHistory",
    "ReportStatus",
    "SignoffCreate",
    "SignoffCreateStatus",
    "SignoffOut",
    "SignoffOutStatus",
    "UploadOut",
    "UploadOutFormat",
    "UploadSessionCreate",
    "UploadSessionOut",
)
