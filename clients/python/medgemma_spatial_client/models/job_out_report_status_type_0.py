from enum import StrEnum

class JobOutReportStatusType0(StrEnum):
    AMENDED = "amended"
    FINAL = "final"
    PRELIMINARY = "preliminary"

    def __str__(self) -> str:
        return str(self.value)
