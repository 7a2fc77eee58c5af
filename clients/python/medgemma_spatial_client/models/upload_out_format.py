from enum import StrEnum

class UploadOutFormat(StrEnum):
    H5AD = "h5ad"
    TAR = "tar"
    TAR_GZ = "tar.gz"
    ZIP = "zip"

    def __str__(self) -> str:
        return str(self.value)
