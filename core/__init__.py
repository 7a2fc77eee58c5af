"""MedGemma Spatial: spatial transcriptomics analysis and tissue-blind pathology reports."""

__version__ = "0.1.0"
