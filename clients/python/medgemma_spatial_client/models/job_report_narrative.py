from enum import StrEnum

class JobReportNarrative(StrEnum):
    WITHHELD = "withheld"
    WRITTEN = "written"

    def __str__(self) -> str:
        return str(self.value)
