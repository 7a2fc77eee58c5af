from enum import StrEnum

class SignoffCreateStatus(StrEnum):
    AMENDED = "amended"
    FINAL = "final"

    def __str__(self) -> str:
        return str(self.value)
