from enum import StrEnum

class ReportHistoryReportStatus(StrEnum):
    AMENDED = "amended"
    FINAL = "final"
    PRELIMINARY = "preliminary"

    def __str__(self) -> str:
        return str(self.value)
