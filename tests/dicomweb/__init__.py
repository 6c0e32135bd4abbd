"""Tests of issue 12: DICOMweb servers (http(s) bulk data, frames, input URLs)."""
