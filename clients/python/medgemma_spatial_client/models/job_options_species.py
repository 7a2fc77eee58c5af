from enum import StrEnum

class JobOptionsSpecies(StrEnum):
    HS = "Hs"
    MM = "Mm"

    def __str__(self) -> str:
        return str(self.value)
