from enum import StrEnum

class SignoffOutStatus(StrEnum):
    AMENDED = "amended"
    FINAL = "final"

    def __str__(self) -> str:
        return str(self.value)
