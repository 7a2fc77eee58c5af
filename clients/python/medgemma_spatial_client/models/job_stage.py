from enum import StrEnum

class JobStage(StrEnum):
    ANALYZING = "analyzing"
    REPORTING = "reporting"
    VALIDATING = "validating"

    def __str__(self) -> str:
        return str(self.value)
