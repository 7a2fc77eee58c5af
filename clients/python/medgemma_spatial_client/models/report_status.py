from enum import StrEnum

class ReportStatus(StrEnum):
    AMENDED = "amended"
    FINAL = "final"
    PRELIMINARY = "preliminary"

    def __str__(self) -> str:
        return str(self.value)
