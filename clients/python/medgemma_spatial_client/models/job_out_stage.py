from enum import StrEnum

class JobOutStage(StrEnum):
    ANALYZING = "analyzing"
    REPORTING = "reporting"
    VALIDATING = "validating"

    def __str__(self) -> str:
        return str(self.value)
