from enum import StrEnum

class CallerOutRole(StrEnum):
    REVIEWER = "reviewer"
    SUBMITTER = "submitter"

    def __str__(self) -> str:
        return str(self.value)
