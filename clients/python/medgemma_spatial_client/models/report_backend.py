from enum import StrEnum

class ReportBackend(StrEnum):
    OPENAI = "openai"
    TEMPLATE = "template"
    TRANSFORMERS = "transformers"

    def __str__(self) -> str:
        return str(self.value)
