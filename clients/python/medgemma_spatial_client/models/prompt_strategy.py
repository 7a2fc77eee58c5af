from enum import StrEnum

class PromptStrategy(StrEnum):
    ANTI_PARROTING = "anti_parroting"
    CREATE_REPORT = "create_report"
    GUIDED_QUESTIONS = "guided_questions"

    def __str__(self) -> str:
        return str(self.value)
