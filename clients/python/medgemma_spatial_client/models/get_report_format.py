from enum import StrEnum

class GetReportFormat(StrEnum):
    FHIR = "fhir"
    HL7 = "hl7"
    HTML = "html"
    JSON = "json"
    MARKDOWN = "markdown"
    PDF = "pdf"

    def __str__(self) -> str:
        return str(self.value)
